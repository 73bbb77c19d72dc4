"""Passwords in storage URLs never reach an output or a store: in the user part (typed raw with any of `'`, `"`,
`@`, `/`, `:`, `%`, `#`, `?`, a space or a tab, or percent-encoded) or in the query (`password=`, `sslpassword=`),
on a real password-protected PostgreSQL. Every output line, the MLflow database, its artifact files and every
Optuna table are searched for each secret.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.stores.redaction import redact, url_secrets
from tests.helpers import pg_table_rows
from tests.sweeps.test_reliability import SMALL_SWEEP

SLASH_PASSWORD = "sl/ash-Secret-77"
SSL_PASSWORD = "ssl-Secret-55"

# One character per case, between two pieces that must never be shown: a raw `@` made the driver (which ends the
# password at its first `@`) print the rest as a host; a raw quote, space or tab ended the URL for the old regex.
SPECIALS = {"quote": "'", "dquote": '"', "at": "@", "slash": "/", "colon": ":", "percent": "%", "hash": "#",
            "qmark": "?", "space": " ", "tab": "\t", "two_ats": "@x@"}  # fmt: skip
HEAD, TAIL = "Qu0te", "Secr3t"
# Every special character in one password, between pieces that are searched for in every output and store.
PIECES = ("Kq7Zt", "Vx3Wn", "Rb8Lm", "Jd2Hs", "Tg5Yp", "Nc4Fw", "Mz6Qe", "Ps9Dk", "Hy1Ub", "Wo0Ri", "Ex5Ga")
ALL_SPECIALS = ("'", '"', "/", ":", "#", "?", " ", "\t", "@", "%")
ALL_PASSWORD = PIECES[0] + "".join(c + piece for c, piece in zip(ALL_SPECIALS, PIECES[1:], strict=True))
# Typed raw, a password cannot hold `@` (the driver would take the rest for the host) nor `%` (it decodes %XX)
RAW_PASSWORD = ALL_PASSWORD.replace("@", "-").replace("%", "-")


def _dump(url: str) -> str:
    return "\n".join(str(rows) for rows in pg_table_rows(url).values())


def test_redact_hides_every_form_of_password():
    cases = {
        "postgresql://u:super/secret@db:5432/optuna": "postgresql://u:***@db:5432/optuna",
        "postgresql://u@db/optuna?password=q-Secret&sslmode=require": "postgresql://u@db/optuna?password=***&sslmode=require",
        "postgresql+psycopg://u@db/o?sslpassword=k-Secret": "postgresql+psycopg://u@db/o?sslpassword=***",
        "http://bob:h-Secret@mlflow:5000": "http://bob:***@mlflow:5000",
        "journal:/tmp/j.log": "journal:/tmp/j.log",
        "sqlite:///mlflow.db": "sqlite:///mlflow.db",
    }
    for url, shown in cases.items():
        assert redact(url) == shown
        assert redact(f"error: cannot open {url}: {' '.join(url_secrets(url))} refused") == (
            f"error: cannot open {shown}: {' '.join('***' for _ in url_secrets(url))} refused"
        )


@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "percent-encoded"])
@pytest.mark.parametrize("special", SPECIALS.values(), ids=SPECIALS.keys())
def test_redact_masks_a_password_with_any_character(special, encoded):
    password = f"{HEAD}{special}{TAIL}"
    typed = quote(password, safe="") if encoded else password
    url = f"postgresql://quo:{typed}@db-host:5432/optuna"
    assert redact(url) == "postgresql://quo:***@db-host:5432/optuna"
    # What a driver may echo: the password decoded or re-encoded, and what it took for the host when it ended the
    # password at the first `@` (`'x@Secr3t@db-host'`).
    echo = f"{password} {quote(password, safe='')} '{password.split('@', 1)[-1]}@db-host'"
    line = redact(f"error: cannot open Optuna storage {url}: failed for {echo}; retry")
    assert line.startswith("error: cannot open Optuna storage postgresql://quo:***@db-host:5432/optuna: failed for ")
    assert line.endswith("'***@db-host'; retry")
    assert HEAD not in line and TAIL not in line, line
    shown = redact(f"dqn-sweep run --storage {url} --tracking-uri http://u:{typed}@mlflow:5000 --study-name s")
    assert shown == (
        "dqn-sweep run --storage postgresql://quo:***@db-host:5432/optuna --tracking-uri http://u:***@mlflow:5000 "
        "--study-name s"
    )


@pytest.mark.parametrize("special", [c for c in SPECIALS.values() if c not in "'\" \t"], ids=str)
def test_redact_masks_a_query_password_with_any_character(special):
    """Raw in the query, a quote, space or tab would end the URL in a message; percent-encoded, every one works."""
    password = f"{HEAD}{special}{TAIL}"
    for typed in {password, quote(password, safe="")}:
        url = f"postgresql://quo@db-host/optuna?sslmode=require&password={typed}"
        assert redact(f"cannot open {url}: {password}") == (
            "cannot open postgresql://quo@db-host/optuna?sslmode=require&password=***: ***"
        )


@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "percent-encoded"])
@pytest.mark.parametrize("special", SPECIALS.values(), ids=SPECIALS.keys())
def test_a_failing_command_prints_no_part_of_the_password(special, encoded, tmp_path, capsys):
    """An unreachable PostgreSQL (port 9): the command fails at once, in one line, naming the host."""
    password = f"{HEAD}{special}{TAIL}"
    typed = quote(password, safe="") if encoded else password
    url = f"postgresql://quo:{typed}@127.0.0.1:9/optuna"
    argv = ["worker", "--study-name", "s", "--storage", url, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open Optuna storage postgresql://quo:***@127.0.0.1:9/optuna: "), err
    assert len(err.splitlines()) == 1, err
    assert HEAD not in err and TAIL not in err, err
    assert list(tmp_path.iterdir()) == []


def _create_role(postgres, role: str, password: str) -> None:
    admin = sqlalchemy.create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        literal = password.replace("'", "''")
        conn.execute(sqlalchemy.text(f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'"))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "optuna_{role}" OWNER {role}'))
    admin.dispose()


def test_no_password_reaches_an_output_or_a_store(postgres, tmp_path, capsys):
    """Four sweeps on PostgreSQL: a password with `/`, passwords in the query, every special character typed raw
    (all but `@` and `%`, which no driver reads raw) and percent-encoded. The MLflow tag and the stored command
    line show the host and database with the password masked."""
    _create_role(postgres, "slasher", SLASH_PASSWORD)
    _create_role(postgres, "nasty_raw", RAW_PASSWORD)
    _create_role(postgres, "nasty_encoded", ALL_PASSWORD)
    host = f"{postgres.host}:{postgres.port}"
    urls = {
        "slash": f"postgresql://slasher:{SLASH_PASSWORD}@{host}/optuna_slasher",
        "query": postgres.create_database("optuna_query").replace(f":{postgres.password}@", "@")
        + f"?password={postgres.password}&sslpassword={SSL_PASSWORD}",
        "raw": f"postgresql://nasty_raw:{RAW_PASSWORD}@{host}/optuna_nasty_raw",
        "encoded": f"postgresql://nasty_encoded:{quote(ALL_PASSWORD, safe='')}@{host}/optuna_nasty_encoded",
    }
    secrets = (SLASH_PASSWORD, postgres.password, SSL_PASSWORD, *PIECES)
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_SWEEP.replace("n_trials: 3", "n_trials: 1"))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outputs = []
    for name, url in urls.items():
        common = ["--storage", url, "--tracking-uri", tracking]
        argv = ["run", "--config", str(config), "--study-name", name, "--no-progress", *common]
        assert main(argv) == 0
        assert main(["best", "--study-name", name, *common]) == 0
        assert (
            main(
                ["best", "--study-name", name, "--storage", url.replace("optuna_", "nodb_"), "--tracking-uri", tracking]
            )
            == 2
        )
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]

        client = MlflowClient(tracking)
        (parent,) = client.search_runs(
            [client.get_experiment_by_name(name).experiment_id], filter_string="tags.`dqn_sweep.role` = 'study'"
        )
        assert parent.data.tags["dqn_sweep.optuna_storage"] == redact(url)
        assert "***" in parent.data.tags["dqn_sweep.optuna_storage"]
        dump = _dump(url)
        assert "***" in dump  # the command line is stored, redacted
        if name in ("raw", "encoded"):  # the whole password masked, the host and database shown
            shown = f"postgresql://nasty_{name}:***@{host}/optuna_nasty_{name}"
            assert parent.data.tags["dqn_sweep.optuna_storage"] == shown
            assert f"--storage {shown} --tracking-uri" in dump
        outputs.append(dump)
    outputs += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in secrets:
        leaks = [text[max(0, text.find(secret) - 80) : text.find(secret) + 40] for text in outputs if secret in text]
        assert not leaks, (secret, leaks)
