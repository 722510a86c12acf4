# From a fresh clone: `make test` and `make demo` are all it takes.
# `make demo` installs the library and what the demo needs, not the dev tools.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The demo's ASGI server: daphne or uvicorn (make demo SERVER=uvicorn).
SERVER ?= daphne
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: install install-runtime test lint typecheck docs pytest demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The runtime, channels_redis (the demo uses it when REDIS_URL is set) and uvicorn
# (make demo SERVER=uvicorn).
$(RUNTIME_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[redis,uvicorn]'
	touch $(RUNTIME_STAMP)

install-runtime: $(RUNTIME_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# Strict: a broken link or a page missing from the nav fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck docs pytest

demo: install-runtime
	$(BIN)/python -m example.demo --port $(PORT) --server $(SERVER)

bench: install
	$(BIN)/envelope bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info site
