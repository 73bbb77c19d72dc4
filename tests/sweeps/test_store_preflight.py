"""Stores the preflight refuses before anything is written, and URLs that must reach the driver intact.

An SQLite path too long for SQLite, a read-only MLflow store or folder, each SQLite URL form SQLAlchemy accepts
(every check applies to each), and a raw `@` in a PostgreSQL password (it connects, and is never shown). Real
stores throughout: SQLite and journal files in tmp_path, a password-protected PostgreSQL from `tests/servers.py`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.stores import locations
from sweeps.stores.redaction import redact, url_secrets
from tests.sweeps.test_secrets import _create_role, _dump

ONE_TRIAL = """
study: {n_trials: 1, max_seeds: 2, slots: 2, sampler: random, pruner: none, seed: 5, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
"""


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its content: a store left untouched compares equal."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _refused(argv: list[str], capsys) -> str:
    """The one error line of a refused command (exit code 2)."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out[-500:], captured.err[-500:])
    lines = [line for line in captured.err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "one.yaml"
    path.write_text(ONE_TRIAL)
    return path


# --- 1. a folder too long for SQLite ---------------------------------------------------------------------------


SQLITE_MAX_PATHNAME = 512  # SQLite's unix VFS (MAX_PATHNAME in os_unix.c)


def _long_folder(root: Path) -> Path:
    """A folder whose `mlflow.db` is longer than SQLite takes (Linux takes 4096 bytes: the journal beside works)."""
    folder = root
    while len(os.fsencode(folder.resolve() / "mlflow.db")) <= SQLITE_MAX_PATHNAME:
        folder /= "d" * 200
    folder.mkdir(parents=True)
    return folder


def test_a_tracking_store_too_long_for_sqlite_is_refused_before_anything_is_written(config, tmp_path, capsys):
    """Was: a complete study in the default journal and its lock file, then SQLite's "unable to open database
    file", which did not say why."""
    folder = _long_folder(tmp_path)
    argv = ["run", "--config", str(config), "--study-name", "s", "--no-progress"]
    line = _refused([*argv, "--tracking-uri", f"sqlite:///{folder}/mlflow.db"], capsys)
    assert line.startswith("error: tracking store "), line
    assert "too long for SQLite" in line and "shorter folder" in line and "server" in line, line
    assert _files(tmp_path) == {}


def test_an_optuna_database_too_long_for_sqlite_is_refused(config, tmp_path, capsys):
    folder = _long_folder(tmp_path / "long")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["run", "--config", str(config), "--study-name", "s", "--no-progress", "--tracking-uri", tracking]
    line = _refused([*argv, "--storage", f"sqlite:///{folder}/optuna.db"], capsys)
    assert line.startswith("error: Optuna storage "), line
    assert "too long for SQLite" in line and "shorter folder" in line and "journal" in line, line
    assert _files(tmp_path) == {}


# --- 2. a read-only MLflow store ------------------------------------------------------------------------------


def _permission_bits_ignored(folder: Path) -> bool:
    """Root (with CAP_DAC_OVERRIDE) writes read-only files: then there is no read-only store to refuse."""
    probe = folder / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    try:
        return os.access(probe, os.W_OK)
    finally:
        probe.unlink()


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory) -> Path:
    """A finished one-trial sweep: mlflow.db, mlruns/ and the default journal in one folder."""
    folder = tmp_path_factory.mktemp("small_sweep")
    if _permission_bits_ignored(folder):
        pytest.skip("permission bits are ignored here (root): a chmod 444 store is writable")
    (folder / "one.yaml").write_text(ONE_TRIAL)
    argv = ["run", "--config", str(folder / "one.yaml"), "--study-name", "s", "--no-progress"]
    # In a process of its own: MLflow keeps one engine per URI for the life of a process, and a connection opened
    # while the file was writable stays writable after a chmod, which hid the failure from in-process commands.
    command = [sys.executable, "-m", "sweeps.cli", *argv, "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (folder / "optuna-journal.log.budget-lock").unlink()  # so that a new lock file shows
    return folder


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        path.chmod(mode)


WRITERS = {
    "run": ["run", "--config", "{folder}/one.yaml", "--study-name", "s", "--no-progress"],
    "worker": ["worker", "--study-name", "s", "--no-progress"],
    "repair": ["repair", "--study-name", "s"],
    "sync": ["sync", "--study-name", "s"],
    "validate": ["validate", "--study-name", "s", "--top", "1", "--validate-seeds", "1", "--no-progress"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", WRITERS)
def test_commands_that_write_refuse_a_read_only_tracking_store(command, small_sweep, capsys):
    """Was: `run` and `worker` failed with SQLAlchemy's "Query-invoked autoflush" text after creating a lock file;
    `validate` trained and lost its runs; `repair` and `sync` could not close or re-create a run."""
    db = small_sweep / "mlflow.db"
    argv = [word.format(folder=small_sweep) for word in WRITERS[command]]
    before = _files(small_sweep)
    with _read_only(db):
        line = _refused([*argv, "--tracking-uri", f"sqlite:///{db}"], capsys)
    assert line.startswith(f"error: tracking store {db} is read-only; "), line
    assert _files(small_sweep) == before


@pytest.mark.slow
def test_a_read_only_folder_is_a_read_only_tracking_store(small_sweep, tmp_path, capsys):
    """SQLite writes a `-journal` file beside the database: in a read-only folder a writable file is no help."""
    db = small_sweep / "mlflow.db"
    before = _files(small_sweep)
    argv = ["worker", "--study-name", "s", "--no-progress", "--tracking-uri", f"sqlite:///{db}"]
    with _read_only(small_sweep):
        line = _refused(argv, capsys)
    assert line.startswith(f"error: tracking store {db} is read-only "), line
    assert f"folder {small_sweep}" in line, line
    assert _files(small_sweep) == before


@pytest.mark.slow
def test_a_read_only_optuna_database_is_refused_by_a_writer(config, tmp_path, capsys):
    db = tmp_path / "optuna.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    if _permission_bits_ignored(tmp_path):
        pytest.skip("permission bits are ignored here (root): a chmod 444 store is writable")
    before = _files(tmp_path)
    argv = ["run", "--config", str(config), "--study-name", "s", "--no-progress", "--storage", f"sqlite:///{db}"]
    with _read_only(db):
        line = _refused([*argv, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"], capsys)
    assert line.startswith(f"error: Optuna storage {db} is read-only; "), line
    assert _files(tmp_path) == before


@pytest.mark.slow
def test_commands_that_only_read_still_work_on_a_read_only_tracking_store(small_sweep, tmp_path, capsys):
    """`best` reads Optuna alone; `report` and `replay` read MLflow and log their file as an artifact, which a
    local store keeps in mlruns/, not in mlflow.db: all three worked on a read-only mlflow.db and still do."""
    db = small_sweep / "mlflow.db"
    stores = ["--study-name", "s", "--tracking-uri", f"sqlite:///{db}"]
    with _read_only(db):
        assert main(["best", *stores]) == 0
        assert main(["report", *stores, "--out", str(tmp_path / "r.html")]) == 0
        assert main(["replay", "--trial", "0", *stores, "--out", str(tmp_path / "r.gif")]) == 0
    err = capsys.readouterr().err
    assert "error" not in err, err
    assert (tmp_path / "r.html").is_file() and (tmp_path / "r.gif").is_file()


# --- 3. every SQLite URL form ---------------------------------------------------------------------------------


def test_every_sqlite_url_form_names_its_file():
    """What SQLAlchemy opens for each form: the path after `sqlite[+driver]:///`, percent-decoded, the query cut
    off (a `file:` URI with `uri=true` names its path); no file for an in-memory database or another scheme."""
    forms = {
        "sqlite:///rel.db": Path("rel.db"),
        "sqlite:///sub/rel.db": Path("sub/rel.db"),
        "sqlite:////abs/x.db": Path("/abs/x.db"),
        "sqlite+pysqlite:///rel.db": Path("rel.db"),
        "sqlite+pysqlite:////abs/x.db": Path("/abs/x.db"),
        "sqlite:///x.db?timeout=30": Path("x.db"),
        "sqlite+pysqlite:////abs/x.db?timeout=30&check_same_thread=false": Path("/abs/x.db"),
        "sqlite:///my%20db.db": Path("my db.db"),
        "sqlite:///file:x.db?mode=ro&uri=true": Path("x.db"),
        "sqlite:///file:/abs/x.db?uri=true": Path("/abs/x.db"),
    }
    for url, path in forms.items():
        assert locations.sqlite_path(url) == path, url
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true", "postgresql://u@h/db"):
        assert locations.sqlite_path(url) is None, url


def _forms(folder: Path) -> dict[str, str]:
    """Each form, naming `new.db` in `folder` (the working directory for the relative ones)."""
    return {
        "relative": "sqlite:///new.db",
        "absolute": f"sqlite:///{folder}/new.db",
        "driver_relative": "sqlite+pysqlite:///new.db",
        "driver_absolute": f"sqlite+pysqlite:///{folder}/new.db",
        "query": f"sqlite:///{folder}/new.db?timeout=30",
        "driver_query": "sqlite+pysqlite:///new.db?timeout=30",
    }


FORMS = list(_forms(Path("/x")))
READERS = {
    "best": (["best", "--storage", "{url}"], "no Optuna database at"),
    "validate": (["validate", "--study-name", "s", "--storage", "{url}", "--tracking-uri", "{mlflow}"], "no Optuna"),
    "report_storage": (["report", "--storage", "{url}", "--tracking-uri", "{mlflow}"], "no Optuna database at"),
    "report_tracking": (["report", "--storage", "journal:{tmp}/j.log", "--tracking-uri", "{url}"], "no MLflow store"),
}


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> str:
    """An MLflow store with its tables and no study: a tracking store a reader gets past."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("form", FORMS)
def test_readers_refuse_a_missing_sqlite_file_in_any_url_form(
    form, reader, mlflow_store, tmp_path, monkeypatch, capsys
):
    """Was: `best --storage sqlite+pysqlite:///new.db` created new.db (only `sqlite:///` was known to be a file)."""
    monkeypatch.chdir(tmp_path)
    url = _forms(tmp_path)[form]
    template, expected = READERS[reader]
    argv = [word.format(url=url, mlflow=mlflow_store, tmp=tmp_path) for word in template]
    (tmp_path / "j.log").write_text("")
    line = _refused(argv, capsys)
    assert expected in line and "new.db" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.log"]


@pytest.mark.parametrize("form", ["driver_absolute", "query", "driver_query"])
def test_run_refuses_one_file_for_both_stores_in_any_url_form(form, config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = _forms(tmp_path)[form]
    argv = ["run", "--config", str(config), "--study-name", "s", "--no-progress", "--storage", url]
    line = _refused([*argv, "--tracking-uri", f"sqlite:///{tmp_path}/new.db"], capsys)
    assert "name the same file" in line, line
    assert list(tmp_path.iterdir()) == []


def test_run_refuses_a_long_path_in_any_url_form(config, tmp_path, capsys):
    folder = _long_folder(tmp_path)
    argv = ["run", "--config", str(config), "--study-name", "s", "--no-progress"]
    line = _refused([*argv, "--tracking-uri", f"sqlite+pysqlite:///{folder}/mlflow.db?timeout=30"], capsys)
    assert "too long for SQLite" in line, line
    assert _files(tmp_path) == {}


@pytest.mark.slow
def test_a_sweep_runs_on_sqlite_urls_with_a_driver_and_a_query(config, tmp_path, capsys):
    """Both stores in SQLAlchemy's other spellings: the budget lock and the artifacts go beside the files."""
    storage = f"sqlite+pysqlite:///{tmp_path}/optuna.db?timeout=30"
    tracking = f"sqlite+pysqlite:///{tmp_path}/mlflow.db"
    stores = ["--storage", storage, "--tracking-uri", tracking]
    assert main(["run", "--config", str(config), "--study-name", "s", "--no-progress", *stores]) == 0
    assert main(["best", "--study-name", "s", *stores]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["mlflow.db", "mlruns", "optuna.db", "optuna.db.budget-lock"], names
    assert list((tmp_path / "mlruns").iterdir())


# --- 4. a raw `@` in a PostgreSQL password ----------------------------------------------------------------------


def test_connect_url_percent_encodes_a_raw_password():
    cases = {
        "postgresql://u:p@ss@db:5432/optuna": "postgresql://u:p%40ss@db:5432/optuna",
        "postgresql://u:a@b@c@db/optuna?sslmode=require": "postgresql://u:a%40b%40c@db/optuna?sslmode=require",
        "postgresql+psycopg://u:p@s/s:x@db/o": "postgresql+psycopg://u:p%40s%2Fs%3Ax@db/o",
        "postgresql://u:p@ss@db": "postgresql://u:p%40ss@db",
        "http://bob:h@x@mlflow:5000": "http://bob:h%40x@mlflow:5000",
    }
    for typed, connected in cases.items():
        assert locations.connect_url(typed) == connected, typed
        assert redact(connected) == redact(typed)
        assert locations.connect_url(connected) == connected  # already encoded: as it is
    unchanged = (
        "postgresql://u:p%40ss@db/optuna",
        "postgresql://u:plain@db/optuna?application_name=me@laptop",  # an `@` in the query is not the password's
        "postgresql://u@db/optuna?password=p@ss",
        "postgresql://db/optuna",
        "sqlite:///mlflow.db",
        "journal:/tmp/x@y.log",
        "http://mlflow:5000",
    )
    for url in unchanged:
        assert locations.connect_url(url) == url, url


AT_PASSWORD = "Kq7Zt@Vx3Wn@Rb8Lm"  # the part after the first `@` is what SQLAlchemy took for a host


@pytest.mark.slow
def test_a_raw_at_in_a_postgresql_password_connects_and_is_never_shown(postgres, config, tmp_path, monkeypatch, capsys):
    """Both stores on PostgreSQL with the password typed raw: the sweep runs, `best` and `sync` read it back, and
    no part of the password is in any output, MLflow tag, stored attribute or file."""
    monkeypatch.chdir(tmp_path)  # a PostgreSQL tracking store puts its artifacts in ./mlruns
    _create_role(postgres, "at_user", AT_PASSWORD)
    host = f"{postgres.host}:{postgres.port}"
    postgres.create_database("mlflow_at_user")
    storage = f"postgresql://at_user:{AT_PASSWORD}@{host}/optuna_at_user"
    tracking = f"postgresql://at_user:{AT_PASSWORD}@{host}/mlflow_at_user"
    _grant(postgres, "mlflow_at_user", "at_user")
    stores = ["--storage", storage, "--tracking-uri", tracking]
    assert main(["run", "--config", str(config), "--study-name", "at", "--no-progress", *stores]) == 0
    assert main(["best", "--study-name", "at", *stores]) == 0
    assert main(["sync", "--study-name", "at", *stores]) == 0
    captured = capsys.readouterr()

    client = MlflowClient(locations.connect_url(tracking))
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("at").experiment_id], filter_string="tags.`dqn_sweep.role` = 'study'"
    )
    shown = f"postgresql://at_user:***@{host}/optuna_at_user"
    assert parent.data.tags["dqn_sweep.optuna_storage"] == shown
    outputs = [
        captured.out,
        captured.err,
        _dump(locations.connect_url(storage)),
        _dump(locations.connect_url(tracking)),
    ]
    assert f"--storage {shown} --tracking-uri postgresql://at_user:***@{host}/mlflow_at_user" in outputs[2]
    outputs += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in {*url_secrets(storage), "Kq7Zt", "Vx3Wn", "Rb8Lm"}:
        leaks = [text[max(0, text.find(secret) - 80) : text.find(secret) + 40] for text in outputs if secret in text]
        assert not leaks, (secret, leaks)


def _grant(postgres, database: str, role: str) -> None:
    """`role` owns `database` (MLflow creates its tables there)."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" OWNER TO {role}'))
        conn.execute(sqlalchemy.text(f'GRANT ALL ON DATABASE "{database}" TO {role}'))
    admin.dispose()
