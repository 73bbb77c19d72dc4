"""Optuna internals are used in one module only, on the Optuna range pyproject.toml pins (and the tests run on)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest

import sweeps
from sweeps.stores import optuna_adapter

SOURCES = Path(sweeps.__file__).parent


def test_installed_optuna_is_in_the_pinned_range():
    pyproject = (SOURCES.parent / "pyproject.toml").read_text()
    low, high = re.search(r'"optuna>=([\d.]+),<([\d.]+)"', pyproject).groups()
    as_tuple = lambda text: tuple(int(part) for part in text.split(".")[:2])  # noqa: E731
    assert as_tuple(low) <= as_tuple(version("optuna")) < as_tuple(high)


def test_only_the_adapter_touches_optuna_internals():
    private = re.compile(
        r"optuna(\.\w+)*\._\w+|\._trial_id\b|\._study_id\b|(?<!self)\._storage\b|super\(\)\._(?!_)\w+|def _get_stale"
    )
    imposed = "_get_stale_trial_ids"  # BaseHeartbeat's abstract hook: implementing it is the extension point
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(SOURCES.rglob("*.py"))
        if path.name != "optuna_adapter.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if private.search(line) and not (path.name == "heartbeats.py" and imposed in line)
    ]
    assert offenders == []


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_adapter_still_fits_this_optuna(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    storage.record_heartbeat(optuna_adapter.trial_id(trial))
    assert optuna_adapter.rdb_trial_ids_with_heartbeat(storage, storage.get_study_id_from_name("s")) == [
        optuna_adapter.trial_id(trial)
    ]

    grid = optuna_adapter.GridSampler({"x": [0, 1]}, seed=0)
    study = optuna.create_study(sampler=grid)
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, trial.suggest_categorical("x", [0, 1]))  # Optuna's own sampler would raise here
    assert optuna_adapter.grid_points_started(study) == {0, 1} and grid.is_exhausted(study)
