# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bidroom demo

lint: $(STAMP)
	$(BIN)/ruff check bidroom signaling ca tests bench
	$(BIN)/ruff format --check bidroom signaling ca tests bench
	$(BIN)/mypy bidroom ca signaling

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
