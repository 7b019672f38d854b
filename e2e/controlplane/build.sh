#!/usr/bin/env bash
# Builds the e2e test tools from Go modules (no prebuilt downloads) into
# ${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}/bin:
#   controlplane  etcd + kube-apiserver + kube-controller-manager +
#                 kube-scheduler + kwok launcher (Kubernetes v1.36.3)
#   kubectl       v1.36.3, from the same module
#   helm          v3.19.4 (go install helm.sh/helm/v3/cmd/helm@v3.19.4)
# Needs only Go (>= 1.26) and the Go module proxy. Uses the normal Go build
# cache, so a second run takes seconds. Idempotent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}"
bin="$cache/bin"
mkdir -p "$bin"

KUBE_VERSION=v1.36.3 # must match k8s.io/kubernetes in go.mod
HELM_VERSION=v3.19.4

kube_major="${KUBE_VERSION#v}"; kube_major="${kube_major%%.*}"
kube_minor="${KUBE_VERSION#v*.}"; kube_minor="${kube_minor%%.*}"
ver=k8s.io/component-base/version
kube_ldflags="-s -w -X $ver.gitVersion=$KUBE_VERSION -X $ver.gitMajor=$kube_major -X $ver.gitMinor=$kube_minor -X $ver.gitTreeState=clean -X $ver.buildDate=1970-01-01T00:00:00Z"

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Do not let a go.work further up (e.g. in the repo root) change this module's build.
export GOWORK=off

log() { printf 'build.sh: [%3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }

start=$SECONDS
cd "$here"
log "building controlplane and kubectl ($KUBE_VERSION) into $bin"
go build -ldflags "$kube_ldflags" -o "$bin/controlplane" .
go build -ldflags "$kube_ldflags" -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl

log "building helm $HELM_VERSION into $bin"
# go install NAME@VERSION builds outside this module, from helm's own go.mod.
helm_pkg=helm.sh/helm/v3
helm_ldflags="-s -w -X $helm_pkg/internal/version.version=$HELM_VERSION -X $helm_pkg/internal/version.metadata= -X $helm_pkg/internal/version.gitTreeState=clean"
helm_ldflags+=" -X $helm_pkg/pkg/lint/rules.k8sVersionMajor=1 -X $helm_pkg/pkg/lint/rules.k8sVersionMinor=34"
helm_ldflags+=" -X $helm_pkg/pkg/chartutil.k8sVersionMajor=1 -X $helm_pkg/pkg/chartutil.k8sVersionMinor=34"
(cd / && GOBIN="$bin" go install -ldflags "$helm_ldflags" "$helm_pkg/cmd/helm@$HELM_VERSION")

log "done: $(cd "$bin" && ls controlplane kubectl helm | tr '\n' ' ')"
