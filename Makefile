# The two commands: `make up` runs the platform locally, `make test` runs every check.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup up test lint typecheck proto proto-check sdk sdk-check bench experiments token clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock deploy/install-servers.sh deploy/install-browser.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	bash deploy/install-servers.sh
	bash deploy/install-browser.sh
	@touch $(STAMP)

up: setup
	$(PY) -m devstack up

test: setup proto-check sdk-check lint typecheck
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

proto: setup
	$(PY) proto/generate.py

proto-check: setup
	$(PY) proto/generate.py --check

sdk: setup
	$(PY) clients/generate_models.py

sdk-check: setup
	$(PY) clients/generate_models.py --check

bench: setup
	$(PY) -m auction_bench.rest_war

# All experiments, one report: reports/<timestamp>/report.md (SCALE=quick for a shorter run).
experiments: setup
	$(PY) -m auction_bench.experiments --scale $(or $(SCALE),full)

token: setup
	$(PY) -m devstack.tokens --role bidder --sub alice

clean:
	rm -rf $(VENV) .state .mypy_cache .ruff_cache .pytest_cache

.PHONY: deploy-check
# Offline checks of deploy/ (compose, kustomize + schemas, terraform fmt + HCL structure, hadolint).
deploy-check: setup
	$(PY) deploy/validate.py
