"""The bad-input suite: malformed configs, spaces, CLI args, storage URLs, unreachable hosts, a read-only path, a
corrupt or cut-off journal, devices and folders where files belong, mixed-up stores, unbounded numbers, unknown
studies. Each is one line naming the problem, exit code 2, no password, and every existing store (journal + SQLite
files, MLflow artifacts, and a PostgreSQL database dumped table by table) is byte-identical afterwards; nothing new
appears in the test's folder (no journal, lock file or database file).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import optuna
import pytest

from sweeps.cli import main
from tests.helpers import pg_table_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_store(postgres) -> str:
    """A PostgreSQL Optuna store holding one study that dqn-sweep did not create."""
    url = postgres.create_database("optuna_bad_input")
    study = optuna.create_study(study_name="foreign", storage=url)
    study.enqueue_trial({"gamma": 0.95})
    return url


def _pg_dump(url: str) -> str:
    return hashlib.sha256(repr(sorted(pg_table_rows(url).items())).encode()).hexdigest()


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
def pg_mlflow(postgres) -> str:
    """A PostgreSQL database holding MLflow's tables (what an MLflow server's backend store looks like)."""
    from mlflow.tracking import MlflowClient

    url = postgres.create_database("mlflow_tables")
    MlflowClient(url).search_experiments()
    return url


@pytest.fixture(scope="module")
def extra_stores(tiny_sweep, tmp_path_factory) -> dict[str, Path]:
    """Stores that are wrong in a way only their contents show: a journal cut off mid-line, an Optuna SQLite
    database (never an MLflow store), an MLflow store whose 'tiny' experiment is deleted."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("extra")
    partial = folder / "partial.log"
    partial.write_bytes(tiny_sweep.journal.read_bytes()[:-50])
    optuna_db = folder / "optuna.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{optuna_db}")
    deleted_db = folder / "deleted.db"
    client = MlflowClient(f"sqlite:///{deleted_db}")
    client.delete_experiment(client.create_experiment("tiny", artifact_location=(folder / "art").as_uri()))
    return {"partial": partial, "optuna_db": optuna_db, "deleted_db": deleted_db}


@pytest.fixture(scope="module")
def read_only_dir(tmp_path_factory) -> Path:
    """A folder nobody can write: chmod 555, or /sys for root (who ignores permission bits)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path_factory.mktemp("read_only")
    folder.chmod(0o555)
    return folder


NINE_LAYERS = ",".join(["4"] * 9)  # one more than hidden_sizes may have
GAMMA = "search_space:\n  gamma: {type: float, low: 0.9, high: 0.99}\n"
SWEEP_FILES = {
    "bad_yaml": "search_space:\n  gamma: [unclosed\n",
    "unknown_key": "trainer: {gama: 0.9}\n",
    "bad_type": "search_space:\n  gamma: {type: normal, low: 0.9, high: 0.99}\n",
    "bad_range": "search_space:\n  gamma: {type: float, low: 0.5, high: 1.5}\n",
    "nan_low": "search_space:\n  warmup: {type: int, low: .nan, high: 10}\n",
    "inf_high": "search_space:\n  gamma: {type: float, low: 0.9, high: .inf}\n",
    "nan_step": "search_space:\n  gamma: {type: float, low: 0.9, high: 0.99, step: .nan}\n",
    "deep": "search_space: " + "[" * 50_000 + "\n",
    "duplicate": GAMMA + "  gamma: {type: float, low: 0.5, high: 0.9}\n",
    "duplicate_section": "trainer: {max_episodes: 30}\ntrainer: {max_episodes: 40}\n" + GAMMA,
    "empty": "",
    "no_space": "trainer: {max_episodes: 30}\n",
    "huge_refresh": "trainer: {target_refresh_episodes: 99999999999999999999}\n" + GAMMA,
    "huge_seed": "study: {seed: 18446744073709551616}\n" + GAMMA,
    "huge_max_seeds": "study: {max_seeds: 1000000000}\n" + GAMMA,
    "grid_no_step": "study: {sampler: grid}\n" + GAMMA,
    "not_a_mapping": "- gamma\n",
    "step_over_range": "search_space:\n  warmup: {type: int, low: 0, high: 10, step: 20}\n",
    "step_uneven": "search_space:\n  gamma: {type: float, low: 0.9, high: 0.99, step: 0.04}\n",
    "empty_layer": "trainer: {hidden_sizes: '16,16,'}\n" + GAMMA,
    "deep_choice": f"search_space:\n  hidden_sizes: {{type: categorical, choices: ['16,16', '{NINE_LAYERS}']}}\n",
    "huge_rate": "trainer: {epsilon_decay_rate: 1e300}\n" + GAMMA,
    "huge_memory": "study: {slots: 1024}\ntrainer: {memory_size: 10000000}\n" + GAMMA,  # ~645 GB: no machine
}
# Things in the test's folder where a file is expected: folders, and symlinks to /dev/full.
FOLDERS = ("adir.html", "adir.gif", "adir.npz", "adir.db")
DEVICE_LINKS = ("devfull.log", "devfull.html", "devfull.gif", "devfull.npz")

# (argv template, expected message). {J} = the tiny sweep's journal + SQLite stores, {PG} = the PostgreSQL store
# with the local SQLite tracking store, {pg:...} = a PostgreSQL URL variant, {sweep:NAME} = a broken sweep file.
CASES = [
    (["worker", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["worker", "{J}"], "the following arguments are required: --study-name"),
    (["sync", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["repair", "--study-name", "nope", "{J}"], "unknown study 'nope'"),
    (["best", "--study-name", "nope", "{PG}"], "unknown study 'nope'"),
    (["worker", "--study-name", "tiny", "--heartbeat-interval", "0", "{J}"], "--heartbeat-interval: must be >= 1"),
    (["worker", "--study-name", "tiny", "--grace-period", "5", "--heartbeat-interval", "9", "{J}"], "must exceed"),
    (["worker", "--study-name", "tiny", "--n-trials", "0", "{J}"], "n-trials: must be in [1, 100000], got 0"),
    (["worker", "--study-name", "tiny", "--slots", "x", "{J}"], "invalid int value"),
    (["run", "--study-name", " ", "{J}"], "study name must not be empty"),
    (["worker", "--study-name", "tiny", "--storage", "notaurl"], "no Optuna journal at notaurl"),
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
    (["run", "--config", "{sweep:bad_type}", "{J}"], "type: must be one of"),
    (["run", "--config", "{sweep:bad_range}", "{J}"], "gamma=1.5 is invalid"),
    # journal integrity: only regular files, never a partial last line
    (["run", "--storage", "journal:/dev/full"], "is not a regular file"),
    (["run", "--storage", "journal:/dev/null"], "is not a regular file"),
    (["best", "--storage", "journal:/dev/null"], "is not a regular file"),
    (["run", "--storage", "journal:{tmp}/devfull.log"], "is not a regular file"),
    (["run", "--storage", "journal:{tmp}"], "journal path must name a file, got the folder"),
    (["run", "--storage", "journal:"], "journal path must name a file"),
    (["run", "--study-name", "tiny", "--storage", "journal:{partial}"], "repair --journal"),
    (["worker", "--study-name", "tiny", "--storage", "journal:{partial}"], "ends in a partial line"),
    (["sync", "--study-name", "tiny", "--storage", "journal:{partial}"], "ends in a partial line"),
    (["repair", "--journal", "{tmp}/missing.log"], "no Optuna journal at"),
    (["repair", "--journal", "/dev/null"], "is not a regular file"),
    (["repair", "--journal", "{partial}", "--study-name", "tiny"], "--journal: repairs the file alone"),
    # study names: letters, digits, '.', '_', '-', at most 100
    (["run", "--study-name", "x'; DROP TABLE trials;--", "{J}"], "is not allowed"),
    (["run", "--study-name", "a" * 300, "{J}"], "at most 100 are allowed"),
    (["run", "--study-name", "a/b", "{J}"], "is not allowed"),
    (["run", "--study-name", ".hidden", "{J}"], "is not allowed"),
    # the two stores: probed read-only, never mixed, never created by a reader
    (["run", "--storage", "sqlite:///{tiny_db}", "--tracking-uri", "sqlite:///{tmp}/new.db"], "is an MLflow database"),
    (["worker", "--study-name", "tiny", "--storage", "sqlite:///{tiny_db}"], "is an MLflow database"),
    (["best", "--storage", "sqlite:///{tiny_db}"], "is an MLflow database"),
    (["run", "{J}", "--tracking-uri", "sqlite:///{optuna_db}"], "is an Optuna database"),
    (["report", "{J}", "--tracking-uri", "sqlite:///{optuna_db}"], "is an Optuna database"),
    (["run", "--storage", "sqlite:///{tmp}/one.db", "--tracking-uri", "sqlite:///{tmp}/one.db"], "the same file"),
    (["run", "--storage", "{pg:mlflow}"], "is an MLflow database"),
    (["run", "--storage", "journal:{tmp}/new.log", "--tracking-uri", "{pg:optuna}"], "is an Optuna database"),
    (["best", "--storage", "sqlite:///{tmp}/new.db"], "no Optuna database at"),
    (["best", "--storage", "sqlite:///{optuna_db}", "--study-name", "tiny"], "unknown study 'tiny'"),
    (["report", "--study", "tiny", "{J}", "--tracking-uri", "sqlite:///{tmp}/empty.db"], "is empty (no MLflow"),
    (["validate", "--study", "tiny", "{J}", "--tracking-uri", "sqlite:///{tmp}/new.db"], "no MLflow store at"),
    (["run", "--storage", "journal:{tmp}/new.log", "--tracking-uri", "http://127.0.0.1:1"], "cannot use MLflow"),
    (["run", "--storage", "journal:{tmp}/new.log", "--tracking-uri", "sqlite:///{tmp}"], "is a folder"),
    (["run", "--storage", "sqlite:///{tmp}/adir.db"], "is a folder"),
    (["run", "--study-name", "tiny", "{J}", "--tracking-uri", "sqlite:///{deleted_db}"], "is deleted; restore it"),
    (["run", "--storage", "journal:{tmp}/new.log", "--config", "{sweep:grid_no_step}"], "needs a step"),
    # numbers: parsed and bounded before anything is written
    (["run", "--seed", "4294967296", "{J}"], "seed: must be in [0, 4294967295]"),
    (["run", "--seed", "-1", "{J}"], "seed: must be in [0, 4294967295]"),
    (["run", "--max-seeds", "1000000000", "{J}"], "max-seeds: must be in [2, 1000]"),
    (["run", "--n-trials", "100000000", "{J}"], "n-trials: must be in [1, 100000]"),
    (["run", "--slots", "5000", "{J}"], "slots: must be in [1, 1024]"),
    (["worker", "--study-name", "tiny", "--heartbeat-interval", "10000000000", "{J}"], "--heartbeat-interval: must"),
    (["worker", "--study-name", "tiny", "--grace-period", "10000000000", "{J}"], "--grace-period: must be in"),
    (["train", "--seed", "4294967296"], "--seed: must be in [0, 4294967295]"),
    (["train", "--set", "max_episodes=99999999999999999999"], "max_episodes: must be <= 1,000,000"),
    (["train", "--set", "hidden_sizes=16,100000"], "hidden_sizes entries: must be <= 4096"),
    (["train", "--set", "hidden_sizes=16,,16"], "hidden_sizes: entry 2 of 3 in '16,,16' is empty"),
    (["train", "--set", "hidden_sizes=16,16,"], "hidden_sizes: entry 3 of 3 in '16,16,' is empty"),
    (["train", "--set", "hidden_sizes=" + ",".join(["1"] * 300)], "hidden_sizes: 300 layers, at most 8"),
    (["train", "--set", "epsilon_decay_rate=1e300"], "epsilon_decay_rate: 1e+300 overflows float32"),
    (["train", "--set", "learning_rate=1e-50"], "learning_rate: 1e-50 underflows float32"),
    (["report", "--study", "tiny", "--top", "5000", "{J}"], "--top: must be in [1, 1000]"),
    (["validate", "--study", "tiny", "--seeds", "100000", "{J}"], "--seeds: must be in [1, 1000]"),
    # sweep files: finite bounds, no duplicate keys, bounded nesting, something to search
    (["run", "--config", "{sweep:nan_low}", "{J}"], "low: must be a finite number"),
    (["run", "--config", "{sweep:inf_high}", "{J}"], "high: must be a finite number"),
    (["run", "--config", "{sweep:nan_step}", "{J}"], "step: must be a positive number"),
    (["run", "--config", "{sweep:deep}", "{J}"], "nested too deeply"),
    (["run", "--config", "{sweep:duplicate}", "{J}"], "duplicate key 'gamma'"),
    (["run", "--config", "{sweep:duplicate_section}", "{J}"], "duplicate key 'trainer'"),
    (["run", "--config", "{sweep:empty}", "{J}"], "no search_space"),
    (["run", "--config", "{sweep:no_space}", "{J}"], "no search_space"),
    (["run", "--config", "{sweep:huge_refresh}", "{J}"], "target_refresh_episodes: must be <= 1,000,000"),
    (["run", "--config", "{sweep:huge_seed}", "{J}"], "seed: must be in [0, 4294967295]"),
    (["run", "--config", "{sweep:huge_max_seeds}", "{J}"], "max_seeds: must be in [2, 1000]"),
    (["run", "--config", "{sweep:not_a_mapping}", "{J}"], "expected a mapping"),
    (["run", "--config", "{sweep:step_over_range}", "{J}"], "warmup: step 20 is larger than the range [0, 10]"),
    (["run", "--config", "{sweep:step_uneven}", "{J}"], "gamma: step 0.04 does not divide the range [0.9, 0.99]"),
    (["run", "--config", "{sweep:empty_layer}", "{J}"], "hidden_sizes: entry 3 of 3 in '16,16,' is empty"),
    (["run", "--config", "{sweep:deep_choice}", "{J}"], "hidden_sizes: 9 layers, at most 8 are allowed"),
    (["run", "--config", "{sweep:huge_rate}", "{J}"], "epsilon_decay_rate: 1e+300 overflows float32"),
    (["run", "--config", "{sweep:huge_memory}", "{J}"], "1024 slots with memory_size 10000000 needs ~645 GB"),
    (["run", "--config", "{tmp}", "{J}"], "is a folder"),
    (["train", "--config", "{sweep:duplicate}"], "duplicate key 'gamma'"),
    (["train", "--config", "{sweep:deep}"], "nested too deeply"),
    # output files: regular, writable, checked before any training
    (["report", "--study", "tiny", "{J}", "--out", "{tmp}/adir.html"], "is a folder"),
    (["report", "--study", "tiny", "{J}", "--out", "{tmp}/devfull.html"], "is not a regular file"),
    (["report", "--study", "tiny", "{J}", "--out", "/proc/x.html"], "cannot write in /proc"),
    (["report", "--study", "tiny", "{J}", "--out", "{tmp}/report.txt"], "must end in .html"),
    (["replay", "--trial", "0", "{J}", "--out", "{tmp}/adir.gif"], "is a folder"),
    (["replay", "--trial", "0", "{J}", "--out", "{tmp}/devfull.gif"], "is not a regular file"),
    (["replay", "--trial", "0", "{J}", "--out", "/proc/x.gif"], "cannot write in /proc"),
    (["replay", "--run-id", "nope", "{J}"], "has no trial with MLflow run id nope"),
    (["train", "--save", "{tmp}/adir.npz"], "is a folder"),
    (["train", "--save", "{tmp}/devfull.npz"], "is not a regular file"),
    (["train", "--save", "/proc/x.npz"], "cannot write in /proc"),
    # passwords in the query or with '/' are never shown
    (["worker", "--study-name", "foreign", "--storage", "{pg:query_password}"], "password authentication failed"),
    (["worker", "--study-name", "foreign", "--storage", "{pg:slash_password}"], "password authentication failed"),
    (["run", "--equivalence-margin", "0", "{J}"], "--equivalence-margin: must be in (0, 1), got 0.0"),
    (["run", "--equivalence-margin", "1", "{J}"], "--equivalence-margin: must be in (0, 1), got 1.0"),
    (["run", "--equivalence-margin", "-0.1", "{J}"], "--equivalence-margin: must be in (0, 1), got -0.1"),
    (["run", "--equivalence-margin", "nan", "{J}"], "--equivalence-margin: must be a number, got nan"),
    (["run", "--equivalence-margin", "inf", "{J}"], "--equivalence-margin: must be a number, got inf"),
    (["run", "--equivalence-margin", "ten", "{J}"], "error: --equivalence-margin: invalid float value: 'ten'"),
    # this round: bounds checked before Optuna loads, one error format
    (["run", "--from-study", "tiny", "--top", "0", "{J}"], "error: --top: must be >= 1, got 0"),
    (["validate", "--study", "tiny", "--top", "0", "{J}"], "error: --top: must be >= 1, got 0"),
    (["worker", "--study-name", "tiny", "--grace-period", "0", "{J}"], "error: --grace-period: must be >= 1, got 0"),
    (["run", "--startup-seeds", "9", "--max-seeds", "5", "{J}"], "startup-seeds: must not exceed --max-seeds"),
    (["train", "--set", "gamma"], "error: --set: expects key=value, got 'gamma'"),
    (["train", "--seed", "x"], "error: --seed: invalid int value: 'x' (see dqn-sweep train --help)"),
]


def _expand(template, *, tiny_sweep, pg_url, postgres, corrupt, read_only, sweeps, extra, tmp) -> list[str]:
    good_password = postgres.password
    pg = {
        "mlflow": extra["pg_mlflow"],
        "optuna": pg_url,
        "wrong_password": pg_url.replace(good_password, "wrong-Password-77"),
        "no_database": pg_url.rsplit("/", 1)[0] + "/no_such_db",
        "unreachable": pg_url.replace(f":{postgres.port}/", ":9/"),
        "query_password": pg_url.replace(f":{good_password}@", "@") + "?password=wrong-Password-77",
        "slash_password": pg_url.replace(good_password, "wrong-Password-77/with/slashes"),
    }
    places = {
        "{tmp}": str(tmp),
        "{partial}": str(extra["partial"]),
        "{optuna_db}": str(extra["optuna_db"]),
        "{deleted_db}": str(extra["deleted_db"]),
        "{tiny_db}": str(tiny_sweep.root / "mlflow.db"),
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
            for key, value in places.items():
                item = item.replace(key, value)
            argv.append(item)
    if argv[0] == "run" and "--config" not in argv:
        argv += ["--config", str(tiny_sweep.config)]
    if argv[0] in ("run", "worker") and "--tracking-uri" not in argv:
        argv += ["--tracking-uri", tiny_sweep.tracking_uri]
    return argv


def test_the_suite_is_large_enough():
    assert len(CASES) >= 120


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("template", "message"), CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input(
    template,
    message,
    tiny_sweep,
    pg_store,
    pg_mlflow,
    postgres,
    corrupt_journal,
    extra_stores,
    read_only_dir,
    tmp_path,
    capsys,
):
    sweeps = {}
    for name, text in SWEEP_FILES.items():
        sweeps[name] = tmp_path / f"{name}.yaml"
        sweeps[name].write_text(text)
    for name in FOLDERS:
        (tmp_path / name).mkdir()
    for name in DEVICE_LINKS:
        (tmp_path / name).symlink_to("/dev/full")
    (tmp_path / "empty.db").touch()
    argv = _expand(
        template,
        tiny_sweep=tiny_sweep,
        pg_url=pg_store,
        postgres=postgres,
        corrupt=corrupt_journal,
        read_only=read_only_dir,
        sweeps=sweeps,
        extra={**extra_stores, "pg_mlflow": pg_mlflow},
        tmp=tmp_path,
    )
    folders = (tiny_sweep.root, corrupt_journal.parent, extra_stores["partial"].parent, tmp_path)
    before = ([_files(f) for f in folders], [_listing(f) for f in folders], _pg_dump(pg_store), _pg_dump(pg_mlflow))
    read_only_before = sorted(os.listdir(read_only_dir))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert postgres.password not in err and "wrong-Password-77" not in err and "with/slashes" not in err
    after = ([_files(f) for f in folders], [_listing(f) for f in folders], _pg_dump(pg_store), _pg_dump(pg_mlflow))
    assert after == before
    assert sorted(os.listdir(read_only_dir)) == read_only_before
    assert not Path("/dev/null.budget-lock").exists() and not Path("/dev/full.budget-lock").exists()
