# One entry point for people and CI. Every target creates the virtual environment itself, so it
# works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The fast tier: tests that need neither an emulator nor a child process (the marks come from
# each test's fixtures; see tests/conftest.py): the handlers run on in-memory ports
# (tests/support/fakes.py). A tenth of the property examples.
FAST := -m "not emulator and not subprocess" --hypothesis-profile=check

.PHONY: test check lint run clean clean-local

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# The browser tests (tests/web) drive Debian's Chromium, installed from Debian's packages when
# it is missing (as root, or through sudo); nothing is downloaded from anywhere else.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make: the browser tests need Debian's chromium package (apt-get not found)" >&2; exit 1; }
	$(SUDO) $(APT_INSTALL) || { $(SUDO) apt-get update && $(SUDO) $(APT_INSTALL); }

# The plugin's package tests (tests/web/test_package.py) load it with Node, Debian's nodejs
# package when no node is on PATH.
NODE := $(or $(shell command -v node),/usr/bin/node)
$(NODE):
	@command -v apt-get >/dev/null || { echo "make: the plugin's tests need Node (Debian's nodejs package; apt-get not found)" >&2; exit 1; }
	$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs || { $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs; }

# Everything CI runs (.ci/run): lint, format, types, the whole suite.
test: $(STAMP) $(CHROMIUM) $(NODE)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

# The edit loop: lint, format, types, the fast tier (well under a minute).
check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest $(FAST)

lint: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# `make run PORTS=auto` starts beside a running one, on free ports (and keeps no state).
# What the emulators hold is kept in .local/ (LOCAL_STATE_DIR) from one run to the next.
run: $(STAMP)
	PORTS=$(PORTS) $(PY) -m tools.run_local

# Forget what make run kept (dead letters, the ledger, the local signing key): its own files
# only; a folder holding anything else is left with it.
clean-local: $(STAMP)
	$(PY) -m tools.run_local --clean

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
