PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
STAMP_RUN := $(VENV)/.installed

# helpline needs Python 3.11 or newer. A .venv made with another Python (or an older one)
# is noticed and made again with $(PY).
PY_ID := $(shell $(PY) -c 'import sys; print(sys.base_prefix + "/python" + sys.version.split()[0] if sys.version_info >= (3, 11) else "old")' 2>/dev/null)
ifeq ($(PY_ID),)
$(error $(PY) was not found; helpline needs Python 3.11 or newer: make PY=python3.11)
endif
ifeq ($(PY_ID),old)
$(error $(PY) is older than Python 3.11, which helpline needs: make PY=python3.11)
endif
ifneq ($(wildcard $(VENV)),)
VENV_ID := $(shell $(BIN)/python -c 'import sys; print(sys.base_prefix + "/python" + sys.version.split()[0])' 2>/dev/null)
ifneq ($(VENV_ID),$(PY_ID))
$(info $(VENV) was made with $(or $(VENV_ID),a Python that is gone); making it again with $(PY_ID))
$(shell rm -rf $(VENV))
endif
endif

.PHONY: demo test test-postgresql test-together lint typecheck check bench i18n constraints wheel-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Playwright (a test extra, for the console's browser tests) drives Debian's chromium
# (apt-get install -y chromium; .ci/run does it) and never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

$(STAMP_RUN): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/helpline chat

# The mermaid npm package, for the test that parses `helpline flows graph` output (skipped,
# saying why, only where node is missing).
MERMAID := tests/mermaid/node_modules/mermaid/package.json

$(MERMAID): tests/mermaid/package.json
	@if command -v npm >/dev/null; then \
		npm install --prefix tests/mermaid --no-package-lock --no-audit --no-fund --silent \
		&& touch $@; else echo "npm not found: the Mermaid parse test will be skipped"; fi

# The conversations kept in PostgreSQL too (TESTS_BACKEND=postgresql: each test's harness
# on a schema of its own on a throw-away cluster, tests/postgres.py): the pipeline, the
# inbox and queue across restarts, the desks, outreach, statistics, erasing, the directory.
# The store's contract, the directory's lookups and migrate-db run on both in every pass.
PG_TESTS := tests/test_pipeline.py tests/test_durability.py tests/test_durability_desk.py \
	tests/test_handoff.py tests/test_handoff_one_turn.py tests/test_console_desk.py \
	tests/test_outreach.py tests/test_outreach_desk.py tests/test_stats_counted.py \
	tests/test_erase_on_request.py tests/test_resources_browse.py

# Again, the harness's app serving as one of several workers together ([workers] together:
# people's locks across workers, rows read afresh, the inbox swept); tests/test_together.py
# runs the workers themselves in every pass.
TOGETHER_TESTS := tests/test_pipeline.py tests/test_durability.py tests/test_handoff.py

test: $(STAMP) $(MERMAID)
	$(BIN)/ruff check helpline tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest
	TESTS_BACKEND=postgresql $(BIN)/python -m pytest -q $(PG_TESTS)
	TESTS_BACKEND=postgresql TESTS_TOGETHER=1 $(BIN)/python -m pytest -q $(TOGETHER_TESTS)

# Every test with the harness's conversations in PostgreSQL (a few read the SQLite file
# itself and say so).
test-postgresql: $(STAMP)
	TESTS_BACKEND=postgresql $(BIN)/python -m pytest

# Every test whose harness can serve together, that way.
test-together: $(STAMP)
	TESTS_BACKEND=postgresql TESTS_TOGETHER=1 $(BIN)/python -m pytest \
		$$(grep -l "harness\b\|basic\b\|harness_factory" tests/test_*.py)

lint: $(STAMP)
	$(BIN)/ruff check helpline tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Every benchmark (bench/README.md), median of 3 runs, one table. BENCH_ARGS=--quick for a
# short run; only loopback traffic (the Telegram and Signal fakes on 127.0.0.1).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Extract every text into locales/helpline.pot, update each catalogue, check them.
i18n: $(STAMP_RUN)
	$(BIN)/helpline i18n

# constraints.txt: the versions of everything the wheel installs, as tested in .venv (the
# Dockerfile and .ci/wheel-check install with it). Run after changing dependencies.
constraints: $(STAMP)
	bash deploy/make-constraints $(BIN)/python

# The wheel built and run from a fresh venv outside the checkout (also run by .ci/run).
wheel-check: $(STAMP)
	bash .ci/wheel-check

clean:
	rm -rf $(VENV) var build *.egg-info
