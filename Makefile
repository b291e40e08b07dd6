# tbn: thin wrappers over the CLI and pytest. `make demo` and `make test` work on a fresh
# machine: they create .venv and install tbn with its Python dependencies first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies here on our machines; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
RUNS   := runs

.PHONY: setup test lint demo bench header vectors clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e '.[dev]'
	touch $@

lint: setup
	$(BIN)/ruff check host tests benchmarks examples

test: lint
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/tbn train --recipe mlp --p 4 --epochs 3 --out $(RUNS)/demo --overwrite
	$(BIN)/tbn compile $(RUNS)/demo/model.pt -o $(RUNS)/demo/model.tbn
	$(BIN)/tbn compile $(RUNS)/demo/model.pt -o $(RUNS)/demo/model-int8.tbn --activations int8 > /dev/null
	$(BIN)/tbn inspect $(RUNS)/demo/model-int8.tbn
	$(BIN)/tbn run $(RUNS)/demo/model.tbn --data mnist
	$(BIN)/tbn run $(RUNS)/demo/model-int8.tbn --data mnist

# Regenerate what is generated from tbn.format.spec and the vector builders (tests check both).
header: setup
	$(BIN)/python -m tbn.format.cheader

vectors: setup
	$(BIN)/python -m tbn.vectors

bench: setup
	$(BIN)/python benchmarks/step_time.py --json $(RUNS)/bench/step_time.json
	$(BIN)/python benchmarks/mnist_accuracy.py --json $(RUNS)/bench/mnist_accuracy.json

clean:
	rm -rf $(VENV) $(RUNS) build .pytest_cache .ruff_cache .hypothesis
