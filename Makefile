# daimm: every set-up step lives here, so a fresh clone needs only `make test` or `make demo`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
SOLC_VERSION := 0.8.28
APE := $(BIN)/ape
PYTEST_ARGS ?=

# py-solc-x (and so ape-solidity) finds the compiler as `solc-v<version>` in this folder.
export SOLCX_BINARY_PATH := $(VENV)/solcx
# anvil, solcjs and forge come from npm; the venv's tools come next.
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

SOLC := $(SOLCX_BINARY_PATH)/solc-v$(SOLC_VERSION)
# The browser module of `daimm web`: viem bundled by esbuild (both pinned in package.json).
WEB_JS := src/daimm/web/static/daimm.js
# The creator's module (encryption, key envelopes, CIDs, uploads): loaded only by publishing pages.
CREATOR_JS := src/daimm/web/static/daimm-creator.js
# Session keys for applications (Node and the browser): the same module the pages use, as one ES module.
SESSION_JS := src/daimm/web/static/daimm-session.mjs
# ONNX Runtime Web (npm onnxruntime-web, pinned): the publish page validates a model with it, its
# WebAssembly served by `daimm web` itself from /static, never from a CDN.
ORT_WEB := $(addprefix src/daimm/web/static/,ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)

.PHONY: help setup web compile contract-types slither test test-foundry lint demo bench fuzz console clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed $(SOLC) $(WEB_JS) $(CREATOR_JS) $(SESSION_JS) $(ORT_WEB) ## Install Python, npm and compiler tooling (idempotent).

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(WEB_JS): node_modules/.installed $(wildcard src/daimm/web/js/*.js)
	esbuild src/daimm/web/js/main.js --bundle --minify --format=iife --target=es2020 \
		--log-level=warning --outfile=$@

$(CREATOR_JS): node_modules/.installed $(wildcard src/daimm/web/js/*.js)
	esbuild src/daimm/web/js/creator.js --bundle --minify --format=iife --target=es2020 \
		--log-level=warning --outfile=$@

$(SESSION_JS): node_modules/.installed $(wildcard src/daimm/web/js/*.js)
	esbuild src/daimm/web/js/session.js --bundle --minify --format=esm --platform=browser \
		--target=es2022 --log-level=warning --outfile=$@

src/daimm/web/static/ort%: node_modules/.installed
	cp node_modules/onnxruntime-web/dist/ort$* $@

web: $(WEB_JS) $(CREATOR_JS) $(SESSION_JS) $(ORT_WEB) ## Build the browser module of `daimm web` (src/daimm/web/static/daimm.js).

$(SOLC): scripts/solc-bridge.mjs
	mkdir -p $(SOLCX_BINARY_PATH)
	printf '#!/bin/sh\nexec node "%s/scripts/solc-bridge.mjs" "$$@"\n' "$(CURDIR)" > $@
	chmod +x $@

compile: setup ## Compile the contracts through ape-solidity and the solcjs bridge.
	$(APE) compile

contract-types: compile ## Refresh the contract types the package ships (src/daimm/contracts/*.json).
	$(BIN)/python scripts/export_contract_types.py

test: compile ## Run the whole test suite (lint, ape's in-process chain, anvil, slither).
	$(MAKE) --no-print-directory lint
	$(APE) test tests --ignore=tests/e2e/test_chains.py --ignore=tests/property $(PYTEST_ARGS)
	$(APE) test $(ISOLATED_TESTS) $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-foundry
	$(MAKE) --no-print-directory slither

slither: setup ## Static analysis; fails on any untriaged high or medium finding (docs/SECURITY.md).
	scripts/slither.sh

# NOTE: run in a pytest process of their own: the six-ecosystem deploy tests connect to other
# networks inside the process, and the property test's model times every block of ape's in-process
# chain to the second; after the rest of the suite had run in the same process, a redeem at a
# channel's expiry second was mined one second off the model (twice in fresh-clone CI; passes
# alone and after the chain tests).
ISOLATED_TESTS := tests/e2e/test_chains.py tests/property

# Tests that need a real JSON-RPC node (the relayer daemon and the fault injection read anvil over
# HTTP) skip themselves on the in-process chain and run here.
ANVIL_ONLY_TESTS := tests/e2e/test_relayer.py tests/e2e/test_relayer_replicas.py \
	tests/e2e/test_sessions.py tests/trust/test_faults_on_anvil.py \
	tests/trust/test_catalog_kill_on_anvil.py tests/e2e/test_web.py tests/e2e/test_web_widgets.py \
	tests/e2e/test_tasks.py tests/e2e/test_browser_crypto.py \
	tests/e2e/test_session_js.py tests/e2e/test_web_sessions.py tests/e2e/test_web_publish.py \
	tests/e2e/test_web_credit.py tests/e2e/test_web_proofs.py tests/e2e/test_web_licences.py \
	tests/e2e/test_zk_story.py

test-foundry: compile ## Run the contract tests and the node-only tests against anvil (ape-foundry).
	$(APE) test tests/unit/contracts $(ANVIL_ONLY_TESTS) --network ethereum:local:foundry $(PYTEST_ARGS)

lint: setup ## ruff and mypy on the Python package.
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy src
	@# pytest runs without __init__.py files in tests/: two test files of one name cannot both load.
	@dups="$$(find tests -name 'test_*.py' -printf '%f\n' | sort | uniq -d)"; \
	test -z "$$dups" || { echo "test files share a name (rename one): $$dups"; exit 1; }

demo: compile ## The end-to-end marketplace story on a local chain and the embedded store.
	$(APE) run demo --network ethereum:local:foundry

bench: compile ## Benchmarks; results in bench/results/*.json, table in bench/README.md.
	$(APE) run gas_bench
	$(APE) run gas_bench --network ethereum:local:foundry
	$(BIN)/python bench/storage_bench.py
	$(BIN)/python bench/relayer_bench.py
	$(BIN)/python bench/model_bench.py
	$(BIN)/python bench/replica_bench.py
	$(BIN)/python bench/catalog_bench.py
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/chains_bench.py
	$(BIN)/python bench/zk_bench.py
	$(BIN)/python bench/zk_image_bench.py

fuzz: compile ## The long property, fuzz, load (60 s) and 1 GiB runs.
	DAIMM_FUZZ=long $(APE) test tests --ignore=tests/e2e/test_chains.py --ignore=tests/property $(PYTEST_ARGS)
	DAIMM_FUZZ=long $(APE) test $(ISOLATED_TESTS) $(PYTEST_ARGS)
	DAIMM_FUZZ=long $(MAKE) --no-print-directory test-foundry

console: compile ## ape console with the daimm contracts and namespace loaded.
	$(APE) console

clean: ## Remove build outputs (keeps .venv and node_modules).
	rm -rf .build .forge contracts/.cache
