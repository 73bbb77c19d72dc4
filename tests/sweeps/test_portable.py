"""A swept folder can be copied or moved as a whole: every command, and MLflow's own client, find all artifacts in
the folder the store is in now, and nothing is written to the folder it came from."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeps.cli import main


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _argv(folder: Path) -> list[str]:
    return ["--study-name", "tiny", "--storage", str(folder / "optuna-journal.log"), "--tracking-uri", _uri(folder)]


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def _trial_runs(folder: Path) -> list:
    client = MlflowClient(tracking_uri=_uri(folder))
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`dqn_sweep.role` = 'trial'")
    return experiment, runs


def test_copied_then_moved_folder_keeps_every_artifact(tiny_sweep, tmp_path, capsys):
    original = tiny_sweep.root
    before = _snapshot(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)

    # The copy: the first command re-points its artifacts to the copy's own mlruns/, and says so.
    assert main(["best", *_argv(copy)]) == 0
    captured = capsys.readouterr()
    assert "tiny" in captured.out
    assert f"now point to {copy.resolve() / 'mlruns'}" in captured.err
    experiment, runs = _trial_runs(copy)
    assert experiment.artifact_location == (copy.resolve() / "mlruns" / "tiny").as_uri()
    assert runs and all(r.info.artifact_uri.startswith(experiment.artifact_location + "/") for r in runs)
    assert main(["best", *_argv(copy)]) == 0
    assert "now point to" not in capsys.readouterr().err  # once only

    # Moved: the folder it was in is gone.
    moved = tmp_path / "elsewhere" / "moved sweep"  # a space, percent-encoded in the URI
    moved.parent.mkdir()
    shutil.move(copy, moved)
    report = moved / "report.html"
    assert main(["report", *_argv(moved), "--out", str(report)]) == 0
    assert report.stat().st_size > 10_000
    gif = moved / "replay.gif"
    assert main(["replay", "--trial", "1", "--out", str(gif), *_argv(moved)]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"
    capsys.readouterr()

    # MLflow's client alone, on the moved folder: every trial's curves download byte-identical to the file there.
    experiment, runs = _trial_runs(moved)
    client = MlflowClient(tracking_uri=_uri(moved))
    for run in runs:
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"curves.csv", "config.yaml"} <= names
        fetched = Path(client.download_artifacts(run.info.run_id, "curves.csv", str(tmp_path)))
        stored = moved / "mlruns" / "tiny" / run.info.run_id / "artifacts" / "curves.csv"
        assert fetched.read_bytes() == stored.read_bytes()
    trial1 = next(r for r in runs if r.data.tags["dqn_sweep.trial_number"] == "1")
    assert "greedy_episode.gif" in {a.path for a in client.list_artifacts(trial1.info.run_id)}  # logged by replay
    logged = moved / "mlruns" / "tiny" / trial1.info.run_id / "artifacts" / "greedy_episode.gif"
    assert logged.read_bytes() == gif.read_bytes()

    assert not (tmp_path / "copy").exists()
    assert _snapshot(original) == before  # nothing written to the folder it was copied from


def test_a_database_copied_without_its_artifacts_keeps_reading_the_originals(tiny_sweep, tmp_path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tiny_sweep.root / "mlflow.db", lone / "mlflow.db")
    shutil.copy(tiny_sweep.root / "optuna-journal.log", lone / "optuna-journal.log")
    assert main(["best", *_argv(lone)]) == 0
    # (other tests' studies in the shared store that never logged an artifact have no folder to keep: they move)
    assert not re.search(r"artifact locations of [^\n]*'tiny'[,\s]", capsys.readouterr().err)
    experiment, _ = _trial_runs(lone)
    assert experiment.artifact_location == (tiny_sweep.root.resolve() / "mlruns" / "tiny").as_uri()
