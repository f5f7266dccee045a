# eastwest: `make conformance` runs the suites on the default backend (the lab),
# `make report` renders its sign-off report (one HTML file, history kept in reports/history.jsonl),
# `make test` runs the project's self-tests. Each installs what it needs on first use
# (.venv from PyPI; the pinned Allure 3 CLI into node_modules/ from npm, as package-lock.json says).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
NODE_STAMP  = node_modules/.installed-$(shell cksum package-lock.json | cut -d' ' -f1)
# Allure 3.18 needs Node 22's iterator helpers in places; the polyfill makes Node 20 work too.
ALLURE      = node --import ./reports/node-iterator-helpers.mjs node_modules/allure/cli.js

.PHONY: conformance report report-gate report-tools test lint mutants lab-up lab-down bench clean

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing eastwest with its dependencies (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make report needs Node.js 20+ and npm (apt-get install nodejs npm)"; exit 2; }
	@echo "==> installing the pinned Allure 3 CLI into node_modules/ (first run only)"
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.installed-*
	@touch $@

report-tools: $(NODE_STAMP)

# Results are cleaned per run; Allure 3 keeps history outside them (reports/history.jsonl).
conformance: $(STAMP)
	$(BIN)/pytest suites/ --alluredir=reports/allure-results --clean-alluredir \
		--conformance-report reports/conformance-report.json $(PYTEST_ARGS)

report: $(NODE_STAMP)
	@test -f reports/allure-results/environment.properties || { echo "make report: no finished run in reports/allure-results; run make conformance first"; exit 2; }
	$(ALLURE) generate reports/allure-results --config reports/allurerc.mjs
	@echo "==> reports/allure-report/index.html: the whole report in one file; open it from disk"

# The CI gate: no failed or broken test, and at least as many tests as the run selected (EASTWEST_MIN_TESTS to pin it).
report-gate: $(NODE_STAMP)
	$(ALLURE) quality-gate reports/allure-results --config reports/allurerc.mjs

test: lint
	@command -v npm >/dev/null && $(MAKE) -s report-tools || echo "==> the pinned Allure CLI is not installed (no npm, or no registry): the report self-tests will skip"
	$(BIN)/pytest tests/ $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# the suites against every mutant of tools/mutant_catalogue.py: a table, the score, non-zero if one survives
# (about 5 minutes on 2 cores: nightly CI, not make test)
mutants: $(STAMP)
	$(BIN)/python tools/mutants.py $(MUTANTS_ARGS)

lab-up: $(STAMP)
	$(BIN)/eastwest lab up

lab-down: $(STAMP)
	$(BIN)/eastwest lab down

bench: $(STAMP)
	$(BIN)/python bench/lab_lifecycle.py
	$(BIN)/python bench/conformance_run.py
	$(BIN)/python bench/failover_suite.py

# The real istiod's xDS for the lab's world (tools/istiod-golden, see README "How true the lab is"):
# writes goldens/<scenario>/world.json from manifests/, builds the Go tool (Go's module and build
# caches are reused: a cold build takes minutes), and regenerates every golden. Needs Go, not a lab.
GOLDEN_TOOL = tools/istiod-golden
GOLDEN_BIN  = $(GOLDEN_TOOL)/bin/istiod-golden

.PHONY: goldens

goldens: $(STAMP)
	@echo "==> writing goldens/<scenario>/world.json (the lab's world, from manifests/)"
	$(BIN)/python -m eastwest.backends.lab.world_json --manifests manifests --out goldens
	@echo "==> building $(GOLDEN_TOOL) against istio.io/istio (go.mod); each package is listed as it compiles"
	cd $(GOLDEN_TOOL) && GOFLAGS=-mod=readonly go build -v -o bin/istiod-golden .
	@echo "==> istiod's CDS, LDS, RDS and EDS for every proxy of every scenario"
	find goldens -mindepth 2 -name '*.json' ! -name world.json -delete
	$(GOLDEN_BIN) -out goldens goldens/*/world.json

clean:
	rm -rf $(VENV) node_modules reports/allure-results reports/allure-report
