# The two commands a newcomer needs: `make demo` and `make test`.
#
# Every Python package comes from uv.lock (exact versions with hashes): `uv sync --locked` installs
# exactly what it lists and fails if pyproject.toml and the lock disagree. `make lock` upgrades it.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
UV_VERSION := 0.13.10
UV         := $(BIN)/uv
# uv installs into our venv with our interpreter, never a Python of its own.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS    := never
export UV_PYTHON              := $(BIN)/python

.PHONY: demo test lint sync sync-app lock bench clean

# The venv and, inside it, the pinned uv that installs everything else from the lock.
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The app with its test extra, exactly as locked (a no-op when nothing changed).
sync: $(UV)
	$(UV) sync --locked --extra test --quiet

# The app as locked (the demo needs no test tools; --inexact leaves those `make test` installed).
sync-app: $(UV)
	$(UV) sync --locked --inexact --quiet

demo: sync-app
	$(BIN)/bidroom demo

lint: sync
	$(BIN)/ruff check bidroom signaling ca tests bench
	$(BIN)/ruff format --check bidroom signaling ca tests bench
	$(BIN)/mypy bidroom ca signaling

test: lint
	$(BIN)/pytest -q -n 2 --dist loadfile

# Re-resolve every package to its newest allowed version (then run `make test` and commit uv.lock).
lock: $(UV)
	$(UV) lock --upgrade

bench: sync
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
