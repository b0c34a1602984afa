# Set-up and gates. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test static check lint typecheck imports openapi clean

setup: $(STAMP)

# Byte-compiled at set-up, whatever PYTHONDONTWRITEBYTECODE says: a process that imports from
# source keeps the compiler's leftovers (a backup's upload process: 68 MB after its imports, not 54).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 src $(VENV)/lib
	touch $(STAMP)

run: setup
	$(BIN)/sddc-backup serve

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

imports: setup
	$(BIN)/lint-imports

static: lint typecheck imports

check: static test

openapi: setup
	$(BIN)/sddc-backup openapi > docs/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
