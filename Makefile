# Zentro: `make run` (demo on SQLite, with the job scheduler on) and `make test` (whole suite) work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist: one worker per core, each with its own test database; idle workers steal queued tests
# (make test PYTEST_ARGS= runs serially)
PYTEST_ARGS ?= -n auto --dist worksteal
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install install-test run test bench lint clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Zentro needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.run-deps

install: $(VENV)/.run-deps
install-test: $(VENV)/.test-deps

run: install
	$(BIN)/zentro db upgrade
	$(BIN)/zentro demo
	@echo "Zentro: open http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	ZENTRO_SCHEDULER=1 $(BIN)/zentro run --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/all.py $(BENCH_ARGS)

lint: install-test
	$(BIN)/python -m compileall -q zentro tests bench

clean:
	rm -rf $(VENV) .pytest_cache test-results
