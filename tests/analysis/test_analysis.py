"""Analysis on a small real sweep: DataFrames, comparisons, report, validation, notebook, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from analysis import compare
from analysis.load import StudyData
from analysis.report import SECTIONS
from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.stats import paired_test


@pytest.fixture(scope="module")
def data(tiny_sweep) -> StudyData:
    return StudyData.open("tiny", storage=f"journal:{tiny_sweep.journal}", tracking=tiny_sweep.tracking_uri)


def test_trials_frame_has_one_row_per_trial_and_seed(data):
    trials = data.trials
    finished = data.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) == sum(len(t.user_attrs["episodes_to_solve_per_seed"]) for t in finished)
    assert {"trial", "seed", "state", "value", "episodes_to_solve", "lower_bound", "params.gamma"} <= set(trials)
    assert set(trials["seed"]) == {0, 1, 2, 3, 4}  # the tiny sweep's max_seeds
    complete = trials[trials["state"] == "COMPLETE"]
    for number, rows in complete.groupby("trial"):
        assert rows["value"].iloc[0] == data.study.trials[number].value == rows["episodes_to_solve"].median()
    assert (trials["mlflow_status"] == "FINISHED").all()


def test_episodes_frame_matches_mlflow_histories(data):
    episodes = data.episodes
    assert list(episodes.columns) == ["trial", "seed", "episode", "steps", "epsilon", "loss"]
    client = MlflowClient(data.tracking_uri)
    for number, rows in episodes.groupby("trial"):
        run_id = data.study.trials[number].user_attrs["mlflow_run_id"]
        trial = data.study.trials[number]
        assert set(rows["seed"]) >= {0, 1, 2, 3}  # every trial, pruned ones too, trained the startup seeds
        for _, mine in rows.groupby("seed"):
            assert mine["episode"].tolist() == list(range(1, len(mine) + 1))
        if trial.state == TrialState.COMPLETE:  # the CSV artifact and MLflow's chart agree
            history = client.get_metric_history(run_id, "steps_median")
            assert [m.value for m in history] == rows.groupby("episode")["steps"].median().tolist()
    assert episodes["steps"].between(1, 200).all()
    assert (episodes.groupby(["trial", "seed"])["epsilon"].diff().dropna() <= 0).all()  # decays to its floor


def test_top_configurations_best_equals_study_best(data):
    table = compare.top_configurations(data.trials, k=3)
    assert table.iloc[0]["value"] == data.study.best_value
    assert table.iloc[0]["vs_best"] == "best"
    assert table["baseline"].any()  # the book is always shown
    best = table.iloc[0]
    for _, row in table.iloc[1:].iterrows():
        paired = paired_test(row["per_seed"], best["per_seed"])
        assert row["common_seeds"] == paired.n >= 4 and row["paired_p"] == paired.p_value
        assert row["vs_best"] == compare.vs_best_text(paired)
    assert table["ci_95"].str.startswith("too few seeds").all() and table["ci_low"].isna().all()  # <= 5 seeds each


def test_bootstrap_ci_brackets_the_median_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(80, 20, 3), rng.normal(80, 20, 300)
    low_few, high_few = compare.bootstrap_ci(few)
    low_many, high_many = compare.bootstrap_ci(many)
    assert low_few <= np.median(few) <= high_few and low_many <= np.median(many) <= high_many
    assert high_many - low_many < high_few - low_few


def test_param_effects_and_importances(data):
    effects = compare.all_param_effects(data.trials)
    assert {"param", "bin", "trials", "median", "q25", "q75"} <= set(effects)
    assert (effects["q25"] <= effects["median"]).all() and (effects["median"] <= effects["q75"]).all()
    complete = data.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert effects.groupby("param")["trials"].sum().max() == len(complete)
    importances = compare.importances(data.study)
    assert importances is not None and abs(importances.sum() - 1) < 1e-6


def test_validate_then_report(tiny_sweep, data, capsys, tmp_path):
    common = ["--storage", f"journal:{tiny_sweep.journal}", "--tracking-uri", tiny_sweep.tracking_uri]
    assert main(["validate", "--study", "tiny", "--top", "1", "--seeds", "2", *common]) == 0
    printed = capsys.readouterr().out
    assert "held_out_median" in printed and "book" in printed
    client = MlflowClient(tiny_sweep.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'validation'")
    assert runs and all(r.data.params["seeds"] == "10000,10001" for r in runs)

    out = tmp_path / "tiny.html"
    assert main(["report", "--study", "tiny", "--out", str(out), *common]) == 0
    text = out.read_text()
    for section_id, title in SECTIONS:
        assert f'id="{section_id}"' in text and title in text
    assert not re.search(r"https?://", text), "the report must not reference anything outside itself"
    assert "<script" not in text and text.count("data:image/png;base64,") >= 3
    assert "data:image/gif;base64," in text  # the best agent's episode
    assert "held_out_median" in text
    study = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{tiny_sweep.journal}"))
    assert f"{study.best_value:.4g}" in text
    # build_report only writes the file; the command logs it (sweeps.tracking.report_log.log_report, called by the CLI)
    parent = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'study'")[0]
    assert "tiny.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_notebook_compares_two_studies_headless(tiny_sweep, tmp_path):
    import shutil

    import papermill

    from tests.helpers import Stores

    stores = Stores(tmp_path)  # a copy of the shared sweep plus a second, random-sampler study beside it
    shutil.copy(tiny_sweep.journal, stores.journal)
    shutil.copy(tiny_sweep.root / "mlflow.db", tmp_path / "mlflow.db")
    assert stores.run("--sampler", "random", "--n-trials", "3", "--seed", "3", study="tiny-random") == 0

    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        "analysis/notebooks/compare_sweeps.ipynb",
        str(out),
        parameters={
            "studies": ["tiny", "tiny-random"],
            "storage": f"journal:{stores.journal}",
            "tracking_uri": stores.tracking_uri,
            "top": 3,
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path.parent),
    )
    notebook = json.loads(out.read_text())
    outputs = [o for cell in notebook["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4  # a budget and a learning-curve figure each
    tables = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "tiny-random" in tables and "tiny" in tables
    printed = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    assert "tiny: " in printed and "tiny-random: " in printed  # each study's verdict line, or why it has none


def _failed_only_study(path):
    storage = open_optuna_storage(f"journal:{path}")
    empty = optuna.create_study(study_name="empty", storage=storage)
    failed = optuna.create_study(study_name="failed", storage=storage)
    trial = failed.ask()
    failed.tell(trial, state=TrialState.FAIL)
    return empty, failed


@pytest.mark.parametrize(
    ("command", "study", "message"),
    [
        ("report", "nope", "unknown study 'nope'"),
        ("report", "empty", "study 'empty' has no trials yet"),
        ("validate", "failed", "has no complete trial to validate"),
        ("report", "failed", "no complete or pruned trial"),
    ],
)
def test_bad_studies(tmp_path, capsys, tiny_sweep, command, study, message):
    journal = tmp_path / "j.log"
    _failed_only_study(journal)
    code = main(
        [command, "--study", study, "--storage", f"journal:{journal}", "--tracking-uri", tiny_sweep.tracking_uri]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_store_that_does_not_exist(tmp_path, capsys):
    code = main(["report", "--storage", f"journal:{tmp_path / 'j.log'}", "--tracking-uri", "sqlite:////no/where.db"])
    assert code == 2 and "no MLflow store at /no/where.db" in capsys.readouterr().err
    code = main(["report", "--storage", f"journal:{tmp_path / 'missing.log'}"])
    assert code == 2
