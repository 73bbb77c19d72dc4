"""Files a user names for output (`report --out`, `replay --out`, `train --save`, and their defaults): never another
name for a store, and written whole or not at all.

A path is only a name. `report --out r.html`, a symbolic link to `mlflow.db`, wrote the report over the MLflow
database; `replay --out r.gif`, a hard link to the Optuna journal, wrote a GIF over the study. So before any work
an output is compared with every store file by device and inode (`os.stat` follows links; a hard link is the same
inode under another name) and refused if it is one; then it is written to a temporary file in the target's folder
and renamed over it (`os.replace`), so a failed write leaves the old file and a hard link is cut, not written through.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dqn_core.errors import ConfigError, shown
from sweeps.stores.budget import LOCK_SUFFIX as BUDGET_LOCK_SUFFIX
from sweeps.stores.locations import ARTIFACT_FOLDER, JOURNAL_PREFIX, sqlite_path

SQLITE_SIDE_SUFFIXES = ("-journal", "-wal", "-shm")  # SQLite's rollback journal and write-ahead log beside a database
OPTUNA_LOCK_SUFFIX = ".lock"  # Optuna's JournalFileSymlinkLock: a symbolic link to the journal while held

T = TypeVar("T")


@dataclass(frozen=True)
class StoreFiles:
    """The files (and folders, everything under them) that a command keeps its stores and config in: an output
    must be none of them. Each entry says what it is, for the error message."""

    files: tuple[tuple[str, Path], ...] = ()
    folders: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def of(
        cls, *, storage: str | None = None, tracking: str | None = None, configs: Sequence[str | Path] = ()
    ) -> StoreFiles:
        """The store files of an Optuna storage URL (a journal and its locks, or an SQLite database and its side
        files), an MLflow tracking URI (an SQLite database, its side files and the `mlruns/` beside it, or a file
        store's folder) and config files. Servers (PostgreSQL, http) have no local files."""
        files: list[tuple[str, Path]] = []
        folders: list[tuple[str, Path]] = []
        if storage is not None:
            if storage.startswith(JOURNAL_PREFIX):
                journal = Path(storage[len(JOURNAL_PREFIX) :])
                files += [
                    ("the Optuna journal", journal),
                    ("the Optuna journal's lock", _suffixed(journal, OPTUNA_LOCK_SUFFIX)),
                    ("the Optuna journal's budget lock", _suffixed(journal, BUDGET_LOCK_SUFFIX)),
                ]
            elif (db := sqlite_path(storage)) is not None:
                files += _sqlite_files("the Optuna database", db)
                files += [("the Optuna database's budget lock", _suffixed(db, BUDGET_LOCK_SUFFIX))]
        if tracking is not None:
            if (db := sqlite_path(tracking)) is not None:
                files += _sqlite_files("the MLflow store", db)
                folders += [("the MLflow artifact folder", db.parent / ARTIFACT_FOLDER)]
            elif tracking.startswith("file://"):
                folders += [("the MLflow file store", Path(tracking[len("file://") :]))]
            elif tracking.startswith(("/", ".")):
                folders += [("the MLflow file store", Path(tracking))]
        files += [("the config file", Path(config)) for config in configs]
        return cls(files=tuple(files), folders=tuple(folders))


def refuse_store(path: Path, option: str, stores: StoreFiles) -> Path:
    """`path`, unless it is, through any link, one of `stores`' files (the same device and inode; for a file that
    does not exist yet, the same resolved path) or lies in one of its folders: then a one-line ConfigError."""
    real = _resolved(path)
    info = _stat(path)
    link = " (through a symbolic link)" if path.is_symlink() else ""
    for what, store in stores.files:
        store_info = _stat(store)
        same = real == _resolved(store) or (
            info is not None and store_info is not None and os.path.samestat(info, store_info)
        )
        if same:
            if not link and info is not None and real != _resolved(store):
                link = " (a hard link)"
            raise ConfigError(
                f"{option} {shown(path)}: is {what} {shown(store)}{link}; writing would destroy it, name another file"
            )
    for what, folder in stores.folders:
        root = _resolved(folder)
        if real.is_relative_to(root):
            raise ConfigError(f"{option} {shown(path)}: lies in {what} {shown(folder)}; name a file outside it")
        if info is not None and info.st_nlink > 1:  # a hard link to some file in there: find it (rare, so walk)
            for inside in _files_under(root):
                if _same_file(info, inside):
                    raise ConfigError(
                        f"{option} {shown(path)}: is {shown(inside.path)} in {what} (a hard link); name another file"
                    )
    return path


def write_output(path: Path, write: Callable[[Path], T], *, option: str, stores: StoreFiles | None = None) -> T:
    """`write(temporary)` on a fresh file beside `path`'s target, then renamed over it; `write`'s result.

    A symbolic link is written through (it keeps pointing at the new file); a hard link is cut (its other names
    keep the old content). The store check runs again just before the rename: minutes of training lie between
    the preflight and here. The temporary file keeps `path`'s suffix (PIL picks the image format by it)."""
    stores = stores or StoreFiles()
    target = _resolved(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _fresh_file(target)
    try:
        result = write(temporary)
        refuse_store(path, option, stores)
        if (info := _stat(target)) is not None:
            os.chmod(temporary, stat.S_IMODE(info.st_mode))  # as overwriting would have kept it
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result


def _fresh_file(target: Path) -> Path:
    """An empty new file in `target`'s folder, named after it and hidden, with the mode a plain open would give."""
    while True:
        candidate = target.with_name(f".{target.stem}-{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


def _sqlite_files(what: str, db: Path) -> list[tuple[str, Path]]:
    return [(what, db)] + [(f"{what}'s {s[1:]} file", _suffixed(db, s)) for s in SQLITE_SIDE_SUFFIXES]


def _suffixed(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _same_file(info: os.stat_result, entry: os.DirEntry[str]) -> bool:
    try:
        return os.path.samestat(info, entry.stat(follow_symlinks=False))
    except OSError:  # removed since it was listed
        return False


def _files_under(root: Path) -> Iterable[os.DirEntry[str]]:
    """Every file under `root` (links not followed), skipping what vanishes or cannot be read meanwhile."""
    folders = [root]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        yield entry
        except OSError:
            continue
