"""A missing optional package (one of pyproject's extras) is one line naming the extra, exit code 2, and no store
is created or changed. Each case runs the real CLI in a fresh interpreter where the package cannot be imported
(`sys.modules[name] = None` makes `import name` raise ImportError, as if it were not installed)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sweeps.stores.locations import open_optuna_storage
from tests.helpers import Stores

ROOT = Path(__file__).resolve().parents[2]
CODE = "import sys; sys.modules[{module!r}] = None; from sweeps.cli import main; sys.exit(main(sys.argv[1:]))"


def _run_without(module: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    code = CODE.format(module=module)
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")}


@pytest.mark.parametrize(
    ("module", "extra", "options"),
    [
        ("cmaes", "cmaes", ["--sampler", "cmaes"]),
        ("psycopg", "postgres", ["--storage", "postgresql://bob:hunter2@127.0.0.1:1/optuna"]),
        ("psycopg", "postgres", ["--tracking-uri", "postgresql://bob:hunter2@127.0.0.1:1/mlflow"]),
    ],
)
def test_a_missing_extra_is_one_line_naming_it_and_creates_nothing(tmp_path, module, extra, options):
    stores = Stores(tmp_path)
    before = _files(tmp_path)
    done = _run_without(module, [*stores.argv(), *options], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'dqn-sweep[{extra}]'" in lines[0]
    assert "hunter2" not in done.stderr + done.stdout
    assert _files(tmp_path) == before  # no journal, lock file or MLflow database


def test_a_missing_cmaes_leaves_an_existing_journal_untouched(tmp_path):
    journal = tmp_path / "optuna-journal.log"
    optuna.create_study(study_name="tiny", storage=open_optuna_storage(f"journal:{journal}"))
    stores = Stores(tmp_path)
    before = _files(tmp_path)
    done = _run_without("cmaes", [*stores.argv(), "--sampler", "cmaes"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: the cmaes sampler needs the optional package 'cmaes': pip install 'dqn-sweep[cmaes]'"
    )
    assert _files(tmp_path) == before
