# bigip-operator — two commands do everything:
#   make run    build, start a local control plane + BIG-IP simulator + operator, apply the sample
#   make test   every test suite (unit, golden, simulator, client, e2e), with a closing summary
#
# Builds are cached outside the clone, so a second run is fast and a fresh clone reuses them.

SHELL := /bin/bash
CACHE_DIR ?= $(HOME)/.cache/bigip-operator
export BIGIP_OPERATOR_CACHE := $(CACHE_DIR)
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
BIN_DIR := $(CACHE_DIR)/bin
OPERATOR := $(CARGO_TARGET_DIR)/debug/bigip-operator

.PHONY: run test bench build controlplane crds lint image image-test chart-test chart-package clean-cache help

# `make bench`: the quick mode (200 VirtualServers, in 1 and in 100 partitions, ~4 minutes).
# Larger runs: make bench BENCH_ARGS="--sizes 1000,5000,10000 --partitions 1,100"
# (add --latency realistic for the AS3 time model; --help lists every option).
BENCH_ARGS ?= --sizes 200 --partitions 1,100

help:
	@echo "make run    - local control plane + BIG-IP simulator + operator, sample applied"
	@echo "make test   - all tests (unit, golden, integration, e2e) with a summary"
	@echo "make bench  - the scale benchmark (BENCH_ARGS=...; results in bench/results)"
	@echo "make crds   - regenerate crds/ and the chart's CRDs from the Rust types"
	@echo "make lint   - clippy and helm lint"
	@echo "make image  - the container image without a container engine (dist/image: OCI layout + docker tarball)"
	@echo "make image-test    - make image, then test it (unpacked, run from its own filesystem)"
	@echo "make chart-test    - helm lint/template of every example values file, schema refusals, package"
	@echo "make chart-package - dist/bigip-operator-<version>.tgz"

run:
	@hack/run-local.sh

test:
	@hack/test.sh

bench: controlplane
	BIGIP_E2E_BIN_DIR=$(BIN_DIR) cargo bench --bench scale -- $(BENCH_ARGS)

build:
	cargo test --no-run --test e2e   # the operator binary, with the feature set `make test` uses

controlplane:
	e2e/controlplane/build.sh

crds: build
	$(OPERATOR) crdgen --out-dir crds
	$(OPERATOR) crdgen --out-dir charts/bigip-operator/crds

lint: controlplane
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN_DIR)/helm lint charts/bigip-operator --set bigip.url=https://192.0.2.1 --set bigip.existingSecret=bigip-credentials

image:
	hack/image.sh

image-test:
	hack/image.sh test

chart-test: controlplane
	hack/chart-test.sh $(BIN_DIR)/helm

chart-package: controlplane
	mkdir -p dist && $(BIN_DIR)/helm package charts/bigip-operator --destination dist

clean-cache:
	rm -rf $(CACHE_DIR)
