# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo
PORT ?= 8501

.PHONY: demo dashboard test install dev docs clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# Ends with the dashboard running on http://localhost:$(PORT)/ (Ctrl+C stops it).
demo: install
	$(VENV)/bin/driftline demo --dir $(DEMO_DIR) --port $(PORT)

# The dashboard again on the demo's store, without regenerating it.
dashboard: install
	$(VENV)/bin/driftline dashboard --config $(DEMO_DIR)/driftline.yaml --port $(PORT)

test: dev
	$(PY) -m pytest

docs: install
	$(PY) -m monitor.docs --write README.md

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build *.egg-info
