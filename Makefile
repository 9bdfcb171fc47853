# AurumAI: the verbs a person types. `make` alone lists them.
#
# Every target works from a fresh Debian 12 machine with only the Rust toolchain: the scripts
# under deploy/scripts install (apt) and start what is missing, and leave running services alone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
SCRIPTS := $(ROOT)/deploy/scripts
CARGO ?= cargo
# Extra arguments for one benchmark script, e.g. `make bench-ingest BENCH_ARGS="--help"`
# (`make bench` runs both with their defaults).
BENCH_ARGS ?=
# Seconds of load and faults in `make soak` (a calibration and the drain come on top).
SOAK_SECONDS ?= 240
# Arguments for `make secrets`, e.g. ARGS="--format env --out deploy.env".
ARGS ?=

# mosquitto lives in /usr/sbin, which a non-login PATH may lack; the tests start it from PATH.
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: help demo demo-check deps build-deps build test lint audit fmt bench bench-ingest bench-predict bench-gateway clean-demo images-lint helm-lint backup-check secrets soak fuzz

help: ## List the targets
	@printf 'AurumAI make targets:\n\n'
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  make %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@printf '\nSee README.md and docs/ for details.\n'

demo: ## Run the local demo in the foreground (PostgreSQL, Mosquitto, ingestion, simulator) until Ctrl-C
	bash "$(SCRIPTS)/demo.sh"

demo-check: ## Start the demo, wait for the first stored telemetry row, stop (smoke test)
	bash "$(SCRIPTS)/demo.sh" --check

deps: ## Install/start what building and testing need (build tools, PostgreSQL, mosquitto binary)
	bash "$(SCRIPTS)/deps.sh"

build-deps: ## Install only the build dependencies (cmake, pkg-config, libssl-dev, protoc, ...)
	bash "$(SCRIPTS)/deps.sh" --build-only

build: build-deps ## Build the workspace (debug profile)
	cd "$(ROOT)" && $(CARGO) build --workspace

test: deps ## Run every test: the workspace's (nextest when installed), the chart's, backup and restore
	cd "$(ROOT)" && if command -v cargo-nextest >/dev/null 2>&1; then \
		env -u RUST_LOG $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		env -u RUST_LOG $(CARGO) test --workspace --no-fail-fast; \
	fi
	bash "$(SCRIPTS)/observability-check.sh"
	bash "$(SCRIPTS)/helm-lint.sh"
	bash "$(SCRIPTS)/backup-restore-check.sh"

soak: deps ## Soak with faults: load at 80 % of the measured ingest rate while services, broker and database fail (SOAK_SECONDS=240)
	cd "$(ROOT)" && nice -n 10 $(CARGO) build --release -p aurum-auth -p aurum-gateway -p aurum-ingestion -p aurum-prediction
	cd "$(ROOT)" && env -u RUST_LOG TEST_LOG=1 SOAK_SECONDS=$(SOAK_SECONDS) nice -n 10 \
		$(CARGO) test --release -p aurum-e2e --test soak -- --ignored --nocapture

lint: build-deps ## rustfmt check and clippy with warnings denied
	cd "$(ROOT)" && $(CARGO) fmt --all -- --check
	cd "$(ROOT)" && $(CARGO) clippy --workspace --all-targets -- -D warnings

audit: ## Dependency advisories (cargo-audit) and licence/ban/source policy (cargo-deny), offline
	bash "$(SCRIPTS)/audit.sh"

fmt: ## Format the workspace with rustfmt
	cd "$(ROOT)" && $(CARGO) fmt --all

bench: ## Run the benchmarks (ingestion, prediction, then the gateway), each with its defaults
	bash "$(SCRIPTS)/bench-ingest.sh"
	bash "$(SCRIPTS)/bench-predict.sh"
	bash "$(SCRIPTS)/bench-gateway.sh"

bench-ingest: ## Ingestion throughput benchmark (deploy/scripts/bench-ingest.sh; BENCH_ARGS=... passes options)
	@test -f "$(SCRIPTS)/bench-ingest.sh" || { echo "deploy/scripts/bench-ingest.sh is not in this checkout" >&2; exit 1; }
	bash "$(SCRIPTS)/bench-ingest.sh" $(BENCH_ARGS)

bench-predict: ## Prediction benchmark: scoring, 10k-machine batches, fleet view (deploy/scripts/bench-predict.sh; BENCH_ARGS=...)
	@test -f "$(SCRIPTS)/bench-predict.sh" || { echo "deploy/scripts/bench-predict.sh is not in this checkout" >&2; exit 1; }
	bash "$(SCRIPTS)/bench-predict.sh" $(BENCH_ARGS)

bench-gateway: ## Gateway overhead: backend direct vs nginx vs gateway under wrk (deploy/scripts/bench-gateway.sh; BENCH_ARGS=...)
	@test -f "$(SCRIPTS)/bench-gateway.sh" || { echo "deploy/scripts/bench-gateway.sh is not in this checkout" >&2; exit 1; }
	bash "$(SCRIPTS)/bench-gateway.sh" $(BENCH_ARGS)

clean-demo: ## Remove the demo's local state (.aurumai/: logs, spool, broker data); the database stays
	rm -rf -- "$(ROOT)/.aurumai"

helm-lint: ## Render the Helm chart (default and production values), lint it, validate against the Kubernetes schemas, policy check
	bash "$(SCRIPTS)/helm-lint.sh"

backup-check: ## Backup and restore drill against the local PostgreSQL: dump, encrypt, drop, restore, compare row counts
	bash "$(SCRIPTS)/backup-restore-check.sh"

secrets: ## Generate a new deployment's secrets: make secrets ARGS="--format k8s|env --out FILE" (never printed)
	bash "$(SCRIPTS)/secrets.sh" $(ARGS)

fuzz: ## Fuzz the parsers of outside input (cargo-fuzz, nightly): FUZZ_SECONDS per target (600), FUZZ_TARGETS=... for some
	bash "$(SCRIPTS)/fuzz.sh" $(FUZZ_TARGETS)

images-lint: ## Lint deploy/docker/Dockerfile: hadolint + image policy (pinned bases, non-root USER, STOPSIGNAL)
	bash "$(SCRIPTS)/lint-images.sh"
