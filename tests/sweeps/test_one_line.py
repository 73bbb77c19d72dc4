"""Every message stays one line whatever a path holds: a folder may be called "moved<newline>here". A path with a
line break or another control character is quoted as Python's repr (`dqn_core.errors.shown`), and any ConfigError's
text has its line breaks escaped, so a message built from some other path is one line too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dqn_core.errors import ConfigError, shown
from sweeps.cli import main
from sweeps.tracking.browse import browse_lines
from sweeps.tracking.tags import TAG_STUDY

ODD_NAME = "moved\nhere\u2028too"  # str.splitlines() breaks at both


def test_shown_quotes_only_paths_that_need_it():
    assert shown(Path("/tmp/plain folder/x.yaml")) == "/tmp/plain folder/x.yaml"
    assert shown(Path(f"/tmp/{ODD_NAME}")) == "'/tmp/moved\\nhere\\u2028too'"
    assert str(ConfigError(f"cannot read /tmp/{ODD_NAME}")) == "cannot read /tmp/moved\\nhere\\u2028too"


def test_the_relocation_message_is_one_line(tmp_path, capsys):
    """A store moved into a folder whose name holds a newline: the line saying where its artifacts now point
    names that folder quoted, on one line."""
    folder = tmp_path / ODD_NAME
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=(tmp_path / "gone" / "mlruns" / "s").as_uri())
    client.set_experiment_tag(experiment, TAG_STUDY, "s")
    (folder / "mlruns" / "s").mkdir(parents=True)
    capsys.readouterr()  # MLflow's log of creating its tables
    assert main(["best", "--study", "s", "--storage", f"journal:{folder / 'j.log'}", "--tracking-uri", uri]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        f"the store was moved or copied: artifact locations of 's' now point to {shown(folder / 'mlruns')}"
    )
    assert lines[1].startswith("error: no Optuna journal at ") and len(lines) == 2, lines
    assert client.get_experiment(experiment).artifact_location == (folder / "mlruns" / "s").as_uri()


def test_errors_naming_odd_paths_are_one_line(tmp_path, capsys):
    folder = tmp_path / ODD_NAME
    (folder / "adir.npz").mkdir(parents=True)
    assert main(["train", "--config", str(folder / "missing.yaml")]) == 2
    assert capsys.readouterr().err == f"error: config file not found: {shown(folder / 'missing.yaml')}\n"
    assert main(["train", "--save", str(folder / "adir.npz")]) == 2  # a message that does not quote its path
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.endswith("adir.npz is a folder; name a file\n"), err


@pytest.mark.skipif(shutil.which("bash") is None, reason="the browse lines are checked by pasting them into bash")
def test_browse_lines_stay_one_line_and_paste_as_the_path(tmp_path):
    """The `browse:` commands quote such a path as `$'...\\n...'`: one line, and the shell reads the path back."""
    folder = tmp_path / ODD_NAME
    mlflow, dashboard = browse_lines(f"sqlite:///{folder}/mlflow.db", f"journal:{folder}/j.log", "1")
    assert len(f"{mlflow}\n{dashboard}".splitlines()) == 2
    command = dashboard.removeprefix("browse: ").split("  # ")[0]
    words = command.split(" ", 1)[1]  # the journal's path, quoted
    echoed = subprocess.run(["bash", "-c", f"printf %s {words}"], capture_output=True, text=True, check=True)
    assert echoed.stdout == str(folder / "j.log")
