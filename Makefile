# From a fresh clone: `make test` and `make demo` are all it takes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
NPM ?= npm
# Node tools of the contract tests (AsyncAPI parser, tsc, ws), into js/node_modules.
JS_STAMP := js/node_modules/.installed

.PHONY: install test lint typecheck pytest demo bench clean contract-docs

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: install
	$(BIN)/python -m example.demo --port $(PORT)

bench: install
	$(BIN)/envelope bench $(BENCH_ARGS)

# The docs page rendering the example's contract (a test checks it is current).
contract-docs: install
	DJANGO_SETTINGS_MODULE=example.settings $(BIN)/python -m actors.cli schema \
		--format markdown > docs/example-contract.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info js/node_modules
