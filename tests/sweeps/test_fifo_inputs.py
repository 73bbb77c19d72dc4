"""A named pipe (FIFO) given where a YAML file belongs (`--config`, `--base-config`, `--enqueue`) used to block the
command forever: opening a FIFO waits for a writer. It is refused without being opened, in one line naming it, with
exit code 2 and nothing written. Each command runs in a subprocess with a timeout, so a regression fails instead of
hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sweeps.test_reliability import SMALL_SWEEP

TIMEOUT_S = 90  # a refused command takes a few seconds (imports); a blocked one never ends


def _dqn_sweep(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeps", *argv], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--config", "{fifo}"],
        ["run", "--config", "{fifo}"],
        ["run", "--config", "{sweep}", "--base-config", "{fifo}"],
        ["run", "--config", "{sweep}", "--enqueue", "{sweep_copy}", "{fifo}"],
    ],
    ids=["train-config", "run-config", "base-config", "enqueue"],
)
def test_a_fifo_for_a_yaml_file_is_refused_without_blocking(argv, tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SMALL_SWEEP)
    (tmp_path / "copy.yaml").write_text("trainer: {gamma: 0.95}\n")
    places = {"{fifo}": str(fifo), "{sweep}": str(sweep), "{sweep_copy}": str(tmp_path / "copy.yaml")}
    before = sorted(p.name for p in tmp_path.iterdir())
    done = _dqn_sweep(*[places.get(a, a) for a in argv], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {fifo}: a named pipe (FIFO), not a regular file; name a YAML file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, database or lock file
