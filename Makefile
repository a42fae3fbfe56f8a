# `make run` sets everything up and starts the hub; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test install install-dev lint bench faults clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What running needs; the test and lint tools come with install-dev (make test does it).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --quiet --disable-pip-version-check -e .
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

# Every setting, commented out, on the first run; never overwritten.
.env:
	@$(BIN)/python -m webhookhub.envfile

# Quiet: the hub's own lines, and the login last (runhub makes sure of the account).
run: install .env
	@$(BIN)/python manage.py migrate --noinput --verbosity 0
	@$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@$(BIN)/python manage.py runhub

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-dev
	$(BIN)/python bench/run.py

faults: install-dev
	$(BIN)/python bench/faults.py

clean:
	rm -rf $(VENV) var
