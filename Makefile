# Quick start: `make demo` and `make test` on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PYTEST_WORKERS ?= 2

.PHONY: demo test bench lint gradcheck docs docs-check notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# One stamp per set of extras; re-installs when pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[notebooks]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[test,notebooks,bench]"
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[bench,notebooks]"
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[docs,notebooks]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python -m functional_dl demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=20 --nbmake tests notebooks

gradcheck: $(VENV)/.installed-demo
	$(BIN)/python -m functional_dl gradcheck

bench: $(VENV)/.installed-bench
	$(BIN)/python -m functional_dl bench --output bench/

# ruff (lint rules and formatting) over the code, pyright (basic mode) over the package.
lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check functional_dl tests bench docs examples
	$(BIN)/python -m ruff format --check functional_dl tests bench docs examples
	$(BIN)/python -m pyright --project pyproject.toml

# The documentation site (mkdocs, strict) into site/; docs-check loads it in headless Chromium.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --clean

docs-check: docs
	$(BIN)/python docs/check_site.py

# Execute every notebook in place (fixed keys), so the stored notebooks show their plots.
notebooks: $(VENV)/.installed-test
	$(BIN)/python docs/run_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build site .cache *.egg-info
