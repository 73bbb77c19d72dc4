"""What a new user still trips over (issue 25): pruned trials shown with one seed's value, the grid training the
book's point twice, `| head` tracebacks, --enqueue dropping keys, `best` taking a journal as its MLflow store, an
unreadable learning curve, and `best` without JSON. Real Optuna, MLflow and TensorFlow throughout."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.schema import TRIAL_BASELINE, TRIAL_PER_SEED, per_seed_values, recorded
from tests.helpers import Stores

BIN = Path(sys.executable).parent

# The book against a slower epsilon decay: 0.0004 solves too, later, on seeds that differ from each other (so a
# pruned trial's last seed is not its median), and the Wilcoxon pruner stops it after its four startup seeds.
RACE = """
study: {n_trials: 2, max_seeds: 6, slots: 12, seeds_in_flight: 4, sampler: random, pruner: wilcoxon,
        startup_seeds: 4, p_threshold: 0.1, seed: 1, validate_seeds: 0}
trainer: {max_episodes: 200}
search_space:
  epsilon_decay_rate: {type: categorical, choices: [0.001, 0.0004]}
"""


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> Stores:
    stores = Stores(tmp_path_factory.mktemp("race"))
    stores.config.write_text(RACE)
    assert stores.run(study="race") == 0
    return stores


def _load(stores: Stores, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_optuna_storage(f"journal:{stores.journal}"))


# 1. A pruned trial's value ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pruned_trial_shows_the_median_of_its_seeds_in_optunas_tools(race):
    study = _load(race, "race")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the race must prune a trial for this test to mean anything"
    medians = {t.number: statistics.median(per_seed_values(t).values()) for t in pruned}
    assert any(medians[t.number] != t.intermediate_values[t.last_step] for t in pruned), "last seed = median"
    for trial in pruned:
        assert trial.value == medians[trial.number]
        # The pruner raced on per-seed values: they stay the intermediate values, at step = seed.
        assert trial.intermediate_values == {s: float(v) for s, v in per_seed_values(trial).items()}
        assert 4 <= len(trial.intermediate_values) < 6

    frame = study.trials_dataframe()  # what notebooks read; the value column is named by the study's metric name
    shown = dict(zip(frame["number"], frame["value_episodes_to_solve"], strict=True))
    assert {n: shown[n] for n in medians} == medians

    listed = subprocess.run(
        [str(BIN / "optuna"), "trials", "--study-name", "race", "--storage", str(race.journal), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {t["number"]: t["value"]["episodes_to_solve"] for t in rows if t["state"] == "PRUNED"} == medians

    dashboard = pytest.importorskip("optuna_dashboard")
    app = dashboard.wsgi(open_optuna_storage(f"journal:{race.journal}"))
    (summary,) = _wsgi_get(app, "/api/studies")["study_summaries"]
    detail = _wsgi_get(app, f"/api/studies/{summary['study_id']}")
    assert {t["number"]: t["values"][0] for t in detail["trials"] if t["state"] == "Pruned"} == medians


@pytest.mark.slow
def test_sync_logs_a_pruned_trial_to_mlflow_as_the_sweep_does(race, tmp_path, capsys):
    """MLflow's trials view sorts by `episodes_to_solve`, a complete trial's value: a pruned trial's run has only its
    per-seed values, whether the sweep logged it or `sync` re-created it from Optuna."""
    from mlflow.tracking import MlflowClient

    journal = tmp_path / "optuna-journal.log"
    journal.write_bytes(race.journal.read_bytes())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # an MLflow store that lost every run
    assert main(["sync", "--study", "race", "--storage", str(journal), "--tracking-uri", uri]) == 0
    capsys.readouterr()
    for tracked in (race.tracking_uri, uri):  # the runs the sweep logged, and those `sync` re-created
        client = MlflowClient(tracked)
        experiment = client.get_experiment_by_name("race")
        runs = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'trial'")
        assert (tracked == uri) == all(run.data.tags.get("dqn_sweep.synced") == "true" for run in runs)
        by_state = {run.data.tags["dqn_sweep.state"]: run.data.metrics for run in runs}
        assert "episodes_to_solve" not in by_state["PRUNED"]
        assert "per_seed/seed_0_episodes_to_solve" in by_state["PRUNED"]
        assert by_state["COMPLETE"]["episodes_to_solve"] == _load(race, "race").best_value


def _wsgi_get(app, path: str) -> dict:
    from wsgiref.util import setup_testing_defaults

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


def _race_history(tell) -> optuna.Study:
    """A study as a sweep leaves it: a complete trial over 8 seeds, then trials pruned after 4 seeds, the pruned
    ones told by `tell(study, trial, per_seed)`. Fixed values: the same history whatever `tell` does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=4, multivariate=True, constant_liar=True)
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    book = study.ask()
    book.suggest_float("x", 0.0, 1.0)
    values = [50, 60, 200, 70, 80, 210, 90, 220]  # median 85
    for seed, value in enumerate(values):
        book.report(value, step=seed)
    study.tell(book, statistics.median(values))
    rng = np.random.default_rng(3)
    for _ in range(8):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        per_seed = [round(40 + 100 * x + rng.integers(0, 40)) for _ in range(4)]
        for seed, value in enumerate(per_seed):
            trial.report(value, step=seed)
        tell(study, trial, per_seed)
    return study


def test_tpe_and_the_wilcoxon_pruner_see_pruned_trials_as_before():
    from sweeps.stores.optuna_adapter import tell_pruned

    optunas = _race_history(lambda study, trial, _: study.tell(trial, state=TrialState.PRUNED))
    ours = _race_history(lambda study, trial, per_seed: tell_pruned(study, trial, statistics.median(per_seed)))
    failed = _race_history(lambda study, trial, _: study.tell(trial, state=TrialState.FAIL))
    pruned = ours.get_trials(states=(TrialState.PRUNED,))
    assert [t.value for t in pruned] == [statistics.median(t.intermediate_values.values()) for t in pruned]
    assert any(t.value < ours.best_value for t in pruned)  # below the best, yet the best stays the complete one
    assert ours.best_trial.number == optunas.best_trial.number == 0

    def next_trials(study: optuna.Study) -> tuple[list[float], list[bool]]:
        """TPE's next three points, and the pruner's word on each once it did far worse, better, far worse."""
        trials = []
        for _ in range(3):
            trials.append(study.ask())
            trials[-1].suggest_float("x", 0.0, 1.0)
        for trial, value in zip(trials, (300, 30, 300), strict=True):
            for seed in range(4):
                trial.report(value, step=seed)
        return [t.params["x"] for t in trials], [t.should_prune() for t in trials]

    # TPE ranks pruned trials by their last step and intermediate value: the same proposals as with Optuna's own
    # PRUNED, and not those of a study that had no pruned trials to learn from. The pruner compares with the best
    # complete trial: the same decisions.
    points, decisions = next_trials(ours)
    assert (points, decisions) == next_trials(optunas)
    assert points != next_trials(failed)[0]
    assert decisions == [True, False, True]


# 6. The grid and the book -------------------------------------------------------------------------------------

GRID = """
study: {n_trials: 4, max_seeds: 2, slots: 4, sampler: grid, pruner: none, seed: 2, validate_seeds: 0}
trainer: {max_episodes: 20}
search_space:
  gamma: {type: categorical, choices: CHOICES}
"""


@pytest.mark.slow
@pytest.mark.parametrize("choices", [[0.9, 0.99], [0.9, 0.95]])
def test_the_grid_trains_each_point_once_the_books_included(tmp_path, capsys, choices):
    """The book's gamma (0.99) a grid point: trial 0 trains it, and the grid does not again. Off the grid: trial 0
    (the book's trial, every book value outside the space) takes a grid point instead of crashing."""
    stores = Stores(tmp_path)
    stores.config.write_text(GRID.replace("CHOICES", str(choices)))
    assert stores.run(study="grid") == 0
    assert "the grid of 2 points is used up: the study holds 2 finished trials" in capsys.readouterr().out
    trials = _load(stores, "grid").trials
    assert sorted(t.params["gamma"] for t in trials) == sorted(choices)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert trials[0].user_attrs[TRIAL_BASELINE] == "book"
    if 0.99 in choices:
        assert trials[0].params["gamma"] == 0.99
    assert {t.system_attrs["grid_id"] for t in trials} == {0, 1}


# 8. `| head` -------------------------------------------------------------------------------------------------


def _made_study(journal: Path, *, params: int = 1) -> optuna.Study:
    """A study as `run` leaves it, made without training: one complete trial with its per-seed values."""
    study = optuna.create_study(study_name="made", storage=open_optuna_storage(f"journal:{journal}"))
    names = [f"p{i:05d}" for i in range(params)]
    study.add_trial(
        optuna.trial.create_trial(
            params={name: 0.5 for name in names},
            distributions={name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in names},
            value=6.0,
            user_attrs={TRIAL_PER_SEED: {"0": 5, "1": 7}},
        )
    )
    return study


def _into_head(argv: list[str], cwd: Path) -> tuple[str, str, int]:
    """`dqn-sweep ARGV | head -1`: head's output, the command's stderr and its exit code."""
    command = subprocess.Popen([str(BIN / "dqn-sweep"), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    head = subprocess.Popen(["head", "-1"], stdin=command.stdout, stdout=subprocess.PIPE, text=True)
    command.stdout.close()  # head alone reads it: when head exits, the command's next write breaks the pipe
    out, _ = head.communicate(timeout=300)
    err = command.stderr.read().decode()
    return out, err, command.wait(timeout=300)


def test_best_into_head_ends_quietly(tmp_path):
    _made_study(tmp_path / "j.log", params=10_000)  # a table far longer than a pipe holds
    out, err, code = _into_head(["best", "--storage", str(tmp_path / "j.log")], tmp_path)
    assert out.split() == ["study", "made"]
    assert err == "" and code == 141  # 128 + SIGPIPE, as the shell reports any tool that SIGPIPE ended


@pytest.mark.slow
def test_train_into_head_ends_quietly(tmp_path):
    out, err, code = _into_head(["train", "--seed", "0", "--set", "max_episodes=30"], tmp_path)
    assert out.startswith("Episode: 1, Steps: ")
    assert "Traceback" not in err and "BrokenPipeError" not in err and code == 141


# 9. --enqueue keys the sweep does not search ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hidden_sizes: [64, 64]\n",
            "hidden_sizes=[64, 64] (base [16, 16, 16]) not searched by this sweep, so a queued trial cannot carry it",
        ),
        (
            "trainer: {gamma: 0.95, hidden_sizes: [32, 32], updates_per_step: 2}\n",
            "hidden_sizes=[32, 32] (base [16, 16, 16]), updates_per_step=2 (base 1) not searched by this sweep",
        ),
        (
            "trainer: {env_id: Acrobot-v1, gamma: 0.95}\n",
            "written for env Acrobot-v1, but this sweep trains CartPole-v0",
        ),
    ],
)
def test_enqueue_refuses_values_the_sweep_does_not_search(tmp_path, capsys, text, message):
    stores = Stores(tmp_path)
    queued = tmp_path / "queued.yaml"
    queued.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    small = ("--n-trials", "1", "--max-seeds", "2", "--startup-seeds", "2", "--pruner", "none", "--no-validate")
    assert stores.run(*small, "--enqueue", str(queued), study="enq") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --enqueue {queued}: {message}") and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, no mlflow.db


def test_enqueue_takes_a_full_config_whose_unsearched_values_are_the_sweeps(tmp_path):
    """`best --format yaml` of the same sweep carries every key: those it does not search equal the base."""
    from sweeps.study.space import load_sweep
    from sweeps.study.warmstart import from_files

    stores = Stores(tmp_path)
    sweep = load_sweep(stores.config)
    full = tmp_path / "full.yaml"
    full.write_text(json.dumps({"trainer": {**sweep.base.to_dict(), "gamma": 0.95}}))
    (queued,) = from_files([str(full)], sweep)
    assert queued.params["gamma"] == 0.95


# 10. `best --tracking-uri` -----------------------------------------------------------------------------------


def test_best_refuses_a_journal_given_as_the_tracking_store_as_report_does(tmp_path, capsys):
    journal = tmp_path / "optuna-journal.log"
    _made_study(journal)
    uri = f"sqlite:///{journal}"
    assert main(["report", "--tracking-uri", uri, "--out", str(tmp_path / "r.html")]) == 2
    refused = capsys.readouterr().err.strip()
    assert refused == f"error: tracking store {journal} exists but is not an SQLite database"
    assert main(["best", "--tracking-uri", uri]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == refused and captured.out == ""
    assert main(["best", "--storage", str(journal)]) == 0  # the study itself is readable


# 11. The best trial's learning curve ---------------------------------------------------------------------------


def test_the_learning_curve_of_17_seeds_has_a_short_legend_inside_the_figure(tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    from sweeps.tracking.artifacts import learning_curve_figure, write_learning_curve

    rng = np.random.default_rng(0)
    steps = {seed: list(rng.integers(10, 200, size=int(rng.integers(40, 160)))) for seed in range(17)}
    fig = learning_curve_figure(steps, threshold=190, title="default best trial 44")
    try:
        (ax,) = fig.axes
        legend = ax.get_legend()
        assert 1 <= len(legend.get_texts()) <= 3
        assert "17 seeds" in " ".join(t.get_text() for t in legend.get_texts())
        fig.canvas.draw()
        box, frame = legend.get_window_extent(), fig.bbox
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        seed_lines = [line for line in ax.get_lines() if line.get_label().startswith("_")][:17]
        assert len({line.get_color() for line in seed_lines}) == 1  # one colour: none repeats after ten seeds
    finally:
        plt.close(fig)
    path = write_learning_curve(tmp_path / "learning_curve.png", steps, threshold=190, title="t")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (512, 288)


# Friction: `best --format json` ------------------------------------------------------------------------------


def test_best_json_round_trips(tmp_path, capsys):
    study = _made_study(tmp_path / "j.log", params=3)
    assert main(["best", "--storage", str(tmp_path / "j.log"), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    best = study.best_trial
    assert shown == {
        "study": "made",
        "trial": best.number,
        "value": best.value,
        "per_seed": {"0": 5, "1": 7},
        "censored": False,
        "mlflow_run_id": None,
        "verdict": None,
        "params": best.params,
    }


def test_the_dashboard_line_installs_the_extra_first_when_it_is_missing(monkeypatch):
    """After `make sweep` (the core only) the printed optuna-dashboard command could not work."""
    import importlib.util

    from sweeps.tracking.browse import browse_lines

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna_dashboard" else real(name, *a)
    )
    line = browse_lines("sqlite:///mlflow.db", "journal:optuna-journal.log", "1")[1]
    checkout = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent
    assert line.startswith(f"browse: {bin_dir / 'pip'} install -e '{checkout}[dashboard]' && ")
    assert f"&& {bin_dir / 'optuna-dashboard'} {Path('optuna-journal.log').resolve()}  # the dashboard extra" in line
    monkeypatch.undo()
    installed = browse_lines("sqlite:///mlflow.db", "journal:optuna-journal.log", "1")[1]
    assert "install" not in installed and installed.endswith("# then open http://127.0.0.1:8080")


def test_train_config_refuses_a_key_beside_its_trainer_section(tmp_path, capsys):
    """`trainer: {max_episodes: 3}` plus a top-level `gamma: 2.0` trained with exit 0 and gamma silently dropped."""
    config = tmp_path / "c.yaml"
    config.write_text("trainer: {max_episodes: 3}\ngamma: 2.0\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {config}: 'gamma' sits beside the trainer: section and would be ignored; put it under trainer: "
        "(a file with a trainer: section takes its keys from there)"
    )
    sweep = tmp_path / "sweep.yaml"  # a sweep file trains its trainer: section; its other sections are the sweep's
    sweep.write_text("study: {n_trials: 2}\ntrainer: {max_episodes: 2}\nsearch_space: {}\n")
    from dqn_core.config import load_config

    assert load_config(sweep).max_episodes == 2


# Friction: every step after the trials says what it does ------------------------------------------------------

SAY = """
study: {n_trials: 2, max_seeds: 2, slots: 4, sampler: random, pruner: none, seed: 3, validate_seeds: 1}
trainer: {max_episodes: 12}
search_space:
  gamma: {type: categorical, choices: [0.9, 0.99]}
"""


@pytest.fixture(scope="module")
def said(tmp_path_factory) -> tuple[Stores, str]:
    """A two-trial sweep with a one-seed verdict, run with its progress lines on: the stores and its stderr."""
    stores = Stores(tmp_path_factory.mktemp("say"))
    stores.config.write_text(SAY)
    argv = [arg for arg in stores.argv(study="say") if arg != "--no-progress"]
    done = subprocess.run([sys.executable, "-m", "sweeps.cli", *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best agent:" not in done.stdout and "verdict: training" not in done.stdout
    return stores, done.stderr


def test_run_says_on_stderr_that_it_trains_the_best_agent_then_the_verdict(said, capsys):
    """The bar stood at 100% with nothing said while the best agent re-trained for its GIF: a line on stderr
    says so, before the verdict's own line; stdout keeps only the summary."""
    stores, stderr = said
    best = stderr.find("best agent: re-training trial ")
    verdict = stderr.find("verdict: training the winner and the book on 1 unseen seeds")
    assert 0 <= best < verdict, stderr
    argv = [arg for arg in stores.argv(study="say") if arg != "--no-progress"]
    assert main(argv) == 0  # resumed with the agent logged: nothing to re-train, nothing said
    assert "best agent:" not in capsys.readouterr().err


def test_optuna_studies_prints_a_readable_row(said):
    """`optuna studies` printed one ~5 kB row: the study kept its sweep definition, options, command line and the
    verdict's per-seed values as user attributes. They are the study's record now (system attributes, which
    Optuna's tools do not print); the user attributes keep the sweep file, its hash and the verdict's line."""
    stores, _ = said
    listed = subprocess.run(
        [str(BIN / "optuna"), "studies", "--storage", str(stores.journal)], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert "say" in listed.stdout and max(map(len, listed.stdout.splitlines())) < 700, listed.stdout
    study = _load(stores, "say")
    assert set(study.user_attrs) == {"sweep_file", "sweep_hash", "verdict"}
    assert study.user_attrs["verdict"].startswith("winner trial ")
    assert recorded(study, "sweep_definition")["search_space"] == {
        "gamma": {"type": "categorical", "choices": [0.9, 0.99]}
    }
    assert recorded(study, "verdict")["line"] == study.user_attrs["verdict"]
    assert recorded(study, "seeds") == [0, 1] and recorded(study, "sweep_options")["validate_seeds"] == 1
