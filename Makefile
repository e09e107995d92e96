# kerberos-bot: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install install-system demo test test-fast lint typecheck check bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install-system:
	./scripts/install-system-packages.sh

# the locked runtime set first (checked by hash), so the tests run on what the image ships
install: install-system $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock -r requirements-sandbox.lock
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps -e ./sandbox  # the sandbox: its own distribution, never in the image

demo: install
	$(BIN)/kerberos-bot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

# the quick loop while working: unit, the contract suites on their fakes, the handler suites (no Samba,
# no real adapter); `make test` is what lands
test-fast: install
	$(BIN)/pytest -q --fast tests/unit tests/contracts tests/handlers

bench: install
	$(BIN)/python -m bench.ack_latency
	$(BIN)/python -m bench.approvals
	$(BIN)/python -m bench.failover

# re-resolve requirements.lock from pyproject.toml and requirements-sandbox.lock (what the sandbox adds) from
# sandbox/requirements.in, after changing a dependency; hashes included
lock:
	$(PYTHON) -m venv /tmp/kerberos-bot-lock && /tmp/kerberos-bot-lock/bin/pip install -q pip-tools
	/tmp/kerberos-bot-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	/tmp/kerberos-bot-lock/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --output-file requirements-sandbox.lock sandbox/requirements.in

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .sandbox
