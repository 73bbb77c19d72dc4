"""What a new user still trips over after `make sweep` (issue 25), the sweep's side: the report's budget against the
sweep's own count of (trial, seed) runs, `repair` and `sync` saying the same thing, "finished 1 trials", and
knobs.yaml disagreeing with the docs. Real Optuna, MLflow and TensorFlow."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import yaml

from analysis import compare
from analysis.load import StudyData
from analysis.report import build_report
from sweeps.cli import main
from sweeps.run.summary import SweepSummary, describe_run, plural
from tests.helpers import Stores

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Stores, str]:
    """The tiny racing sweep (two seeds in flight per trial, so pruning cuts seeds short) and what it printed."""
    stores = Stores(tmp_path_factory.mktemp("swept"))
    out = io.StringIO()  # capsys is per test; the sweep runs once for the module
    with contextlib.redirect_stdout(out):
        assert stores.run(study="swept") == 0
    return stores, out.getvalue()


def _common(stores: Stores) -> list[str]:
    return ["--study-name", "swept", "--storage", f"journal:{stores.journal}", "--tracking-uri", stores.tracking_uri]


@pytest.mark.slow
def test_the_reports_budget_counts_every_seed_the_sweep_ran(swept, tmp_path):
    stores, printed = swept
    runs = int(re.search(r"^seeds: (\d+) \(trial, seed\) runs", printed, re.M)[1])
    data = StudyData.open("swept", storage=f"journal:{stores.journal}", tracking=stores.tracking_uri)
    budget = compare.budget_table(data.trials, data.episodes)
    assert budget["seeds_stopped"].sum() > 0, "the sweep must cut a seed short for this test to mean anything"
    assert budget["seeds_trained"].sum() == runs
    assert budget["seeds_finished"].sum() == sum(compare.per_trial(data.trials)["seeds"])

    text = build_report(data, tmp_path / "swept.html").read_text()
    section = text[text.index('<h2 id="budget">') : text.index('<h2 id="history">')]
    shown = [int(n) for n in re.findall(r"<td>(\d+)</td>", section)]
    rows = budget.set_index("state")
    for state in ("COMPLETE", "PRUNED"):  # each row: trials, finished, stopped, trained (then the share)
        numbers = rows.loc[state, ["trials", "seeds_finished", "seeds_stopped", "seeds_trained"]].tolist()
        assert any(shown[i : i + 4] == numbers for i in range(len(shown))), (state, numbers, shown)


@pytest.mark.slow
def test_repair_and_sync_each_say_what_they_did(swept, capsys):
    stores, _ = swept
    assert main(["repair", *_common(stores)]) == 0
    repaired = capsys.readouterr().out.strip()
    assert main(["sync", *_common(stores)]) == 0
    synced = capsys.readouterr().out.strip()
    assert repaired != synced and len(repaired.splitlines()) == len(synced.splitlines()) == 1
    assert repaired.startswith("study 'swept': repair: 0 stale trials failed and re-queued, 0 runs closed")
    assert "runs missing after an outage were not looked for: `dqn-sweep sync` re-creates them" in repaired
    assert "re-created" not in repaired.split(":", 2)[2].split(";")[0]  # repair re-creates nothing
    assert synced.startswith("study 'swept': sync: 0 stale trials failed and re-queued, 0 runs closed, ")
    assert " 0 runs re-created from Optuna" in synced and "every complete and pruned trial now has its run" in synced


def _summary(new_trials: int) -> SweepSummary:
    return SweepSummary(
        study_name="default",
        counts={"COMPLETE": 21, "PRUNED": 99, "FAIL": 0, "RUNNING": 0},
        new_trials=new_trials,
        seconds=60.0,
        tracking_seconds={},
        trial_seconds=0.0,
        best_number=0,
        best_value=75.0,
        best_params={},
    )


def test_the_summary_line_counts_one_trial_in_the_singular():
    assert plural(1, "trial") == "1 trial" and plural(0, "trial") == "0 trials" and plural(120, "trial") == "120 trials"
    assert describe_run(_summary(1)) == (
        "study 'default': 21 complete, 99 pruned; this run finished 1 trial in 60.0 s (1.0 trials/min)"
    )
    assert "this run finished 120 trials in 60.0 s (120.0 trials/min)" in describe_run(_summary(120))


def test_knobs_yaml_runs_the_trials_the_docs_measured():
    """knobs.yaml's trial budget, its header and docs/performance.md (the only place that runs it) agree."""
    path = ROOT / "sweeps" / "configs" / "knobs.yaml"
    text = path.read_text()
    n_trials = yaml.safe_load(text)["study"]["n_trials"]
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert f"{n_trials} trials" in header
    performance = (ROOT / "docs" / "performance.md").read_text()
    measured = set(re.findall(r"knobs\.yaml --n-trials (\d+)", performance))
    assert measured == {str(n_trials)}, measured
