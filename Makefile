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

test: $(STAMP)
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
