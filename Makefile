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

.PHONY: run test build controlplane crds lint clean-cache help

help:
	@echo "make run    - local control plane + BIG-IP simulator + operator, sample applied"
	@echo "make test   - all tests (unit, golden, integration, e2e) with a summary"
	@echo "make crds   - regenerate crds/ and the chart's CRDs from the Rust types"
	@echo "make lint   - clippy and helm lint"

run:
	@hack/run-local.sh

test:
	@hack/test.sh

build:
	cargo test --no-run --test e2e   # the operator binary, with the feature set `make test` uses

controlplane:
	e2e/controlplane/build.sh

crds: build
	$(OPERATOR) crdgen --out-dir crds
	$(OPERATOR) crdgen --out-dir charts/bigip-operator/crds

lint: controlplane
	cargo clippy --all-targets -- -D warnings
	$(BIN_DIR)/helm lint charts/bigip-operator --set bigip.url=https://192.0.2.1 --set bigip.existingSecret=bigip-credentials

clean-cache:
	rm -rf $(CACHE_DIR)
