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
NPM ?= npm
# Node tools of the contract tests (AsyncAPI parser, tsc, ws), into js/node_modules.
JS_STAMP := js/node_modules/.installed

.PHONY: install install-runtime test lint typecheck docs pytest demo bench clean contract-docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(JS_STAMP): js/package.json js/package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(NPM) ci --prefix js --ignore-scripts --no-audit --no-fund --loglevel=error \
		&& touch $(JS_STAMP); \
	else \
		echo "npm not found: the contract tests that need Node will be skipped"; \
	fi

install: $(STAMP) $(JS_STAMP)

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

# The docs page rendering the example's contract (a test checks it is current).
contract-docs: install
	DJANGO_SETTINGS_MODULE=example.settings $(BIN)/python -m actors.cli schema \
		--format markdown > docs/example-contract.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info site js/node_modules
