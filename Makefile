# jobcached: `make run` and `make test` work on a fresh machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 7380

.PHONY: install run test fuzz lint bench bench-quick spec redis-tables clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the packaging metadata or the compiled request path changes.
$(STAMP): $(BIN)/python setup.py setup.cfg pyproject.toml jobcached/net/_speedups.pyx requirements-dev.txt clients/python/setup.cfg
	$(BIN)/pip install --quiet --disable-pip-version-check -e . -e clients/python -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/jobcached serve --port $(PORT) --dir ./var

test: install
	$(BIN)/python -m pytest

# The long randomized runs (`fuzz` marker): many more examples than `make test`, with shrinking.
fuzz: install
	$(BIN)/python -m pytest -m fuzz --timeout=3600

# Style (ruff), types (mypy --strict, configured in pyproject.toml) and the import contract
# (import-linter: layers and pure engines, [tool.importlinter] in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

spec: install
	$(BIN)/python -m jobcached.commands.spec > protocol/SPEC.md

# Redis 7.0's command and CONFIG tables, regenerated from a real redis-server 7.0.
REDIS_SERVER ?= redis-server
redis-tables: install
	$(BIN)/python -m tools.redis_tables $(REDIS_SERVER)

bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python -m bench.run --all

bench-quick: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) var build dist *.egg-info clients/python/*.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
