# Annotate Anyone: `make run` starts the engine, `make test` runs the tests. `make help` lists all.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

.PHONY: help run test check lint types imports install install-dev install-ml demo clean

help: ## Show the targets and what they do
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.stamp-base: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install -q -e '.[dev]'
	@touch $@

# torch 2.14.1 / torchvision 0.29.1 are the builds this machine keeps on disk (see README).
$(VENV)/.stamp-ml: $(VENV)/.stamp-base
	$(PIP) install -q -e '.[ml]'
	@touch $@

install: $(VENV)/.stamp-base ## Create the virtualenv with what the engine needs

install-dev: $(VENV)/.stamp-dev ## Add the test and lint tools

install-ml: $(VENV)/.stamp-ml ## Add torch, open_clip and transformers (labelers)

run: install-ml ## Start API, worker and beat on the embedded stack (SQLite, local files, broker folder) with a demo project
	$(PY) -m server.cli run

test: install-dev install-ml ## Run the test suite (SQLite and Postgres; Redis for the worker tests)
	$(PY) -m pytest -q -p no:cacheprovider

lint: install-dev ## ruff
	$(PY) -m ruff check server workers tests bench

types: install-dev ## mypy --strict
	$(PY) -m mypy server workers

imports: install-dev ## Check the import rules of ARCHITECTURE.md (import-linter)
	$(VENV)/bin/lint-imports

check: lint types imports test ## Everything CI checks

demo: install-ml ## Add a demo project of synthetic people to a running engine's database
	$(PY) -m server.cli demo --wait

clean: ## Remove the virtualenv and the local data folder
	rm -rf $(VENV) var
