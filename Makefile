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
EXPORT_ARGS ?=
SOAK_ARGS ?=
REPLICAS ?= 2
USER_REPOSITORY ?=
export TRITON_IMAGE HTTP_PORT GRPC_PORT METRICS_PORT IMAGE_BASE CONTAINER_ENGINE

STAMP := $(VENV)/.installed-$(shell echo $(EXTRAS) | tr ',' '-')

.PHONY: help setup tools export lint lint-repo k8s-validate serve image serve-container serve-replicas loadtest fuzz soak drill bench perf analyze test test-unit test-export test-integration clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install every pinned dependency (not TensorRT)

$(STAMP): pyproject.toml
	scripts/setup.sh "$(PYTHON)" "$(VENV)" "$(EXTRAS)"
	@touch $@

tools: setup ## install the tools outside .venv: perf_analyzer, Model Analyzer, the container's ONNX Runtime; as root on Debian also haproxy, prometheus, podman
	$(PY) -m tritonkit.tools install

export: setup ## train and export every model, regenerate every config.pbtxt (EXPORT_ARGS=--check-configs: check only)
	$(PY) -m tritonkit.export $(EXPORT_ARGS)

lint: setup ## ruff on the code and tests, mypy on the client package
	$(PY) -m ruff check src tests
	$(PY) -m mypy src/tritonkit/client

lint-repo: export ## check every config.pbtxt against its ONNX graph and every ensemble's wiring (USER_REPOSITORY=DIR: with your own)
	$(PY) -m tritonkit.export.repository.lint $(if $(USER_REPOSITORY),model_repository ensembles $(USER_REPOSITORY))

k8s-validate: setup ## render every Kubernetes overlay offline and validate each object (kubectl, kubernetes-validate)
	$(PY) -m tritonkit.deploy.validate

serve: export ## run the embedded tritonserver in the foreground (Ctrl-C stops it); USER_REPOSITORY=DIR serves your own models (`export add --repository DIR`) beside the project's
	$(PY) -m tritonkit.server $(if $(USER_REPOSITORY),--model-repository model_repository --model-repository ensembles --model-repository $(USER_REPOSITORY))

image: export ## build the image: Triton, the exported repositories, the launcher as entrypoint, non-root (docker, else podman; IMAGE_BASE=ngc|local)
	$(PY) -m tritonkit.server --container --build-only

serve-container: image ## run the image: read-only, non-root, ports on loopback, /dev/shm sized (docker, else podman)
	$(PY) -m tritonkit.server --container

serve-replicas: export tools ## REPLICAS embedded servers (default 2; CONTAINERS=1: as containers) behind HAProxy (HTTP 8000, gRPC 8001) with Prometheus (9090)
	$(PY) -m tritonkit.deploy.replicas --replicas $(REPLICAS) --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) $(if $(CONTAINERS),--containers)

loadtest: export ## 60 s headless locust run + server-side summary in reports/ (starts a server if none answers)
	$(PY) -m tritonkit.loadtest --url http://127.0.0.1:$(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) $(LOADTEST_ARGS)

fuzz: export ## only the fuzzers of make test: a real server over HTTP (schemathesis, openapi.json) and gRPC (hypothesis)
	$(PY) -m pytest tests/integration/test_fuzz.py -m fuzz $(PYTEST_ARGS)

soak: export ## 10-minute soak under mixed HTTP and gRPC load; resident memory of tritonserver, the front and every stub into bench/results/SOAK.md
	$(PY) -m tritonkit.loadtest.soak $(SOAK_ARGS)

drill: export tools ## REPLICAS replicas behind HAProxy (CONTAINERS=1: as containers): the split, the autoscaler's rule under load and idle, a failover; ~5 min, into bench/results/REPLICAS.md (REPLICAS_CONTAINERS.md)
	$(PY) -m tritonkit.deploy.drill --replicas $(REPLICAS) $(if $(CONTAINERS),--containers)

bench: export ## side-by-side benchmark (Flask+PyTorch vs Triton vs ORT in process), about 30 min, into bench/results/
	$(PY) -m tritonkit.bench $(BENCH_ARGS)

perf: tools ## Triton's perf_analyzer against the running server (same TRITON_ADMIN_KEY): every public endpoint, HTTP and gRPC, into reports/perf/
	$(PY) -m tritonkit.bench.perf $(PERF_ARGS)

analyze: export tools ## Triton's Model Analyzer on the embedded binary: sweeps a model's instances, batch sizes, queue delay (~1 min a point), into reports/analyze/
	$(PY) -m tritonkit.bench.analyze $(ANALYZE_ARGS)

test: export tools ## run every test: unit, export (trained models), then integration against a real tritonserver
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup ## unit tier only: trains nothing, starts nothing (seconds)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-export: export ## export tier only: checks of the trained and exported models
	$(PY) -m pytest tests/export $(PYTEST_ARGS)

test-integration: export ## integration tier only: a real tritonserver over HTTP and gRPC
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

clean: ## remove exported models and run-time files (keeps .venv)
	rm -rf .triton artifacts model_repository/*/[0-9]*/ ensembles/*/[0-9]*/tokenizer.json ensembles/*/[0-9]*/vocab.txt reports .pytest_cache
