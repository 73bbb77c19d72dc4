"""Optuna internals are used in one module only, on the Optuna range pyproject.toml pins (and the tests run on)."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

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


def _storages(tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    yield "in-memory", optuna.storages.InMemoryStorage()
    yield "sqlite", optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    yield "journal", JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))


def test_tell_pruned_stores_the_given_value_where_optuna_stores_the_last_intermediate_one(tmp_path):
    for name, storage in _storages(tmp_path):
        study = optuna.create_study(storage=storage, study_name=name)
        ours, theirs = study.ask(), study.ask()
        for trial in (ours, theirs):
            for seed, value in enumerate([67.0, 94.0, 118.0, 96.0]):
                trial.report(value, step=seed)
        # Optuna's own tell: the last step's value (why the adapter exists), which a storage will not change later.
        assert study.tell(theirs, state=TrialState.PRUNED).value == 96.0
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_state_values(optuna_adapter.trial_id(theirs), TrialState.PRUNED, [95.0])

        told = optuna_adapter.tell_pruned(study, ours, 95.0)
        assert (told.state, told.value) == (TrialState.PRUNED, 95.0), name
        stored = optuna.load_study(study_name=name, storage=storage).trials[ours.number]
        assert (stored.state, stored.value) == (TrialState.PRUNED, 95.0), name
        assert stored.intermediate_values == {0: 67.0, 1: 94.0, 2: 118.0, 3: 96.0}  # what the pruner and TPE read
        again = optuna_adapter.tell_pruned(study, ours, 1.0)  # finished already: left as it is, like skip_if_finished
        assert (again.state, again.value) == (TrialState.PRUNED, 95.0), name


def test_grid_points_go_to_enqueued_trials_that_agree_with_them_and_are_never_handed_out_twice():
    grid = optuna_adapter.GridSampler({"gamma": [0.9, 0.99], "warmup": [0, 10]}, seed=0)
    study = optuna.create_study(sampler=grid)
    study.enqueue_trial({"gamma": 0.99, "warmup": 10})  # the book, a grid point: Optuna would give it none
    study.enqueue_trial({"warmup": 0})  # fixes some parameters only: Optuna's grid crashed asking for the rest
    seen = []
    for _ in range(4):
        trial = study.ask()
        seen.append((trial.suggest_categorical("gamma", [0.9, 0.99]), trial.suggest_categorical("warmup", [0, 10])))
        study.tell(trial, 1.0)
    assert seen[0] == (0.99, 10) and seen[1][1] == 0
    assert sorted(seen) == [(0.9, 0), (0.9, 10), (0.99, 0), (0.99, 10)]  # four trials, four points
    assert optuna_adapter.grid_points_started(study) == {0, 1, 2, 3} and grid.is_exhausted(study)
