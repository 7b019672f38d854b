#!/usr/bin/env bash
# Tests of the Helm chart charts/bigip-operator, without a cluster:
#   - every charts/bigip-operator/ci/*-values.yaml passes `helm lint --strict` and renders, the
#     output parses as YAML, and holds the objects that file is about;
#   - every charts/bigip-operator/ci-invalid/*.yaml is refused by `helm template`, with an
#     error that contains the file's first-line `# expect: <substring>`;
#   - `helm package` writes bigip-operator-<appVersion>.tgz (version == appVersion) holding the
#     schema and the dashboard, and not the test values;
#   - the dashboard is valid JSON, and every metric the dashboard and the PrometheusRule query
#     starts with bigip_operator_.
#
# Usage (from the repository root): hack/chart-test.sh PATH/TO/helm
set -euo pipefail

helm=${1:?usage: hack/chart-test.sh PATH/TO/helm}
chart=charts/bigip-operator
[[ -x $helm ]] || { echo "helm binary $helm is not executable" >&2; exit 2; }
[[ -f $chart/Chart.yaml ]] || { echo "run from the repository root ($chart/Chart.yaml not found)" >&2; exit 2; }

release=bigip-operator
namespace=bigip-system
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
# check NAME COMMAND...: runs the command; "ok" when it succeeds, else "FAIL" and its output.
check() {
  local name=$1; shift
  if "$@" >"$work/check.log" 2>&1; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; sed 's/^/       /' "$work/check.log" | head -40; failed=$((failed + 1))
  fi
}

python=$(command -v python3 || true)
have_yaml=false
if [[ -n $python ]] && "$python" -c 'import yaml' 2>/dev/null; then have_yaml=true; fi

# has_kind FILE KIND [NAME]: the rendered FILE holds an object of KIND (named NAME).
has_kind() {
  local file=$1 kind=$2 name=${3:-}
  if [[ -z $name ]]; then
    grep -q "^kind: $kind\$" "$file"
  else
    awk -v kind="$kind" -v name="$name" '
      /^---/ { k = ""; inmeta = 0 }
      /^kind: / { k = $2 }
      /^metadata:/ { inmeta = 1; next }
      inmeta && /^  name: / { if (k == kind && $2 == name) found = 1; inmeta = 0 }
      END { exit !found }' "$file"
  fi
}
lacks_kind() { ! has_kind "$@"; }
contains() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }
parses_as_yaml() {
  "$python" - "$1" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
for d in docs:
    for key in ("apiVersion", "kind", "metadata"):
        if key not in d:
            sys.exit(f"an object without {key}: {str(d)[:200]}")
print(f"{len(docs)} objects")
EOF
}

# render VALUES OUT: helm template with VALUES into OUT (empty when it fails).
render() {
  if ! "$helm" template "$release" "$chart" -f "$1" --namespace "$namespace" >"$2"; then
    : >"$2"; return 1
  fi
}

# ---- valid values -----------------------------------------------------------------------
shopt -s nullglob
ci_files=("$chart"/ci/*-values.yaml)
[[ ${#ci_files[@]} -gt 0 ]] || { echo "FAIL no $chart/ci/*-values.yaml"; exit 1; }
for values in "${ci_files[@]}"; do
  base=$(basename "$values" -values.yaml)
  out="$work/$base.yaml"
  check "lint --strict ci/$base" "$helm" lint --strict "$chart" -f "$values" --namespace "$namespace"
  check "template ci/$base" render "$values" "$out"
  if $have_yaml; then check "yaml parses ci/$base" parses_as_yaml "$out"; else echo "skip yaml parses ci/$base (python3 with PyYAML not found)"; fi
  # Every release: the Deployment with its container `operator`, and the metrics Service.
  check "ci/$base: Deployment with container operator" contains "$out" "- name: operator"
  check "ci/$base: metrics Service" has_kind "$out" Service "$release-metrics"
  case $base in
    default)
      check "ci/$base: PDB (2 replicas by default)" has_kind "$out" PodDisruptionBudget
      check "ci/$base: default topology spread" contains "$out" "topologyKey: kubernetes.io/hostname"
      check "ci/$base: startup probe" contains "$out" "startupProbe:"
      check "ci/$base: no ServiceMonitor" lacks_kind "$out" ServiceMonitor
      check "ci/$base: no PrometheusRule" lacks_kind "$out" PrometheusRule
      check "ci/$base: no NetworkPolicy" lacks_kind "$out" NetworkPolicy
      check "ci/$base: no dashboard ConfigMap" lacks_kind "$out" ConfigMap
      check "ci/$base: no default route domain flag at 0" lacks "$out" "--default-route-domain"
      check "ci/$base: image tag is appVersion" contains "$out" "image: \"bigip-operator:$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$chart/Chart.yaml")\""
      ;;
    ha)
      check "ci/$base: PDB" has_kind "$out" PodDisruptionBudget "$release"
      check "ci/$base: PDB maxUnavailable 1" contains "$out" "maxUnavailable: 1"
      check "ci/$base: topology spread over hostname" contains "$out" "topologyKey: kubernetes.io/hostname"
      check "ci/$base: ScheduleAnyway" contains "$out" "whenUnsatisfiable: ScheduleAnyway"
      check "ci/$base: priorityClassName" contains "$out" "priorityClassName: system-cluster-critical"
      check "ci/$base: default route domain" contains "$out" "- --default-route-domain=2"
      check "ci/$base: Lease RBAC" contains "$out" "name: $release-leader-election"
      ;;
    single-replica)
      check "ci/$base: no PDB" lacks_kind "$out" PodDisruptionBudget
      check "ci/$base: no topology spread" lacks "$out" "topologySpreadConstraints:"
      check "ci/$base: leader election off" contains "$out" "- --leader-elect=false"
      check "ci/$base: no Lease RBAC" lacks "$out" "name: $release-leader-election"
      check "ci/$base: extraArgs appended" contains "$out" '- "--adopt-partition=legacy-2"'
      check "ci/$base: extraEnv" contains "$out" "name: RUST_LOG"
      check "ci/$base: no startup probe" lacks "$out" "startupProbe:"
      ;;
    monitoring)
      check "ci/$base: ServiceMonitor" has_kind "$out" ServiceMonitor "$release"
      check "ci/$base: PrometheusRule" has_kind "$out" PrometheusRule "$release"
      check "ci/$base: dashboard ConfigMap" has_kind "$out" ConfigMap "$release-dashboard"
      check "ci/$base: dashboard label" contains "$out" 'grafana_dashboard: "1"'
      check "ci/$base: dashboard in its namespace" contains "$out" "namespace: monitoring"
      for alert in BigIpOperatorBigIpUnreachable BigIpOperatorAs3PostsFailing BigIpOperatorPartitionNotProgrammed \
                   BigIpOperatorDeletionsHeld BigIpOperatorNoLeader BigIpOperatorReconcileErrors; do
        check "ci/$base: alert $alert" contains "$out" "- alert: $alert"
      done
      cp "$out" "$work/monitoring-rendered.yaml"
      ;;
    networkpolicy)
      check "ci/$base: NetworkPolicy" has_kind "$out" NetworkPolicy "$release"
      check "ci/$base: NetworkPolicy DNS egress" contains "$out" "port: 53"
      check "ci/$base: NetworkPolicy BIG-IP CIDR" contains "$out" 'cidr: "10.1.1.0/24"'
      check "ci/$base: NetworkPolicy port 8443" contains "$out" "port: 8443"
      ;;
    digest)
      check "ci/$base: image by digest" grep -qE 'image: "[^"]+@sha256:[0-9a-f]{64}"' "$out"
      check "ci/$base: tag ignored" lacks "$out" ":ignored"
      check "ci/$base: imagePullSecrets" contains "$out" "- name: registry-credentials"
      ;;
    env-credentials)
      check "ci/$base: credentials from env" contains "$out" "name: BIGIP_PASSWORD"
      check "ci/$base: no credentials file flag" lacks "$out" "--bigip-credentials="
      check "ci/$base: CA bundle from ConfigMap" contains "$out" "name: bigip-ca"
      check "ci/$base: CA bundle flag" contains "$out" "- --bigip-ca-bundle=/etc/bigip-operator/ca/ca.crt"
      ;;
  esac
done

# ---- invalid values ---------------------------------------------------------------------
# refused VALUES EXPECTED: helm template fails and its error output contains EXPECTED.
refused() {
  local values=$1 expected=$2
  if "$helm" template "$release" "$chart" -f "$values" --namespace "$namespace" >"$work/refused.out" 2>"$work/refused.err"; then
    echo "rendered, expected an error containing: $expected"; return 1
  fi
  grep -qF -- "$expected" "$work/refused.err" || { echo "expected: $expected"; echo "got:"; cat "$work/refused.err"; return 1; }
}
for values in "$chart"/ci-invalid/*.yaml; do
  expected=$(sed -n '1s/^# expect: //p' "$values")
  if [[ -z $expected ]]; then
    echo "FAIL refused ci-invalid/$(basename "$values" .yaml): no '# expect: ' first line"; failed=$((failed + 1)); continue
  fi
  check "refused ci-invalid/$(basename "$values" .yaml)" refused "$values" "$expected"
done
# kubeVersion: a cluster older than 1.27 is refused.
refused_old_kube() {
  if "$helm" template "$release" "$chart" -f "$chart/ci/default-values.yaml" --kube-version 1.26.0 >/dev/null 2>"$work/kube.err"; then
    echo "rendered for Kubernetes 1.26"; return 1
  fi
  grep -q "incompatible with Kubernetes" "$work/kube.err" || { cat "$work/kube.err"; return 1; }
}
check "refused: Kubernetes 1.26 (kubeVersion >=1.27.0-0)" refused_old_kube

# ---- package ----------------------------------------------------------------------------
app_version=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$chart/Chart.yaml")
chart_version=$(awk '/^version:/ {print $2}' "$chart/Chart.yaml")
check "Chart.yaml version ($chart_version) == appVersion ($app_version)" test "$chart_version" = "$app_version"
# The binary's version (--version, the image tag `make image` writes) is the crate's.
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
check "appVersion ($app_version) == Cargo.toml version ($crate_version)" test "$app_version" = "$crate_version"
check "helm package" "$helm" package "$chart" --destination "$work/package"
pkg="$work/package/bigip-operator-$app_version.tgz"
check "package named bigip-operator-$app_version.tgz" test -f "$pkg"
# (The listing goes to a file first: `tar | grep -q` fails under pipefail when grep quits early.)
tar -tzf "$pkg" >"$work/package.list" 2>/dev/null || true
package_has() { grep -qx "bigip-operator/$1" "$work/package.list"; }
package_lacks() { ! grep -q "^bigip-operator/$1" "$work/package.list"; }
check "package holds values.schema.json" package_has values.schema.json
check "package holds dashboards/bigip-operator.json" package_has dashboards/bigip-operator.json
check "package holds the CRDs" package_has crds/virtualservers.bigip.operator.dev.yaml
package_lacks_tests() { package_lacks ci/ && package_lacks ci-invalid/; }
check "package leaves out ci/ and ci-invalid/" package_lacks_tests
check "packaged chart renders" "$helm" template "$release" "$pkg" -f "$chart/ci/monitoring-values.yaml" --namespace "$namespace"

# ---- dashboard and PromQL ---------------------------------------------------------------
if [[ -z $python ]]; then
  echo "FAIL python3 not found (needed for the JSON and PromQL checks)"; failed=$((failed + 1))
else
  check "dashboard is valid JSON" "$python" -m json.tool "$chart/dashboards/bigip-operator.json"
  promql_metrics() {
    "$python" - "$chart/dashboards/bigip-operator.json" "$work/monitoring-rendered.yaml" "$work/metrics.txt" <<'EOF'
import json, re, sys

dashboard_path, rendered_path, out_path = sys.argv[1:4]
exprs = []  # (source, expression)

def walk(node, where):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            exprs.append((where, node["expr"]))
        query = node.get("query")
        if isinstance(query, dict) and isinstance(query.get("query"), str):
            exprs.append((where, query["query"]))
        elif isinstance(query, str) and node.get("type") == "query":
            exprs.append((where, query))
        for value in node.values():
            walk(value, node.get("title", where) if isinstance(node.get("title"), str) else where)
    elif isinstance(node, list):
        for value in node:
            walk(value, where)

walk(json.load(open(dashboard_path)), "dashboard")
# The PrometheusRule's `expr: |` blocks, read without a YAML library.
lines = open(rendered_path).read().splitlines()
alert = None
i = 0
while i < len(lines):
    m = re.match(r"^\s*- alert: (\S+)", lines[i])
    if m:
        alert = m.group(1)
    m = re.match(r"^(\s*)expr: (\|[-+]?)?(.*)$", lines[i])
    if m:
        indent = len(m.group(1))
        body = [m.group(3)] if m.group(3).strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        exprs.append((f"alert {alert}", "\n".join(body)))
        continue
    i += 1
if not any(src.startswith("alert") for src, _ in exprs):
    sys.exit("no alert expressions found in the rendered PrometheusRule")

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan", "atan2"}

def metric_names(expr):
    e = re.sub(r"label_values\(\s*([^,()]*(\{[^}]*\})?)\s*,\s*\w+\s*\)", r"\1", expr)  # Grafana
    e = re.sub(r'"(\\.|[^"\\])*"', '""', e)           # string literals
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "", e)            # Grafana variables
    e = re.sub(r"\{[^}]*\}", "{}", e)                  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                   # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\b(group_left|group_right)\b", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        name, rest = m.group(0), e[m.end():].lstrip()
        if name in KEYWORDS or rest.startswith("("):   # functions and aggregations
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue                                    # 1e3, 0.99
        names.add(name)
    return names

bad, seen = [], {}
for source, expr in exprs:
    for name in metric_names(expr):
        seen.setdefault(name, set()).add(source)
        if not name.startswith("bigip_operator_"):
            bad.append(f"{source}: {name}")
with open(out_path, "w") as out:
    for name in sorted(seen):
        out.write(name + "\n")
if bad:
    sys.exit("metric names without the bigip_operator_ prefix:\n" + "\n".join(sorted(set(bad))))
if not seen:
    sys.exit("no metric names found")
print(f"{len(exprs)} expressions, metrics: {', '.join(sorted(seen))}")
EOF
  }
  if [[ -f $work/monitoring-rendered.yaml ]]; then
    check "PromQL metric names start with bigip_operator_" promql_metrics
    if [[ -s $work/metrics.txt ]]; then
      echo "     metrics queried: $(tr '\n' ' ' <"$work/metrics.txt")"
      # Informational (not a check): names src/metrics.rs does not register (yet).
      if [[ -f src/metrics.rs ]]; then
        missing=()
        while read -r metric; do
          base=${metric#bigip_operator_}
          base=${base%_bucket}; base=${base%_sum}; base=${base%_count}
          grep -q "\"$base\"" src/metrics.rs || missing+=("$metric")
        done <"$work/metrics.txt"
        if [[ ${#missing[@]} -gt 0 ]]; then echo "note not registered in src/metrics.rs: ${missing[*]}"; fi
      fi
    fi
  else
    echo "FAIL PromQL metric names: ci/monitoring-values.yaml was not rendered"; failed=$((failed + 1))
  fi
  # Every value the schema knows has a row in the README's tables.
  readme_documents_values() {
    "$python" - "$chart/values.schema.json" "$chart/README.md" <<'EOF'
import json, sys
schema, readme = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
missing = []
def walk(node, prefix):
    for key, sub in node.get("properties", {}).items():
        if key == "global":
            continue
        path = prefix + key
        if sub.get("type") == "object" and sub.get("additionalProperties") is False and "properties" in sub:
            walk(sub, path + ".")
        elif f"| `{path}` |" not in readme:
            missing.append(path)
walk(schema, "")
if missing:
    sys.exit("not in README.md: " + ", ".join(missing))
EOF
  }
  check "README documents every value" readme_documents_values
fi

echo "chart tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
