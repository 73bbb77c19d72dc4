# Two commands on a fresh machine: `make sweep` and `make test`. Both create .venv and install what they need:
# `make sweep` the core alone, `make test` the core plus every extra and the dev tools (one venv, one stamp each,
# so `make test` after `make sweep` adds the extras).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
CORE := $(VENV)/.installed-core
ALL := $(VENV)/.installed-all

.PHONY: install test lint format train sweep benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $(CORE)

$(ALL): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,all]'
	touch $(ALL) $(CORE)

install: $(CORE)

test: $(ALL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(ALL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(ALL)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train: $(CORE)
	$(BIN)/dqn-sweep train

sweep: $(CORE)
	$(BIN)/dqn-sweep run --config sweeps/configs/default.yaml

benchmarks: $(ALL)  # scaling.py starts a throwaway PostgreSQL: the [postgres] extra
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/tick_profile.py
	$(BIN)/python benchmarks/sample_efficiency.py
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
