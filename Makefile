PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
STAMP_RUN := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench i18n clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

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

test: $(STAMP) $(MERMAID)
	$(BIN)/ruff check helpline tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) var build *.egg-info
