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
	@echo "The local pipeline (emulator + ingest + deliver) is not wired yet."
	@echo "Preview a mapping meanwhile:  $(PY) -m mapper < tests/payloads/order_completed.json"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
