"""Passwords in storage URLs never reach an output or a store: in the user part (also containing `/`) or in the
query (`password=`, `sslpassword=`), on a real password-protected PostgreSQL. Every output line, the MLflow
database, its artifact files and every Optuna table are searched for each secret.
"""

from __future__ import annotations

import sqlalchemy
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.stores.redaction import redact, url_secrets
from tests.helpers import pg_table_rows
from tests.sweeps.test_reliability import SMALL_SWEEP

SLASH_PASSWORD = "sl/ash-Secret-77"
SSL_PASSWORD = "ssl-Secret-55"


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


def test_no_password_reaches_an_output_or_a_store(postgres, tmp_path, capsys):
    admin = sqlalchemy.create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE ROLE slasher LOGIN PASSWORD '{SLASH_PASSWORD}'"))
        conn.execute(sqlalchemy.text('CREATE DATABASE "optuna_slash" OWNER slasher'))
    admin.dispose()
    host = f"{postgres.host}:{postgres.port}"
    urls = {
        "slash": f"postgresql://slasher:{SLASH_PASSWORD}@{host}/optuna_slash",
        "query": postgres.create_database("optuna_query").replace(f":{postgres.password}@", "@")
        + f"?password={postgres.password}&sslpassword={SSL_PASSWORD}",
    }
    secrets = (SLASH_PASSWORD, postgres.password, SSL_PASSWORD)
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
        outputs.append(dump)
    outputs += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for secret in secrets:
        leaks = [text[max(0, text.find(secret) - 80) : text.find(secret) + 40] for text in outputs if secret in text]
        assert not leaks, (secret, leaks)
