{{- define "bigip-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bigip-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bigip-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bigip-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bigip-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "bigip-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Name of the metrics Service (also the `job` label of the scraped series). */}}
{{- define "bigip-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "bigip-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* PromQL label matchers that select this release's series in the alerts. */}}
{{- define "bigip-operator.metricSelector" -}}
{{- if .Values.prometheusRule.metricSelector -}}
{{- .Values.prometheusRule.metricSelector -}}
{{- else -}}
{{- printf "job=%q, namespace=%q" (include "bigip-operator.metricsServiceName" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}


{{/*
The chart's labels with more on top: (dict "ctx" $ "extra" <user labels> "fixed" <labels that
must win>). Rendered as one map, so a user label never duplicates a key.
*/}}
{{- define "bigip-operator.labelsWith" -}}
{{- $base := include "bigip-operator.labels" .ctx | fromYaml -}}
{{- toYaml (merge (deepCopy (.fixed | default dict)) (deepCopy (.extra | default dict)) $base) -}}
{{- end -}}
