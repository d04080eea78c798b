# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when needed.
# `make test` (what CI runs) checks everything, on SQLite and PostgreSQL. `make test-fast` is the
# inner loop: the tests on SQLite only, without those marked `slow`: process-level, the real app
# served over HTTP end to end (Slack, webhooks, hostile and fuzzed requests) and the stories through
# it, simulation scale, the learning thresholds, chart rendering and sweeps (the tree, a corpus, or
# hundreds of generated inputs compared with a reference).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/arbot demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/arbot playbook check
	$(BIN)/python -m pytest

# Compiled and assertion-rewritten modules are kept between runs even where the environment turns
# bytecode off (PYTHONDONTWRITEBYTECODE, as in the Docker image): each worker would otherwise
# compile every module again at every run.
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -m "not postgres and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) arbot-demo .pytest_cache .mypy_cache .ruff_cache
