# tritonkit: `make help` lists the targets. Versions and ports are variables: `make serve HTTP_PORT=9000`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= server,export,client,loadtest,bench,dev
TRITON_IMAGE ?= nvcr.io/nvidia/tritonserver:24.10-py3
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
PYTEST_ARGS ?=
LOADTEST_ARGS ?=
BENCH_ARGS ?=
export TRITON_IMAGE HTTP_PORT GRPC_PORT METRICS_PORT

STAMP := $(VENV)/.installed-$(shell echo $(EXTRAS) | tr ',' '-')

.PHONY: help setup export lint-repo serve serve-docker loadtest bench test test-unit clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install every pinned dependency (not TensorRT)

$(STAMP): pyproject.toml
	scripts/setup.sh "$(PYTHON)" "$(VENV)" "$(EXTRAS)"
	@touch $@

export: setup ## train and export every model into model_repository/ (skips up-to-date ones)
	$(PY) -m export

lint-repo: export ## check every config.pbtxt against its ONNX graph and every ensemble's wiring
	$(PY) -m export.lint

serve: export ## run the embedded tritonserver in the foreground (Ctrl-C stops it)
	$(PY) -m server

serve-docker: ## build the NGC-based image and run the same repositories with docker (needs a Docker engine)
	$(PYTHON) -m server --docker

loadtest: export ## 60 s headless locust run + server-side summary in reports/ (starts a server if none answers)
	$(PY) -m loadtest --url http://127.0.0.1:$(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) $(LOADTEST_ARGS)

bench: export ## side-by-side benchmark (Flask+PyTorch vs Triton vs ORT in process), ~25 min, into bench/results/
	$(PY) -m bench $(BENCH_ARGS)

test: export ## run every test: unit, then integration against a real tritonserver
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup ## unit tests only (no server)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

clean: ## remove exported models and run-time files (keeps .venv)
	rm -rf .triton artifacts model_repository/*/[0-9]*/ ensembles/*/[0-9]*/tokenizer.json ensembles/*/[0-9]*/vocab.txt reports .pytest_cache
