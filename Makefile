# eastwest: `make conformance` runs the suites on the default backend (the lab),
# `make test` runs the project's self-tests. Both create .venv and install on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: conformance test lint lab-up lab-down bench clean

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing eastwest with its dependencies (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

conformance: $(STAMP)
	$(BIN)/pytest suites/ --alluredir=reports/allure-results --clean-alluredir $(PYTEST_ARGS)

test: lint
	$(BIN)/pytest tests/ $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

lab-up: $(STAMP)
	$(BIN)/eastwest lab up

lab-down: $(STAMP)
	$(BIN)/eastwest lab down

bench: $(STAMP)
	$(BIN)/python bench/lab_lifecycle.py
	$(BIN)/python bench/conformance_run.py

clean:
	rm -rf $(VENV) reports/allure-results
