"""An output a user names (`report --out`, `replay --out`, `train --save`, and the defaults) is never another name
for a store: a symbolic or hard link to `mlflow.db` or the journal is refused in one line (exit 2) before anything
is written, and every store stays byte-identical. Outputs are written whole through a temporary file and a rename.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dqn_core.errors import ConfigError
from sweeps.cli import main
from sweeps.stores.output_paths import StoreFiles, refuse_store, write_output
from tests.sweeps.test_reliability import SMALL_SWEEP


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A finished one-trial sweep: `optuna-journal.log`, `mlflow.db` and `mlruns/` in one folder."""
    folder = tmp_path_factory.mktemp("outputs")
    config = folder / "small.yaml"
    config.write_text(SMALL_SWEEP.replace("n_trials: 3", "n_trials: 1"))
    assert main(["run", "--config", str(config), "--study-name", "small", "--no-progress", *_stores(folder)]) == 0
    return folder


def _stores(folder: Path) -> list[str]:
    return ["--storage", f"journal:{folder / 'optuna-journal.log'}", "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]


def _link(kind: str, target: Path, link: Path) -> Path:
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return link


COMMANDS = {
    "report": (["report", "--study", "small"], ".html"),
    "replay": (["replay", "--study", "small", "--trial", "0"], ".gif"),
}


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("store", ["mlflow.db", "optuna-journal.log"])
@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_that_is_a_store_is_refused(command, store, kind, sweep, tmp_path, capsys):
    argv, suffix = COMMANDS[command]
    out = _link(kind, sweep / store, tmp_path / f"out{suffix}")
    before = _digests(sweep)
    assert main([*argv, "--out", str(out), *_stores(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: is the "), err
    assert str(sweep / store) in err and len(err.splitlines()) == 1, err
    assert _digests(sweep) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file either


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_default_report_path_that_is_a_store_is_refused(kind, sweep, capsys):
    """`report` without --out writes reports/<study>.html beside mlflow.db: that name is checked too."""
    (sweep / "reports").mkdir()
    link = _link(kind, sweep / "mlflow.db", sweep / "reports" / "small.html")
    try:
        before = _digests(sweep)
        assert main(["report", "--study", "small", *_stores(sweep)]) == 2
        assert capsys.readouterr().err.startswith(f"error: --out {link}: is the MLflow store")
        assert _digests(sweep) == before
    finally:
        link.unlink()
        (sweep / "reports").rmdir()


def test_an_output_inside_mlruns_is_refused(sweep, tmp_path, capsys):
    before = _digests(sweep)
    assert main(["report", "--study", "small", "--out", str(sweep / "mlruns" / "x.html"), *_stores(sweep)]) == 2
    assert "lies in the MLflow artifact folder" in capsys.readouterr().err
    artifact = next(p for p in (sweep / "mlruns").rglob("*") if p.is_file())
    out = _link("hardlink", artifact, tmp_path / "artifact.gif")
    assert main(["replay", "--study", "small", "--trial", "0", "--out", str(out), *_stores(sweep)]) == 2
    assert "in the MLflow artifact folder (a hard link)" in capsys.readouterr().err
    assert _digests(sweep) == before


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_train_save_over_its_config_is_refused(kind, tmp_path, capsys):
    config = tmp_path / "agent.yaml"
    config.write_text("max_episodes: 2\n")
    save = _link(kind, config, tmp_path / "agent.npz")
    assert main(["train", "--config", str(config), "--save", str(save)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --save {save}: is the config file {config}")
    assert config.read_text() == "max_episodes: 2\n"


def test_report_writes_through_a_symlink_and_replay_cuts_a_hard_link(sweep, tmp_path, capsys):
    """Ordinary links to ordinary files still work: a symbolic link keeps pointing at the new report; a hard link's
    other name keeps its old content (the GIF replaces the name, it is not written into the shared file)."""
    target = tmp_path / "target.html"
    target.write_text("old")
    report = _link("symlink", target, tmp_path / "report.html")
    assert main(["report", "--study", "small", "--out", str(report), *_stores(sweep)]) == 0
    assert report.is_symlink() and target.read_text().startswith("<!DOCTYPE html>")
    shared = tmp_path / "shared.gif"
    shared.write_bytes(b"keep")
    gif = _link("hardlink", shared, tmp_path / "replay.gif")
    assert main(["replay", "--study", "small", "--trial", "0", "--out", str(gif), *_stores(sweep)]) == 0
    assert shared.read_bytes() == b"keep" and gif.read_bytes().startswith(b"GIF8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.gif", "report.html", "shared.gif", "target.html"]
    capsys.readouterr()


def test_store_files_name_locks_and_sqlite_side_files(tmp_path):
    stores = StoreFiles.of(storage=f"journal:{tmp_path / 'j.log'}", tracking=f"sqlite:///{tmp_path / 'm.db'}")
    names = {path.name for _, path in stores.files}
    assert names == {"j.log", "j.log.lock", "j.log.budget-lock", "m.db", "m.db-journal", "m.db-wal", "m.db-shm"}
    (tmp_path / "m.db-wal").write_bytes(b"wal")
    link = _link("hardlink", tmp_path / "m.db-wal", tmp_path / "x.html")
    with pytest.raises(ConfigError, match=r"--out .*x.html: is the MLflow store's wal file .*m.db-wal \(a hard link\)"):
        refuse_store(link, "--out", stores)
    # Optuna's lock is a symbolic link to the journal while it is held
    (tmp_path / "j.log").write_text("{}\n")
    (tmp_path / "j.log.lock").symlink_to(tmp_path / "j.log")
    with pytest.raises(ConfigError, match="is the Optuna journal"):
        refuse_store(_link("symlink", tmp_path / "j.log.lock", tmp_path / "y.gif"), "--out", stores)


def test_write_output_leaves_the_old_file_when_writing_fails(tmp_path):
    out = tmp_path / "r.html"
    out.write_text("old")
    out.chmod(0o640)

    def fail(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_output(out, fail, option="--out")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert write_output(out, lambda path: path.write_text("new"), option="--out") == 3
    assert out.read_text() == "new" and (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
