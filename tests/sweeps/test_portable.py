"""A swept folder can be copied or moved as a whole: every command, and MLflow's own client, find all artifacts in
the folder the store is in now, and nothing is written to the folder it came from."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.tracking.relocation import CopiedRuns, relocate_artifacts
from sweeps.tracking.tags import TAG_STUDY


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
    default = MlflowClient(tracking_uri=_uri(copy)).get_experiment("0")  # MLflow's own, listed first in its UI
    assert default.artifact_location == (copy.resolve() / "mlruns" / "0").as_uri()

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
    assert "runs still read their files from" in capsys.readouterr().err
    experiment, runs = _trial_runs(lone)
    assert experiment.artifact_location == (lone.resolve() / "mlruns" / "tiny").as_uri()  # where new runs go
    originals = (tiny_sweep.root.resolve() / "mlruns" / "tiny").as_uri() + "/"
    assert runs and all(r.info.artifact_uri.startswith(originals) for r in runs)
    assert {"curves.csv", "config.yaml"} <= _artifacts(lone, runs[0].info.run_id)


def _contents(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root`: its SHA-256 and mtime, so a rewrite with the same size shows too."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _artifacts(folder: Path, run_id: str) -> set[str]:
    return {a.path for a in MlflowClient(tracking_uri=_uri(folder)).list_artifacts(run_id)}


def test_a_database_copied_without_its_artifacts_never_writes_into_the_original(tiny_sweep, tmp_path, capsys):
    """Every command that logs files writes them under the copy's own mlruns/: a run whose files are still only
    in the original is copied into the copy first; new runs go to the copy. The original stays byte-identical."""
    original = tmp_path / "original"
    shutil.copytree(tiny_sweep.root, original)  # a private original: the shared sweep must stay as it is
    assert main(["best", *_argv(original)]) == 0
    lone = tmp_path / "lone"
    lone.mkdir()
    for name in ("mlflow.db", "optuna-journal.log"):
        shutil.copy2(original / name, lone / name)
    before = _contents(original)
    assert main(["best", *_argv(lone)]) == 0
    relocated = capsys.readouterr().err
    writers = [
        ["report", "--out", str(lone / "report.html")],
        ["replay", "--trial", "1", "--out", str(lone / "replay.gif")],
        ["validate", "--top", "1", "--validate-seeds", "1", "--no-progress"],
        ["sync"],
        ["run", "--config", str(original / "tiny.yaml"), "--n-trials", "7", "--no-progress"],
    ]
    for command in writers:
        assert main([*command, *_argv(lone)]) == 0, capsys.readouterr().err
        assert _contents(original) == before, command[0]  # nothing written into the folder the copy came from
    capsys.readouterr()

    home = lone.resolve() / "mlruns" / "tiny"
    assert f"'tiny' now point to {lone.resolve() / 'mlruns'}; " in relocated  # new runs land in the copy
    assert f"still read their files from {original.resolve() / 'mlruns'}, not copied with mlflow.db" in relocated
    experiment, runs = _trial_runs(lone)
    assert experiment.artifact_location == home.as_uri()
    trial0, trial1 = (next(r for r in runs if r.data.tags["dqn_sweep.trial_number"] == n) for n in ("0", "1"))
    assert trial0.info.artifact_uri.startswith((original.resolve() / "mlruns").as_uri())  # never written to
    assert "curves.csv" in _artifacts(lone, trial0.info.run_id)  # so it still reads the original's files
    parent = trial1.data.tags["mlflow.parentRunId"]
    assert (home / parent / "artifacts" / "report.html").is_file()  # logged by report
    written = {"config.yaml", "curves.csv", "greedy_episode.gif"}  # the first two copied, the GIF logged by replay
    assert written <= {p.name for p in (home / trial1.info.run_id / "artifacts").iterdir()}
    assert written <= _artifacts(lone, trial1.info.run_id)
    trial6 = next(r for r in runs if r.data.tags["dqn_sweep.trial_number"] == "6")  # a new run, by `run`
    validation = MlflowClient(_uri(lone)).search_runs(
        [experiment.experiment_id], filter_string="tags.`dqn_sweep.role` = 'validation'"
    )
    assert validation and all(r.info.artifact_uri.startswith(home.as_uri() + "/") for r in [trial6, *validation])
    assert {"config.yaml", "curves.csv"} <= {p.name for p in (home / trial6.info.run_id / "artifacts").iterdir()}

    # Its mlruns/ copied in afterwards: every run reads beside the copy.
    shutil.copytree(original / "mlruns", lone / "mlruns", dirs_exist_ok=True)
    assert main(["best", *_argv(lone)]) == 0
    assert "still read" not in capsys.readouterr().err
    assert all(r.info.artifact_uri.startswith(home.as_uri() + "/") for r in _trial_runs(lone)[1])
    assert "curves.csv" in _artifacts(lone, trial0.info.run_id)
    assert _contents(original) == before


def test_two_processes_owning_the_same_copied_run_both_log_into_the_copy(tmp_path):
    """Workers ending together may both log to the best trial's run of a copied store: each made the run its own
    from what it found at start; the second finds the files already copied and only logs beside them."""
    original, lone = tmp_path / "original", tmp_path / "lone"
    original.mkdir()
    client = MlflowClient(_uri(original))
    experiment = client.create_experiment("s", artifact_location=(original / "mlruns" / "s").as_uri())
    client.set_experiment_tag(experiment, TAG_STUDY, "s")
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "curves.csv").write_text("seed,episode\n")
    client.log_artifact(run_id, str(tmp_path / "curves.csv"))
    lone.mkdir()
    shutil.copy2(original / "mlflow.db", lone / "mlflow.db")
    before = _contents(original)
    assert relocate_artifacts(_uri(lone))[0].kept  # the run still reads the original's file
    first, second = CopiedRuns(_uri(lone)), CopiedRuns(_uri(lone))
    for owner, name in ((first, "a.gif"), (second, "b.gif")):
        owner.own(run_id)
        (tmp_path / name).write_bytes(b"GIF89a")
        MlflowClient(_uri(lone)).log_artifact(run_id, str(tmp_path / name))
    artifacts = lone.resolve() / "mlruns" / "s" / run_id / "artifacts"
    assert sorted(p.name for p in artifacts.parent.iterdir()) == ["artifacts"]  # no half copy left beside it
    assert sorted(p.name for p in artifacts.iterdir()) == ["a.gif", "b.gif", "curves.csv"]
    assert _contents(original) == before
