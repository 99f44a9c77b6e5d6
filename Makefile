# One entry point for people and CI. `make test` and `make run` create the virtual environment
# themselves, so they work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint run clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

run: $(STAMP)
	$(PY) -m tools.run_local

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
