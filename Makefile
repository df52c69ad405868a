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

run: install-ml web ## Start API, worker and beat on the embedded stack (SQLite, local files, broker folder) with a demo project
	$(PY) -m server.cli run

test: install-dev install-ml test-web ## Run the test suite (SQLite and Postgres; Redis for the worker tests; the browser tests)
	$(PY) -m pytest -q -p no:cacheprovider

# The browser UI (web/): npm ci when the lock file changes, a build when a source does.
.PHONY: web test-web
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/package.json
CHROMIUM ?= /usr/bin/chromium

web/node_modules/.stamp: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules/.stamp $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html ## Build the browser UI into web/dist (the API serves it at /)

# Debian's Chromium (Playwright never downloads a browser of its own here).
$(CHROMIUM):
	@echo "installing Chromium from Debian's packages"
	@SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

test-web: web install-dev $(CHROMIUM) ## Browser tests: Playwright drives headless Chromium against a real API (tests/web/stack.py)
	@test -x "$(CHROMIUM)" || { echo "test-web needs Chromium at $(CHROMIUM) (apt-get install chromium, or CHROMIUM=path)"; exit 1; }
	cd web && AA_CHROMIUM="$(CHROMIUM)" AA_PYTHON="$(abspath $(PY))" npm run test:e2e

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
