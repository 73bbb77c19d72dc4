"""The bad-input suite: malformed configs, spaces, CLI args, storage URLs, unreachable hosts, a read-only path, a
corrupt journal, unknown studies. Each is one line naming the problem, exit code 2, no password, and every existing
store (journal + SQLite files, and a PostgreSQL database dumped table by table) is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from sweeps.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_store(postgres) -> str:
    """A PostgreSQL Optuna store holding one study that dqn-sweep did not create."""
    url = postgres.create_database("optuna_bad_input")
    study = optuna.create_study(study_name="foreign", storage=url)
    study.enqueue_trial({"gamma": 0.95})
    return url


def _pg_dump(url: str) -> str:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars()
            digest = hashlib.sha256()
            for table in list(tables):
                rows = conn.execute(sqlalchemy.text(f'SELECT t::text FROM "{table}" t ORDER BY 1')).scalars()
                digest.update(f"{table}:{list(rows)}".encode())
            return digest.hexdigest()
    finally:
        engine.dispose()


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corrupt_journal(tiny_sweep, tmp_path_factory) -> Path:
    """A copy of the tiny sweep's journal with one line in the middle broken."""
    path = tmp_path_factory.mktemp("corrupt") / "journal.log"
    lines = tiny_sweep.journal.read_bytes().splitlines(keepends=True)
    lines[len(lines) // 2] = b'{"op_code": 5, "worker_id": \n'
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def read_only_dir(tmp_path_factory) -> Path:
    """A folder nobody can write: chmod 555, or /sys for root (who ignores permission bits)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path_factory.mktemp("read_only")
    folder.chmod(0o555)
    return folder


SWEEP_FILES = {
    "bad_yaml": "search_space:\n  gamma: [unclosed\n",
    "unknown_key": "trainer: {gama: 0.9}\n",
    "bad_type": "search_space:\n  gamma: {type: normal, low: 0.9, high: 0.99}\n",
    "bad_range": "search_space:\n  gamma: {type: float, low: 0.5, high: 1.5}\n",
}

# (argv template, expected message). {J} = the tiny sweep's journal + SQLite stores, {PG} = the PostgreSQL store
# with the local SQLite tracking store, {pg:...} = a PostgreSQL URL variant, {sweep:NAME} = a broken sweep file.
CASES = [
    (["worker", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["worker", "{J}"], "the following arguments are required: --study-name"),
    (["sync", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["repair", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["best", "--study-name", "nope", "{PG}"], "unknown study 'nope'"),
    (["worker", "--study-name", "tiny", "--heartbeat-interval", "0", "{J}"], "--heartbeat-interval must be >= 1"),
    (["worker", "--study-name", "tiny", "--grace-period", "5", "--heartbeat-interval", "9", "{J}"], "must exceed"),
    (["worker", "--study-name", "tiny", "--n-trials", "0", "{J}"], "n-trials must be >= 1"),
    (["worker", "--study-name", "tiny", "--trials-per-batch", "x", "{J}"], "invalid int value"),
    (["run", "--study-name", " ", "{J}"], "study name must not be empty"),
    (["worker", "--study-name", "tiny", "--storage", "notaurl"], "cannot open Optuna storage notaurl"),
    (["worker", "--study-name", "tiny", "--storage", "redis://127.0.0.1/0"], "cannot open Optuna storage redis://"),
    (["worker", "--study-name", "foreign", "--storage", "{pg:wrong_password}"], "password authentication failed"),
    (["worker", "--study-name", "foreign", "--storage", "{pg:no_database}"], 'database "no_such_db" does not exist'),
    (["worker", "--study-name", "foreign", "--storage", "{pg:unreachable}"], "cannot open Optuna storage"),
    (["worker", "--study-name", "foreign", "{PG}"], "does not record its sweep"),
    (["run", "--study-name", "foreign", "{PG}"], "was created from a different sweep config"),
    (["worker", "--study-name", "tiny", "{J}", "--tracking-uri", "http://127.0.0.1:9"], "cannot use MLflow tracking"),
    (["worker", "--study-name", "tiny", "{J}", "--tracking-uri", "ftp://127.0.0.1/x"], "unsupported tracking URI"),
    (["sync", "{J}", "--tracking-uri", "sqlite:////no/such/dir/mlflow.db"], "tracking store folder does not exist"),
    (["run", "--storage", "{read_only}"], "Optuna journal"),
    (["worker", "--study-name", "tiny", "--storage", "{corrupt}"], "is corrupt"),
    (["run", "--config", "{sweep:bad_yaml}", "{J}"], "invalid YAML at line"),
    (["run", "--config", "{sweep:unknown_key}", "{J}"], "did you mean 'gamma'"),
    (["run", "--config", "{sweep:bad_type}", "{J}"], "type must be one of"),
    (["run", "--config", "{sweep:bad_range}", "{J}"], "gamma=1.5 is invalid"),
]


def _expand(template, *, tiny_sweep, pg_url, postgres, corrupt, read_only, sweeps) -> list[str]:
    good_password = postgres.password
    pg = {
        "wrong_password": pg_url.replace(good_password, "wrong-Password-77"),
        "no_database": pg_url.rsplit("/", 1)[0] + "/no_such_db",
        "unreachable": pg_url.replace(f":{postgres.port}/", ":9/"),
    }
    argv: list[str] = []
    for item in template:
        if item == "{J}":
            argv += ["--storage", f"journal:{tiny_sweep.journal}", "--tracking-uri", tiny_sweep.tracking_uri]
        elif item == "{PG}":
            argv += ["--storage", pg_url, "--tracking-uri", tiny_sweep.tracking_uri]
        elif item.startswith("{pg:"):
            argv.append(pg[item[4:-1]])
        elif item.startswith("{sweep:"):
            argv.append(str(sweeps[item[7:-1]]))
        elif item == "{corrupt}":
            argv.append(f"journal:{corrupt}")
        elif item == "{read_only}":
            argv.append(f"journal:{read_only / 'optuna-journal.log'}")
        else:
            argv.append(item)
    if argv[0] == "run" and "--config" not in argv:
        argv += ["--config", str(tiny_sweep.config)]
    if argv[0] in ("run", "worker") and "--tracking-uri" not in argv:
        argv += ["--tracking-uri", tiny_sweep.tracking_uri]
    return argv


def test_the_suite_is_large_enough():
    assert len(CASES) >= 20


@pytest.mark.parametrize(("template", "message"), CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input(template, message, tiny_sweep, pg_store, postgres, corrupt_journal, read_only_dir, tmp_path, capsys):
    sweeps = {}
    for name, text in SWEEP_FILES.items():
        sweeps[name] = tmp_path / f"{name}.yaml"
        sweeps[name].write_text(text)
    argv = _expand(
        template,
        tiny_sweep=tiny_sweep,
        pg_url=pg_store,
        postgres=postgres,
        corrupt=corrupt_journal,
        read_only=read_only_dir,
        sweeps=sweeps,
    )
    before = (_files(tiny_sweep.root), _files(corrupt_journal.parent), _pg_dump(pg_store))
    read_only_before = sorted(os.listdir(read_only_dir))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert postgres.password not in err and "wrong-Password-77" not in err
    assert (_files(tiny_sweep.root), _files(corrupt_journal.parent), _pg_dump(pg_store)) == before
    assert sorted(os.listdir(read_only_dir)) == read_only_before
    shutil.rmtree(tmp_path / "mlruns", ignore_errors=True)
