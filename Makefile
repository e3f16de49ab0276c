# evidence-operator: the two commands a newcomer needs are `make demo` and `make test`.
# Everything else is a building block of those two. `make help` lists them.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
SERVERS_DIR ?= $(CURDIR)/target/servers
TEST_SERVERS_DIR ?= $(CURDIR)/target/servers-make-test

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

.PHONY: tools
tools: ## Fetch (build, cache) the pinned kube-apiserver, etcd, kubectl, MinIO, SeaweedFS, helm, rclone, s5cmd ahead of time
	tests/servers/install.sh etcd kube-apiserver kubectl minio seaweedfs helm rclone s5cmd

.PHONY: servers-up
servers-up: ## Start etcd, kube-apiserver, MinIO and SeaweedFS on loopback; env in target/servers/env
	tests/servers/up.sh --dir $(SERVERS_DIR)
	@echo "source $(SERVERS_DIR)/env   # to use them from this shell"

.PHONY: servers-down
servers-down: ## Stop the servers started by servers-up and remove their data
	tests/servers/down.sh --dir $(SERVERS_DIR)

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

# lint, unit, integration and test all run tests/test.sh, which builds every target once
# (clippy linting the project's crates as they compile) and says what it is doing.
.PHONY: lint
lint: ## Check formatting, and build every target with clippy (warnings are errors)
	tests/test.sh fmt build

.PHONY: unit
unit: ## Unit and property tests (no servers)
	tests/test.sh build unit

.PHONY: crds
crds: ## Regenerate crds/, deploy/admission/, the chart's copies and deploy/ from the Rust types
	$(CARGO) run --locked -q -p evidence-operator -- crds --out .
	deploy/render.sh

.PHONY: integration
integration: ## Integration tests against real servers (started and stopped here)
	TEST_SERVERS_DIR=$(TEST_SERVERS_DIR) tests/test.sh tools build integration

.PHONY: test
test: ## Everything CI runs: tools (alongside), fmt, one build with clippy, unit tests, integration tests against real servers
	TEST_SERVERS_DIR=$(TEST_SERVERS_DIR) tests/test.sh

SOAK_RUNS ?= 20
SOAK_STARTS ?= 50
.PHONY: soak
soak: ## Look for chance failures: the integration suite SOAK_RUNS times, then SOAK_STARTS interleaved server start-ups
	tests/soak.sh suite $(SOAK_RUNS)
	tests/soak.sh servers $(SOAK_STARTS)

BENCH_JOB ?= compare
BENCH_CLIPS ?= 10000
BENCH_RSS_AT ?= 100000
BENCH_ARGS ?=
# The request job's own default N (100,000) unless BENCH_CLIPS is given.
ifeq ($(origin BENCH_CLIPS),file)
BENCH_REQUEST_CLIPS := 100000
else
BENCH_REQUEST_CLIPS := $(BENCH_CLIPS)
endif
.PHONY: bench
bench: ## Operator vs rclone, s5cmd and the S3 ceiling (BENCH_CLIPS=100000 for more), in target/bench/; BENCH_JOB=steady: the catalogue's steady sweep on MinIO and SeaweedFS, in target/bench/steady/; BENCH_JOB=ingest: the dock ingest vs rclone and s5cmd, then expire and move of ingested clips, in target/bench/ingest/; BENCH_JOB=request: answering an AccessRequest over 100,000 clips with and without the catalogue, in target/bench/request/
ifeq ($(BENCH_JOB),steady)
	tests/servers/install.sh minio seaweedfs > /dev/null
	$(CARGO) run --release --locked -q -p evidence-operator-tests --bin evidence-bench -- steady \
	  --clips $(BENCH_CLIPS) --data target/bench/steady-data --out target/bench/steady \
	  --command-line "make bench BENCH_JOB=steady BENCH_CLIPS=$(BENCH_CLIPS) $(BENCH_ARGS)" $(BENCH_ARGS)
else ifeq ($(BENCH_JOB),compare)
	tests/servers/install.sh minio rclone s5cmd > /dev/null
	$(CARGO) run --release --locked -q -p evidence-operator-tests --bin evidence-bench -- run \
	  --clips $(BENCH_CLIPS) --rss-at $(BENCH_RSS_AT) --out target/bench \
	  --command-line "make bench BENCH_CLIPS=$(BENCH_CLIPS) BENCH_RSS_AT=$(BENCH_RSS_AT) $(BENCH_ARGS)" $(BENCH_ARGS)
else ifeq ($(BENCH_JOB),ingest)
	tests/servers/install.sh minio rclone s5cmd > /dev/null
	$(CARGO) run --release --locked -q -p evidence-operator-tests --bin evidence-bench -- ingest \
	  --small-clips $(BENCH_CLIPS) --sweep-clips $(BENCH_CLIPS) --data target/bench/ingest-data --out target/bench/ingest \
	  --command-line "make bench BENCH_JOB=ingest BENCH_CLIPS=$(BENCH_CLIPS) $(BENCH_ARGS)" $(BENCH_ARGS)
else ifeq ($(BENCH_JOB),request)
	tests/servers/install.sh minio seaweedfs > /dev/null
	$(CARGO) run --release --locked -q -p evidence-operator-tests --bin evidence-bench -- request \
	  --clips $(BENCH_REQUEST_CLIPS) --data target/bench/request-data --out target/bench/request \
	  --command-line "make bench BENCH_JOB=request BENCH_CLIPS=$(BENCH_REQUEST_CLIPS) $(BENCH_ARGS)" $(BENCH_ARGS)
else
	@echo "BENCH_JOB must be compare (the default), steady, ingest or request" >&2; exit 2
endif

.PHONY: demo
demo: ## Local control plane + MinIO + operator, clips moving between tiers (Ctrl-C to stop)
	tests/demo/run.sh

.PHONY: image
image: ## Build the operator image here, no registry: image/rootfs.sh + the Dockerfile's final stage (buildah); target/image/evidence-operator.tar
	image/build.sh --out $(CURDIR)/target/image --tag evidence-operator:dev

.PHONY: e2e-node
e2e-node: ## Root: the image and the Helm chart on a real one-node cluster here (kubelet, containerd, bridge CNI); see docs/e2e-node.md. Not part of make test
	tests/e2e/node/run.sh

.PHONY: clean-cache
clean-cache: ## Remove the cached server binaries (~/.cache/evidence-operator)
	rm -rf "$${EVIDENCE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/evidence-operator}"
