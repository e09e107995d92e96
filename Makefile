# kerberos-bot: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install install-system demo test lint typecheck check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install-system:
	./scripts/install-system-packages.sh

install: install-system $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"

demo: install
	$(BIN)/kerberos-bot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.ack_latency
	$(BIN)/python -m bench.approvals

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .sandbox
