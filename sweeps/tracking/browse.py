"""The `browse:` lines a sweep prints: commands for MLflow's UI and optuna-dashboard that work pasted anywhere.

Bare executable names and the stores' relative paths worked only with the virtual environment activated and from
the stores' folder. Here the executables are the ones installed beside the running interpreter (the project's
`.venv/bin`) and every local store is an absolute path, so the part after `browse: ` runs as it is from any
directory (what follows `#` is a comment to the shell).
"""

from __future__ import annotations

import shlex
import sys
import unicodedata
from pathlib import Path

from sweeps.stores.locations import JOURNAL_PREFIX, redact, sqlite_path
from sweeps.tracking.tracker import trials_view_path

MLFLOW_UI_URL = "http://127.0.0.1:5000"  # `mlflow ui`'s default address
DASHBOARD_URL = "http://127.0.0.1:8080"  # optuna-dashboard's default address


def executable(name: str) -> str:
    """`name` beside the running interpreter when it is installed there, else the bare name (found on PATH)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else name


def absolute_store(url: str) -> str:
    """A local SQLite URL or journal path made absolute; any other URL as it is, its password hidden."""
    if url.startswith(JOURNAL_PREFIX):
        return str(Path(url[len(JOURNAL_PREFIX) :]).resolve())  # the bare path: what optuna-dashboard takes
    db = sqlite_path(url)
    if db is not None and "?" not in url:
        return f"sqlite:///{db.resolve()}"  # four slashes: sqlite:// + the absolute path
    return redact(url)


def browse_lines(tracking_uri: str, storage: str, experiment_id: str) -> list[str]:
    """One line for the MLflow trials view and one for optuna-dashboard."""
    view = f"{trials_view_path(experiment_id)} (trials, best first, with their params)"
    if tracking_uri.startswith(("http://", "https://")):
        mlflow = f"{redact(tracking_uri).rstrip('/')}/{view}"
    else:
        ui = _command(executable("mlflow"), "ui", "--backend-store-uri", absolute_store(tracking_uri))
        mlflow = f"{ui}  # then open {MLFLOW_UI_URL}/{view}"
    return [f"browse: {mlflow}", f"browse: {_dashboard(storage)}"]


def _dashboard(storage: str) -> str:
    """optuna-dashboard is an extra that `make sweep` does not install: without it, the line installs it first
    (a line that cannot work as printed was the first thing a new user met)."""
    import importlib.util

    if importlib.util.find_spec("optuna_dashboard") is not None:
        return f"{_command(executable('optuna-dashboard'), absolute_store(storage))}  # then open {DASHBOARD_URL}"
    bin_dir = Path(sys.executable).parent
    checkout = Path(__file__).resolve().parents[2]
    target = f"{checkout}[dashboard]" if (checkout / "pyproject.toml").is_file() else "optuna-dashboard"
    install = _command(str(bin_dir / "pip"), "install", "-e" if target.endswith("]") else "--", target)
    run = _command(str(bin_dir / "optuna-dashboard"), absolute_store(storage))
    why = "the dashboard extra is not installed: this installs it first"
    return f"{install} && {run}  # {why}; then open {DASHBOARD_URL}"


def _command(*words: str) -> str:
    return " ".join(map(_shell_word, words))


def _shell_word(word: str) -> str:
    """`shlex.quote`, but a word holding a line break or another control character (a folder may be called
    "a<newline>b") is written in ANSI-C quotes, `$'a\\nb'` (bash, zsh, ksh), so the line stays one line."""
    if not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in word):
        return shlex.quote(word)
    return "$'" + "".join(map(_ansi_c, word)) + "'"


def _ansi_c(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
