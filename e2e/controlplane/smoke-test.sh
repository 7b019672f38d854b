#!/usr/bin/env bash
# Smoke test of the controlplane launcher: start, nodes, deployment + service
# -> EndpointSlices, scaling, adding a node with kubectl apply, RBAC with a
# service-account token, a CRD, a kube-apiserver restart (SIGUSR1), then
# SIGTERM and a check that nothing is left.
# Usage: smoke-test.sh [DATA_DIR]   (binaries from build.sh)
set -euo pipefail

bin="${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}/bin"
export PATH="$bin:$PATH"
data="${1:-$(mktemp -d /tmp/controlplane-smoke.XXXXXX)}"
export KUBECONFIG="$data/kubeconfig"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "=== $*"; }
# eventually CMD...: retry for up to 30 s
eventually() {
  local i
  for i in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  "$@"
}

rm -f "$data/ready" # a stale one from a killed run
step "start: controlplane --data-dir $data --nodes 2"
t0=$(now)
controlplane --data-dir "$data" --nodes 2 >"$data.out" 2>"$data.err" &
cp_pid=$!
trap 'kill -TERM $cp_pid 2>/dev/null || true' EXIT
while [ ! -f "$data/ready" ]; do
  kill -0 $cp_pid 2>/dev/null || { cat "$data.err"; fail "controlplane exited"; }
  sleep 0.1
done
echo "ready after $(since "$t0")s"

step "nodes"
kubectl get nodes -o wide
ips=$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
[ "$(echo "$ips" | sort -u | wc -l)" = 2 ] || fail "InternalIPs not distinct: $ips"

step "deployment + NodePort service"
kubectl create deployment web --image=nginx --replicas=1
kubectl expose deployment web --port 80 --target-port 8080 --type NodePort
ready_endpoints() {
  kubectl get endpointslices -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' | grep -c . || true
}
expect_endpoints() { [ "$(ready_endpoints)" = "$1" ]; }
eventually expect_endpoints 1 || fail "expected 1 ready endpoint"
kubectl get pods -o wide
kubectl get endpointslices -l kubernetes.io/service-name=web -o yaml
step "scale to 3"
kubectl scale deployment web --replicas=3
eventually expect_endpoints 3 || fail "expected 3 ready endpoints"
kubectl get pods -o wide
step "scale to 1"
kubectl scale deployment web --replicas=1
eventually expect_endpoints 1 || fail "expected 1 ready endpoint"
kubectl get endpointslices -l kubernetes.io/service-name=web \
  -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} ready={.conditions.ready} node={.nodeName}{"\n"}{end}'

step "add node-3 (InternalIP from annotation) and node-4 (InternalIP in status)"
kubectl apply -f "$here/testdata/node-3.yaml" -f "$here/testdata/node-4.yaml"
eventually kubectl wait --for=condition=Ready node/node-3 node/node-4 --timeout=1s || fail "new nodes not Ready"
kubectl get nodes -o wide
for n in 3 4; do
  ip=$(kubectl get node node-$n -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  [ "$ip" = "172.31.0.$n" ] || fail "node-$n InternalIP is '$ip'"
done
kubectl scale deployment web --replicas=8
eventually expect_endpoints 8 || fail "expected 8 ready endpoints"
kubectl get pods -o wide
kubectl scale deployment web --replicas=1

step "RBAC: service account that may only get pods"
kubectl create serviceaccount reader
kubectl create role pod-getter --verb=get --resource=pods
kubectl create rolebinding reader-pod-getter --role=pod-getter --serviceaccount=default:reader
token=$(kubectl create token reader)
server=$(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')
# A kubeconfig holding only the token (the admin kubeconfig's client
# certificate would take precedence over --token).
cat >"$data/reader.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "$server", certificate-authority: "$data/pki/ca.crt"}
users:
- name: reader
  user: {token: "$token"}
contexts:
- name: c
  context: {cluster: c, user: reader, namespace: default}
current-context: c
EOF
kr() { kubectl --kubeconfig="$data/reader.kubeconfig" "$@"; }
kr auth whoami
[ "$(kr auth can-i list services || true)" = no ] || fail "reader may list services"
[ "$(kr auth can-i get pods)" = yes ] || fail "reader may not get pods"
pod=$(kubectl get pods -o jsonpath='{.items[0].metadata.name}')
kr get pod "$pod"
if kr get services >/dev/null 2>&1; then fail "reader listed services"; fi
echo "reader: list services forbidden, get pod allowed"

step "CRD"
kubectl apply -f - <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
EOF
kubectl wait --for=condition=Established crd/widgets.example.com --timeout=30s
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n' | kubectl apply -f -
kubectl get widgets

step "memory"
pids="$cp_pid $(pgrep -P $cp_pid | tr '\n' ' ')"
for p in $pids; do
  printf '%-8s %-26s %s\n' "$p" "$(tr '\0' ' ' </proc/$p/cmdline | cut -d' ' -f2)" \
    "$(awk '/^(Rss|Pss):/ {printf "%s %d MiB  ", $1, $2/1024}' /proc/$p/smaps_rollup)"
done
for p in $pids; do cat /proc/$p/smaps_rollup; done |
  awk '/^Rss:/ {r+=$2} /^Pss:/ {p+=$2} END {printf "total: Rss %d MiB, Pss %d MiB\n", r/1024, p/1024}'
ports=$(ss -ltnpH | grep -E "pid=($(echo $pids | tr ' ' '|'))," | awk '{print $4}' | tr '\n' ' ')
echo "listening: $ports"

step "restart kube-apiserver (SIGUSR1)"
t3=$(now)
kill -USR1 $cp_pid
while [ "$(cat "$data/apiserver-restarts" 2>/dev/null)" != 1 ]; do
  kill -0 $cp_pid 2>/dev/null || { cat "$data.err"; fail "controlplane exited"; }
  sleep 0.05
done
echo "restarted after $(since "$t3")s"
kubectl get widget w1 >/dev/null || fail "widget w1 lost in the restart"
eventually expect_endpoints 1 || fail "expected 1 ready endpoint after the restart"
kubectl scale deployment web --replicas=2
eventually expect_endpoints 2 || fail "expected 2 ready endpoints after the restart"
pids="$cp_pid $(pgrep -P $cp_pid | tr '\n' ' ')" # the new kube-apiserver

step "SIGTERM"
t2=$(now)
kill -TERM $cp_pid
rc=0
wait $cp_pid || rc=$?
trap - EXIT
echo "exit code $rc after $(since "$t2")s"
[ $rc = 0 ] || fail "exit code $rc"
for p in $pids; do
  if kill -0 "$p" 2>/dev/null; then fail "process $p still running"; fi
done
for a in $ports; do
  if ss -ltnH | awk '{print $4}' | grep -qx "$a"; then fail "$a still listening"; fi
done
[ ! -f "$data/ready" ] || fail "ready file left behind"
echo "no processes left, ports freed"
echo "SMOKE TEST PASSED"
