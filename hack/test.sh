#!/usr/bin/env bash
# `make test`: every test suite, with the slow builds side by side, then a summary.
#
#   1. in parallel: the Go control plane tools (e2e/controlplane/build.sh) and the Rust tests
#      (unit, golden, simulator API, BIG-IP client), then rustfmt and clippy;
#   2. the chart (hack/chart-test.sh: lint and template of every example values file, the
#      schema's refusals, helm package);
#   3. the e2e scenarios on the real control plane, and beside them the smoke run of the scale
#      benchmark (bench/scale.rs --smoke: every phase of `make bench` measured on 20 objects)
#      and, at low priority, `make image-test` (hack/image.sh: the static binary packed into an
#      OCI image without a container engine, unpacked and run from its own filesystem).
# Builds are cached under $HOME/.cache (cargo target dir, Go build cache), outside the clone.
#
# BIGIP_TEST_BUSY_CORES=N keeps N cores busy with a busy loop for the whole run (it stops by
# itself after BIGIP_TEST_BUSY_SECONDS, 3600 by default, and when the run ends): the suite must
# pass on a loaded CI machine.
set -uo pipefail
cd "$(dirname "$0")/.."

export BIGIP_OPERATOR_CACHE="${BIGIP_OPERATOR_CACHE:-$HOME/.cache/bigip-operator}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BIGIP_OPERATOR_CACHE/target}"
export CARGO_TERM_COLOR=never
bin="$BIGIP_OPERATOR_CACHE/bin"
logs="$(mktemp -d "${TMPDIR:-/tmp}/bigip-operator-test.XXXXXX")"
started=$SECONDS
echo "make test: logs in $logs"

declare -a suite_names=() suite_passed=() suite_failed=()
record() { suite_names+=("$1"); suite_passed+=("$2"); suite_failed+=("$3"); }

# Sums cargo's "test result:" lines of a log (found anywhere on a line: another process's
# output can share it); a failing suite that reported no failure, or a suite that reported no
# test at all, counts as one failure.
record_cargo() {
  local name=$1 log=$2 rc=$3 p f
  read -r p f < <(grep -oE 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" \
    | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed/\1 \2/' \
    | awk '{p += $1; f += $2} END {print p + 0, f + 0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then echo "$name: no test result found in $log"; f=1; fi
  record "$name" "$p" "$f"
}

busy_pids=()
stop_busy() { for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_busy EXIT
for _ in $(seq 1 "${BIGIP_TEST_BUSY_CORES:-0}"); do
  timeout "${BIGIP_TEST_BUSY_SECONDS:-3600}" bash -c 'while :; do :; done' &
  busy_pids+=($!)
done
[ "${#busy_pids[@]}" -gt 0 ] && echo "==> ${#busy_pids[@]} busy loop(s) keep cores busy (pids ${busy_pids[*]})"

echo "==> building the control plane tools (Go) in the background"
( e2e/controlplane/build.sh >"$logs/controlplane-build.log" 2>&1; echo $? >"$logs/controlplane-build.rc" ) &
go_build=$!

echo "==> Rust: unit, golden, simulator and client tests"
rust_targets=()
for t in tests/*.rs; do rust_targets+=(--test "$(basename "$t" .rs)"); done
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --no-fail-fast --workspace --lib --bins "${rust_targets[@]}" 2>&1 | tee "$logs/rust.log" | grep -E '^(test result|error|failures:|---- )'
rust_rc=${PIPESTATUS[0]}
record_cargo "rust (unit, golden, simulator, client)" "$logs/rust.log" "$rust_rc"

echo "==> rustfmt and clippy"
# Both ship with the Rust toolchain (rustup's default profile); added here when missing.
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component" >/dev/null 2>&1 || true
done
if cargo fmt --all --check >"$logs/fmt.log" 2>&1; then
  record "rustfmt --check" 1 0
else
  head -n 40 "$logs/fmt.log"; record "rustfmt --check" 0 1
fi
if cargo clippy --workspace --all-targets -- -D warnings >"$logs/clippy.log" 2>&1; then
  record "clippy -D warnings" 1 0
else
  grep -E '^(error|warning)' -A6 "$logs/clippy.log" | head -n 60; record "clippy -D warnings" 0 1
fi

echo "==> waiting for the control plane build"
wait "$go_build"
go_rc=$(cat "$logs/controlplane-build.rc" 2>/dev/null || echo 1)
tail -n 3 "$logs/controlplane-build.log"
if [ "$go_rc" -ne 0 ]; then
  echo "control plane build failed; see $logs/controlplane-build.log"
  record "control plane build" 0 1
else
  echo "==> the chart: helm lint and template of every example values file, schema refusals, package"
  hack/chart-test.sh "$bin/helm" >"$logs/chart.log" 2>&1
  chart_rc=$?
  grep -E '^FAIL' "$logs/chart.log"
  read -r p f < <(sed -nE 's/^chart tests: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$logs/chart.log")
  p=${p:-0}; f=${f:-0}
  if [ "$chart_rc" -ne 0 ] && [ "$f" -eq 0 ]; then tail -n 20 "$logs/chart.log"; f=1; fi
  record "chart (lint, template, schema, package)" "$p" "$f"

  echo "==> e2e scenarios on the real control plane (beside them: the benchmark smoke run, and"
  echo "    make image-test at low priority)"
  ( BIGIP_E2E_BIN_DIR="$bin" cargo test --bench scale -- --smoke >"$logs/bench-smoke.log" 2>&1; echo $? >"$logs/bench-smoke.rc" ) &
  bench_smoke=$!
  ( nice -n 10 hack/image.sh test >"$logs/image.log" 2>&1; echo $? >"$logs/image.rc" ) &
  image_build=$!
  BIGIP_E2E_BIN_DIR="$bin" cargo test --test e2e 2>&1 | tee "$logs/e2e.log" | grep -vE '^\s+(Compiling|Running|Finished)'
  e2e_rc=${PIPESTATUS[0]}
  record_cargo "e2e (real control plane)" "$logs/e2e.log" "$e2e_rc"
  wait "$bench_smoke"
  if [ "$(cat "$logs/bench-smoke.rc" 2>/dev/null || echo 1)" -eq 0 ] && grep -q 'bench smoke: every phase measured' "$logs/bench-smoke.log"; then
    record "bench smoke (make bench, 20 objects)" 1 0
  else
    tail -n 30 "$logs/bench-smoke.log"; record "bench smoke (make bench, 20 objects)" 0 1
  fi
  wait "$image_build"
  image_rc=$(cat "$logs/image.rc" 2>/dev/null || echo 1)
  grep -E '^(image |  size|  digest)' "$logs/image.log"
  p=$(grep -c -- '^--- PASS' "$logs/image.log"); f=$(grep -c -- '^--- FAIL' "$logs/image.log")
  if [ "$image_rc" -ne 0 ] && [ "$f" -eq 0 ]; then tail -n 30 "$logs/image.log"; f=1; fi
  [ "$f" -gt 0 ] && grep -E -B2 -A12 -- '^--- FAIL' "$logs/image.log" | head -n 60
  record "image (make image-test)" "$p" "$f"
fi

echo
echo "==> summary ($((SECONDS - started))s)"
total_p=0; total_f=0
for i in "${!suite_names[@]}"; do
  printf '  %-45s %4s passed, %s failed\n' "${suite_names[$i]}" "${suite_passed[$i]}" "${suite_failed[$i]}"
  total_p=$((total_p + suite_passed[i])); total_f=$((total_f + suite_failed[i]))
done
echo "summary: $total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
