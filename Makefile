# hybrideq: setup and the README's commands.
#
# Every target works from a fresh clone with nothing but `python3`: the virtual environment
# is created in .venv, torch is installed first and pinned (so pip never resolves a bare
# `torch` into the CUDA packages), then the package in editable mode with the extras the
# target needs. Stamp files in .venv record each install; a stamp is remade when
# pyproject.toml changes, so a second `make test` goes straight to the checks.
#
# Variables (override on the command line or in the environment):
#   PYTHON           interpreter that creates .venv                 (python3)
#   TORCH_VERSION    torch version installed first                  (2.13.0)
#   TORCH_INDEX_URL  wheel index for torch, e.g. https://download.pytorch.org/whl/cpu
#   PYTEST_ARGS      extra pytest arguments, e.g. PYTEST_ARGS="-x -k ode"
#   DEMO_ARGS        extra `hybrideq demo` arguments, e.g. DEMO_ARGS="--lbfgs 30 --no-plot"

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install --disable-pip-version-check --progress-bar off
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
PYTEST_ARGS ?=
DEMO_ARGS ?=

# Only directories that exist: git does not keep empty ones.
LINT_PATHS := $(wildcard src tests benchmarks examples)
# benchmarks/_*.py are shared helpers, not workloads.
BENCH_SCRIPTS := $(sort $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)))

.PHONY: help venv demo lint format typecheck test test-all bench bench-quick docs clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

# --------------------------------------------------------------------------- environment

# The interpreter, an up-to-date pip, and torch, installed before anything can ask for it.
$(VENV)/.stamp-base:
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	@touch $@

$(VENV)/.stamp-core: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e .
	@touch $@

$(VENV)/.stamp-plot: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e ".[plot]"
	@touch $@

$(VENV)/.stamp-demo: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e ".[plot]" "pysindy>=2.0"
	@touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e ".[test,dev]"
	@touch $@

$(VENV)/.stamp-bench: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e ".[bench]"
	@touch $@

$(VENV)/.stamp-docs: pyproject.toml $(VENV)/.stamp-base
	$(PIP_INSTALL) -e ".[docs]"
	@touch $@

venv: $(VENV)/.stamp-core ## create .venv: pip, torch (pinned, first), then hybrideq and its dependencies

# --------------------------------------------------------------------------- the README's commands

demo: $(VENV)/.stamp-demo ## the UDE Lotka–Volterra study; prints the discovered equations, writes out/ude_lotka_volterra.png
	$(VENV)/bin/hybrideq demo $(DEMO_ARGS)

lint: $(VENV)/.stamp-test ## ruff lint and format check
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

format: $(VENV)/.stamp-test ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix $(LINT_PATHS)
	$(PY) -m ruff format $(LINT_PATHS)

typecheck: $(VENV)/.stamp-test ## mypy (files and options in pyproject.toml)
	$(PY) -m mypy

test: lint typecheck ## ruff, mypy and the tests, except those marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint typecheck ## ruff, mypy and every test, slow ones included
	$(PY) -m pytest $(PYTEST_ARGS)

# --------------------------------------------------------------------------- benchmarks and docs

bench: $(VENV)/.stamp-bench ## run every benchmarks/*.py in full
	@test -n "$(BENCH_SCRIPTS)" || { echo "no benchmark scripts in benchmarks/"; exit 0; }
	@set -e; for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(PY) $$script; done

bench-quick: $(VENV)/.stamp-bench ## run every benchmarks/*.py with --quick
	@test -n "$(BENCH_SCRIPTS)" || { echo "no benchmark scripts in benchmarks/"; exit 0; }
	@set -e; for script in $(BENCH_SCRIPTS); do echo "== $$script --quick"; $(PY) $$script --quick; done

docs: $(VENV)/.stamp-docs ## build the documentation site into site/ (mkdocs, strict)
	$(PY) -m mkdocs build --strict

# --------------------------------------------------------------------------- cleaning

clean: ## remove build outputs and caches (keeps .venv)
	rm -rf build dist site out .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d -name '*.egg-info' -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
