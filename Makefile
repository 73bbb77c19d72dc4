# Two commands on a fresh machine: `make sweep` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format train sweep benchmarks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train: $(STAMP)
	$(BIN)/dqn-sweep train

sweep: $(STAMP)
	$(BIN)/dqn-sweep run --config sweeps/configs/default.yaml

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/tick_profile.py
	$(BIN)/python benchmarks/sample_efficiency.py
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
