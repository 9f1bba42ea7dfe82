# The two commands of the README: `make demo` runs the main job, `make test` passes the tests.
# Both work on a fresh machine: they install what is missing and start the lab first.
SHELL := /bin/bash
PY := .venv/bin/python
LAB := $(PY) -m e2e.lab
export UV_CACHE_DIR ?= $(HOME)/.cache/uv

.PHONY: help deps venv lab-up lab-up-3 lab-down lab-status test test-unit lint fmt demo bench clean crds

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps:  ## install the system packages (apt) and uv, only what is missing
	@bash e2e/lab/tools/install-system-deps.sh

.venv/.synced: pyproject.toml uv.lock
	uv sync --locked --extra dev --python python3
	@touch $@

venv: deps .venv/.synced  ## create .venv with the locked dependencies

lab-up: venv  ## start the lab: Cassandra, Postgres+TimescaleDB, a ClickHouse server, OpenBao, Kubernetes API (idempotent)
	$(LAB) up

lab-up-3: venv  ## start the lab with three Cassandra nodes
	$(LAB) up --cassandra-nodes 3

lab-down:  ## stop the lab
	$(LAB) down

lab-status:  ## where each lab service runs
	$(LAB) status

test: lab-up  ## run every test against the lab
	$(PY) -m pytest

test-unit: venv  ## run the unit tests only (no lab)
	$(PY) -m pytest -m unit

lint: venv  ## ruff, mypy --strict and the layer contracts (lint-imports, see pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo

fmt: venv  ## format the code
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

demo: lab-up  ## the main job: Cassandra changes masked into Postgres, TimescaleDB and ClickHouse
	$(PY) -m e2e.demo

bench: lab-up  ## the benchmarks against the lab (masking per value and end to end, decode, replicate): one JSON object per line
	$(PY) -m bench

crds: venv  ## regenerate crds/*.yaml and the chart's copies from the API models
	.venv/bin/cdc-operator crds

clean:  ## remove the virtualenv and caches of the tools (not the lab's downloads)
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
