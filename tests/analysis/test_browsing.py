"""Browsing the stores as users do: a real `mlflow server` in headless Chromium, and optuna-dashboard.

The test setup starts both servers on 127.0.0.1; `chromium` (conftest.py) installs Debian's chromium when missing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.tracking.tracker import trials_view_path

BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=2400,1400",
    "--virtual-time-budget=20000",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up within {seconds} s")


@pytest.fixture(scope="module")
def mlflow_ui_server(tiny_sweep, tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("mlflow_server") / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                tiny_sweep.tracking_uri,
                "--workers",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tiny_sweep.root,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/health")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_mlflow_ui_lists_trials_with_their_params(tiny_sweep, mlflow_ui_server, chromium, tmp_path):
    client = MlflowClient(mlflow_ui_server)
    experiment = client.get_experiment_by_name("tiny")
    trials = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'trial'")
    url = f"{mlflow_ui_server}/{trials_view_path(experiment.experiment_id)}"
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for run in trials:
        assert run.info.run_name in dom
    for param in ("gamma", "epsilon_decay_rate", "batch_size", "warmup"):
        assert param in dom
    assert trials[0].data.params["gamma"][:6] in dom  # a value, not just the header
    shot = tmp_path / "mlflow_trials.png"
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000


def test_optuna_dashboard_serves_the_study(tiny_sweep, tmp_path):
    port = _free_port()
    dashboard = subprocess.Popen(
        [str(BIN / "optuna-dashboard"), str(tiny_sweep.journal), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/studies")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as response:
            studies = json.loads(response.read())["study_summaries"]
        tiny = next(s for s in studies if s["study_name"] == "tiny")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{tiny['study_id']}", timeout=30) as response:
            detail = json.loads(response.read())
        study = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{tiny_sweep.journal}"))
        assert len(detail["trials"]) == len(study.trials)
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_printed_browse_lines_work_pasted_in_any_folder(tiny_sweep, tmp_path, monkeypatch, capsys):
    """`run` given relative store paths prints commands, not hints: the executables beside this interpreter and
    absolute stores. Pasted in another folder, Optuna's CLI lists the study from the printed journal path and the
    printed optuna-dashboard line serves it; the printed MLflow store opens there too."""
    import shlex
    import shutil

    from tests.helpers import Stores

    (tmp_path / "stores").mkdir()
    stores = Stores(tmp_path / "stores")  # a copy: resuming reopens the study's MLflow parent run
    shutil.copy(tiny_sweep.journal, stores.journal)
    shutil.copy(tiny_sweep.root / "mlflow.db", stores.root / "mlflow.db")
    monkeypatch.chdir(stores.root)
    argv = ["run", "--config", "tiny.yaml", "--study", "tiny", "--tracking-uri", "sqlite:///mlflow.db"]
    assert main([*argv, "--no-progress"]) == 0  # the budget is spent already: nothing is trained
    lines = [line.removeprefix("browse: ") for line in capsys.readouterr().out.splitlines() if "browse: " in line]
    assert len(lines) == 2
    db, journal = (stores.root / "mlflow.db").resolve(), stores.journal.resolve()
    ui, dashboard = (shlex.split(line, comments=True) for line in lines)
    assert ui == [str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{db}"]
    assert dashboard == [str(BIN / "optuna-dashboard"), str(journal)]
    assert lines[1].endswith("# then open http://127.0.0.1:8080")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    experiment = MlflowClient(ui[3]).get_experiment_by_name("tiny")
    assert f"http://127.0.0.1:5000/{trials_view_path(experiment.experiment_id)} " in lines[0]
    listed = subprocess.run(
        [str(BIN / "optuna"), "studies", "--storage", dashboard[1], "-f", "json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [study["name"] for study in json.loads(listed.stdout)] == ["tiny"]

    port = _free_port()
    server = subprocess.Popen(
        [*dashboard, "--host", "127.0.0.1", "--port", str(port)],
        cwd=elsewhere,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/studies")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as response:
            assert [s["study_name"] for s in json.loads(response.read())["study_summaries"]] == ["tiny"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert list(elsewhere.iterdir()) == []
