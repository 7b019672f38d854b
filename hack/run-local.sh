#!/usr/bin/env bash
# `make run`: the embedded default. Builds what is needed, starts a local control plane
# (kube-apiserver, controller-manager, scheduler, etcd, kwok nodes), the BIG-IP simulator and
# the operator, applies config/samples, shows the result, and stays up until Ctrl-C.
#
# With KUBECONFIG and BIGIP_URL set (plus BIGIP_USERNAME/BIGIP_PASSWORD or
# BIGIP_CREDENTIALS), it runs the operator against that cluster and BIG-IP instead.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

export BIGIP_OPERATOR_CACHE="${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BIGIP_OPERATOR_CACHE/target}"
bin="$BIGIP_OPERATOR_CACHE/bin"
operator="$CARGO_TARGET_DIR/debug/bigip-operator"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "building the operator (first build: a few minutes; then seconds)"
# Built as `make test` builds it (the binary the e2e suite runs): `cargo build` alone resolves
# the dependencies' features without the dev-dependencies and rebuilt kube, reqwest and
# jsonschema for minutes after a `make test` (and `make test` again after it).
cargo test --no-run --test e2e

if [ -n "${KUBECONFIG:-}" ] && [ -n "${BIGIP_URL:-}" ]; then
  say "running against the cluster in \$KUBECONFIG and the BIG-IP at $BIGIP_URL"
  exec "$operator" run --bigip-url "$BIGIP_URL" --metrics-addr 127.0.0.1:9090
fi

say "building the local control plane tools (first build: ~10 minutes; then seconds)"
e2e/controlplane/build.sh
kubectl="$bin/kubectl"

state="$BIGIP_OPERATOR_CACHE/run"
rm -rf "$state"; mkdir -p "$state"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; logs were in $state"
  exit 0
}
trap cleanup EXIT INT TERM

say "starting the control plane (logs: $state/controlplane.log)"
"$bin/controlplane" --data-dir "$state/controlplane" --nodes 2 >"$state/controlplane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 900); do
  [ -f "$state/controlplane/ready" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 30 "$state/controlplane.log"; exit 1; }
  sleep 0.2
done
[ -f "$state/controlplane/ready" ] || { echo "control plane not ready after 180 s"; exit 1; }
export KUBECONFIG="$state/controlplane/kubeconfig"

sim_port="${BIGIP_SIMULATOR_PORT:-8443}"
say "starting the BIG-IP simulator on https://127.0.0.1:$sim_port (logs: $state/simulator.log)"
export BIGIP_USERNAME=admin BIGIP_PASSWORD="local-$RANDOM$RANDOM"
BIGIP_SIM_USERNAME=$BIGIP_USERNAME BIGIP_SIM_PASSWORD=$BIGIP_PASSWORD \
  "$operator" simulator --listen "127.0.0.1:$sim_port" --tls --write-ca "$state/bigip-ca.pem" \
  --state-file "$state/simulator-state.json" >"$state/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$state/bigip-ca.pem" ] && break; sleep 0.1; done
[ -s "$state/bigip-ca.pem" ] || { cat "$state/simulator.log"; exit 1; }

say "installing the CRDs and starting the operator (logs: $state/operator.log)"
"$kubectl" apply -f crds/ >/dev/null
"$kubectl" wait --for=condition=Established --timeout=60s crd --all >/dev/null
"$operator" run --bigip-url "https://127.0.0.1:$sim_port" --bigip-ca-bundle "$state/bigip-ca.pem" \
  --partition kubernetes --metrics-addr 127.0.0.1:0 >"$state/operator.log" 2>&1 &
pids+=($!)

say "applying config/samples"
"$kubectl" apply -f config/samples/
if ! "$kubectl" wait --for=condition=Ready --timeout=90s virtualserver/web >/dev/null; then
  echo "the sample did not become Ready; operator log:"; tail -n 30 "$state/operator.log"
fi

say "kubectl get bvs"
"$kubectl" get bvs -A
say "conditions of virtualserver/web"
"$kubectl" get bvs web -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
say "the LoadBalancer Service web-lb and its address pool"
for _ in $(seq 1 60); do
  [ -n "$("$kubectl" get svc web-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null)" ] && break; sleep 0.5
done
"$kubectl" get svc web-lb
"$kubectl" get bap
say "what the BIG-IP simulator holds"
curl -s --cacert "$state/bigip-ca.pem" -u "$BIGIP_USERNAME:$BIGIP_PASSWORD" "https://127.0.0.1:$sim_port/mgmt/tm/ltm/virtual" \
  | python3 -c 'import json,sys; [print("virtual", v["fullPath"], "->", v["destination"], "pool", v.get("pool")) for v in json.load(sys.stdin).get("items", [])]'
curl -s --cacert "$state/bigip-ca.pem" -u "$BIGIP_USERNAME:$BIGIP_PASSWORD" "https://127.0.0.1:$sim_port/mgmt/tm/ltm/pool/~kubernetes~default_web~pool_web/members" \
  | python3 -c 'import json,sys; [print("  member", m["name"]) for m in json.load(sys.stdin).get("items", [])]'

cat <<EOT

Everything is running. In another terminal:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get bvs -A                      # your VirtualServers and their state
  $kubectl scale deployment web --replicas=3
  $kubectl apply -f <your VirtualServer>.yaml
BIG-IP simulator: https://127.0.0.1:$sim_port (user $BIGIP_USERNAME, password $BIGIP_PASSWORD, CA $state/bigip-ca.pem)
Logs: $state/{controlplane,simulator,operator}.log

Press Ctrl-C to stop everything.
EOT
wait "${pids[0]}"
