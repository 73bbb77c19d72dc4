"""Issue 25's friction items on the command line: a rejected flag answers before TensorFlow, Optuna or MLflow is
imported (no timing asserts: what is imported is what costs seconds), one name per concept with the old spellings
kept as aliases, and `validate` shows progress on stderr while stdout stays the table alone."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from sweeps.cli import build_parser, main

HEAVY = ("tensorflow", "optuna", "mlflow")

# Runs the CLI in a fresh interpreter (the test process has imported everything already) and prints, last, the
# heavy modules it imported.
WRAPPER = (
    "import sys, sweeps.cli; rc = sweeps.cli.main(sys.argv[1:]); "
    f"print(sorted(m for m in {HEAVY!r} if m in sys.modules)); sys.exit(rc)"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--n-trials", "0"], "--n-trials: must be in [1, 100000], got 0"),
        (["run", "--sampler", "bogus"], "--sampler: unknown value 'bogus'"),
        (["run", "--equivalence-margin", "2"], "--equivalence-margin: must be in (0, 1), got 2.0"),
        (["run", "--timeout", "-1"], "--timeout: must be a positive number of minutes, got -1"),
        (["run", "--study-name", "bad name"], "study name 'bad name' is not allowed"),
        (["run", "--grace-period", "5", "--heartbeat-interval", "10"], "--grace-period: must exceed"),
        (["worker", "--study-name", "x", "--heartbeat-interval", "0"], "--heartbeat-interval: must be >= 1, got 0"),
        (["worker", "--study-name", "x", "--timeout", "-1"], "--timeout: must be a positive number of minutes"),
        (["worker", "--study-name", "x", "--n-trials", "0"], "--n-trials: must be in [1, 100000], got 0"),
        (["validate", "--top", "0"], "--top: must be >= 1, got 0"),
        (["run", "--from-study", "other", "--top", "0"], "--top: must be >= 1, got 0"),
        (["run", "--from-study", "other", "--from-top", "101"], "--from-top: must be in [1, 100], got 101"),
        (["validate", "--validate-seeds", "5000"], "--validate-seeds: must be in [1, 1000], got 5000"),
        (["validate", "--seeds", "0"], "--seeds: must be >= 1, got 0"),  # the old spelling, named as typed
    ],
)
def test_a_rejected_flag_imports_no_heavy_module(tmp_path, argv, message):
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip().splitlines() == ["[]"]  # nothing printed but the wrapper's list: none imported
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []  # no store, journal or lock file was created


def test_building_the_parser_imports_neither_gymnasium_nor_numpy(tmp_path):
    """`train --help` lists the config keys with their defaults, read from a default TrainConfig (which resolves
    the env through gymnasium): built only when that help is shown, not for every command's parser."""
    code = (
        "import sys, sweeps.cli; rc = sweeps.cli.main(sys.argv[1:]); "
        "print(sorted(m for m in ('gymnasium', 'numpy') if m in sys.modules)); sys.exit(rc)"
    )
    refused = subprocess.run([sys.executable, "-c", code, "validate", "--top", "0"], capture_output=True, text=True)
    assert (refused.returncode, refused.stdout.strip()) == (2, "[]"), refused.stderr
    shown = subprocess.run([sys.executable, "-c", code, "train", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "epsilon_decay_rate" in shown.stdout and "0.001" in shown.stdout


def test_journal_checks_import_no_optuna_until_a_journal_is_opened(tmp_path):
    code = (
        "import sys; from pathlib import Path; from sweeps.stores import journal; "
        "journal.check_journal(Path(sys.argv[1]), writable=True, must_exist=False); "
        "print('optuna' in sys.modules); from sweeps.stores.journal_backend import GuardedJournalFileBackend; "
        "backend = GuardedJournalFileBackend(sys.argv[1]); "
        "print('optuna' in sys.modules, type(backend).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "j.log")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "GuardedJournalFileBackend"]


@pytest.mark.parametrize(
    ("command", "spellings", "dest", "value"),
    [
        (["validate"], ("--validate-seeds", "--seeds"), "validate_seeds", 7),
        (["run"], ("--top", "--from-top"), "from_top", 5),
    ],
)
def test_old_spellings_parse_to_the_same_option(command, spellings, dest, value):
    parsed = [build_parser().parse_args([*command, spelling, str(value)]) for spelling in spellings]
    assert [getattr(args, dest) for args in parsed] == [value, value]
    assert [getattr(args, f"{dest}_flag") for args in parsed] == list(spellings)  # errors name what was typed


def test_run_and_validate_name_held_out_seeds_and_top_alike():
    """One concept, one name: `--validate-seeds` (held-out seeds) and `--top` (how many of a study's best
    trials) are accepted by both commands."""
    run = build_parser().parse_args(["run", "--validate-seeds", "4", "--top", "2"])
    validate = build_parser().parse_args(["validate", "--validate-seeds", "4", "--top", "2"])
    assert (run.validate_seeds, run.from_top) == (validate.validate_seeds, validate.top) == (4, 2)


def test_validate_shows_progress_on_stderr_and_only_the_table_on_stdout(tiny_sweep, tmp_path, capsys):
    folder = tmp_path / "copy"  # validate logs runs: into a copy of the shared sweep, not the sweep itself
    shutil.copytree(tiny_sweep.root, folder)
    common = [
        "--storage",
        f"journal:{folder / 'optuna-journal.log'}",
        "--tracking-uri",
        f"sqlite:///{folder}/mlflow.db",
    ]
    capsys.readouterr()
    assert main(["validate", "--study", "tiny", "--top", "1", "--validate-seeds", "2", *common]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"validate: training \d+ agents \(\d+ configurations? x 2 held-out seeds\) as one population", err)
    assert "episode" in err  # the bar of finished episodes
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["config", "trial"] and "held_out_median" in lines[0]
    assert "validat" not in out and "episode" not in out
