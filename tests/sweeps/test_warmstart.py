"""Export and warm start: `best --format yaml` round-trips into `train`, `run --base-config`, `run --enqueue` and
`run --from-study` queue known configurations first; `--timeout` ends a run cleanly."""

from __future__ import annotations

import contextlib
import io
import re

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.study.existing import load_existing_study
from sweeps.study.schema import TRIAL_BASELINE, base_config, per_seed_values, trial_config
from tests.helpers import Stores

SMALL = ("--n-trials", "3", "--max-seeds", "2", "--startup-seeds", "2", "--pruner", "none", "--no-validate")

OTHER_SPACE = """
study: {n_trials: 3, max_seeds: 2, slots: 4, pruner: none, seed: 3, validate_seeds: 0}
trainer: {max_episodes: 60}
search_space:
  gamma: {type: float, low: 0.95, high: 0.999}
  learning_rate: {type: categorical, choices: [0.001, 0.003]}
  warmup: {type: int, low: 5, high: 10}
"""


def _study(stores: Stores, name: str) -> optuna.Study:
    return load_existing_study(name, f"journal:{stores.journal}", stores.tracking_uri)


@pytest.fixture(scope="module")
def best_yaml(tiny_sweep, tmp_path_factory):
    folder = tmp_path_factory.mktemp("best")
    common = ["--study-name", "tiny", "--storage", str(tiny_sweep.journal), "--tracking-uri", tiny_sweep.tracking_uri]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["best", "--format", "yaml", *common]) == 0
    path = folder / "best.yaml"
    path.write_text(out.getvalue())
    return path


def test_best_yaml_trains_to_the_trials_own_result(tiny_sweep, best_yaml, capsys):
    study = _study(tiny_sweep, "tiny")
    best = min((t for t in study.trials if t.value is not None), key=lambda t: (t.value, t.number))
    text = best_yaml.read_text()
    assert text.startswith(f"# best trial {best.number} of study 'tiny'")
    assert yaml.safe_load(text)["trainer"] == trial_config(study, best).to_dict()

    seed, expected = min(per_seed_values(best).items(), key=lambda item: item[1])  # a solved seed
    assert main(["train", "--config", str(best_yaml), "--seed", str(seed), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert f"solved in {expected} episodes" in summary  # the same agent, bit for bit, outside the sweep


def test_enqueue_then_from_study_queue_known_configs_first(best_yaml, tmp_path, capsys):
    stores = Stores(tmp_path)
    hand = tmp_path / "hand.yaml"
    hand.write_text("gamma: 0.95\nbatch_size: 16\nwarmup: 3\nlearning_rate: 0.003\nepsilon_decay_rate: 0.005\n")
    partial = tmp_path / "partial.yaml"
    partial.write_text("trainer: {gamma: 0.93, warmup: 7}\n")  # the rest of the space at the base's values
    # The tiny study's best is the book itself: queued again, it is skipped (the book is trial 0 already).
    assert stores.run(*SMALL, "--enqueue", str(best_yaml), str(hand), "--enqueue", str(partial), study="first") == 0
    out = capsys.readouterr().out
    assert f"queued {best_yaml}: skipped, the study already has a trial with these parameters" in out
    assert f"queued {hand} as trial 1" in out and f"queued {partial} as trial 2" in out
    first = _study(stores, "first")
    trials = sorted(first.trials, key=lambda t: t.number)
    assert trials[0].user_attrs.get(TRIAL_BASELINE) == "book"
    assert trials[1].params == {
        "gamma": 0.95,
        "batch_size": 16,
        "warmup": 3,
        "learning_rate": 0.003,
        "epsilon_decay_rate": 0.005,
    }
    assert trials[2].params == {
        "gamma": 0.93,
        "warmup": 7,
        "batch_size": 32,
        "learning_rate": 0.001,
        "epsilon_decay_rate": 0.001,
    }
    assert trials[1].user_attrs["warm_start"] == str(hand)

    # Resumed with the same queue: nothing is queued twice.
    assert stores.run(*SMALL, "--enqueue", str(hand), study="first") == 0
    assert "skipped, the study already has a trial with these parameters" in capsys.readouterr().out
    assert len(_study(stores, "first").trials) == 3

    # Another space, with the tiny study's best as base and the first study's top 3 queued first; the first
    # study's book lies in this space too, so it is this study's trial 0 already and skipped.
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_SPACE)
    argv = stores.argv("--from-study", "first", "--from-top", "3", "--base-config", str(best_yaml), study="second")
    argv[argv.index("--config") + 1] = str(other)
    assert main(argv) == 0
    out = capsys.readouterr().out
    second = _study(stores, "second")
    assert "queued first:0: skipped" in out
    ranked = sorted((t for t in first.trials if t.value is not None), key=lambda t: (t.value, t.number))
    ranked = [t for t in ranked if t.number != 0]
    queued = sorted((t for t in second.trials if "warm_start" in t.user_attrs), key=lambda t: t.number)
    assert [t.user_attrs["warm_start"] for t in queued] == [f"first:{t.number}" for t in ranked]
    assert [t.number for t in queued] == [1, 2]  # right after the book
    for source, target in zip(ranked, queued, strict=True):
        config = trial_config(first, source)
        for name in ("gamma", "learning_rate", "warmup"):
            value = getattr(config, name)
            inside = {"gamma": 0.95 <= value <= 0.999, "learning_rate": value in (0.001, 0.003), "warmup": value >= 5}
            if inside[name]:
                assert target.params[name] == value
            else:
                assert f"{name}=" in out  # left to the sampler, and said so
    assert base_config(second).to_dict() == yaml.safe_load(best_yaml.read_text())["trainer"]


def test_timeout_stops_asking_and_leaves_consistent_stores(tmp_path, capsys):
    stores = Stores(tmp_path)
    code = stores.run("--n-trials", "60", "--timeout", "0.02", "--no-validate", study="timed")
    assert code == 0
    out = capsys.readouterr().out
    study = _study(stores, "timed")
    states = {t.state for t in study.trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    finished = len(study.trials)
    assert 1 <= finished < 60
    assert re.search(rf"--timeout: stopped asking new trials after 0.02 min; the study holds {finished} of 60", out)
    client = MlflowClient(tracking_uri=stores.tracking_uri)
    experiment = client.get_experiment_by_name("timed")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and all(r.info.status == "FINISHED" for r in runs)  # trials and the study's parent run closed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--timeout", "0"], "--timeout: must be a positive number of minutes"),
        (["--timeout", "nan"], "--timeout: must be a positive number of minutes"),
        (["--timeout", "inf"], "--timeout: must be a positive number of minutes, got inf"),
        (["--from-study", "nope"], "no Optuna journal at"),
        (["--from-study", "tiny"], "--from-study: names the study being run"),
        (["--from-study", "x", "--from-top", "0"], "--from-top"),
        (["--enqueue", "{tmp}/outside.yaml"], "gamma=0.5 is outside the search space (gamma: float in [0.9, 0.999])"),
        (["--enqueue", "{tmp}/typo.yaml"], "gama"),
        (["--enqueue", "{tmp}/missing.yaml"], "config file not found"),
        (["--base-config", "{tmp}/invalid.yaml"], "invalid.yaml: gamma: must be"),
        (["--enqueue", "{tmp}/invalid.yaml"], "invalid.yaml: gamma: must be"),
    ],
)
def test_bad_warm_start_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    stores = Stores(tmp_path)
    (tmp_path / "outside.yaml").write_text("trainer: {gamma: 0.5, learning_rate: 0.001}\n")
    (tmp_path / "typo.yaml").write_text("gama: 0.95\n")
    (tmp_path / "invalid.yaml").write_text("trainer: {gamma: 2}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert stores.run(*argv, study="tiny") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, no mlflow.db
