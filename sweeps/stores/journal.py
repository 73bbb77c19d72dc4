"""Integrity of an Optuna journal file, checked before Optuna opens it.

Optuna's `JournalFileBackend` reads a file to its end and appends to it. Pointed at `/dev/full` it reads forever,
at `/dev/null` it fails later with a traceback, and a journal whose last line was cut off (a crash or a full disk
mid-write) is read without that line but then appended onto it, after which every command finds it corrupt. So a
journal must be a regular file, and a writer refuses one that ends in a partial line until `dqn-sweep repair
--journal PATH` has cut that line off (after keeping a backup).

Optuna is not imported here (its backend subclass lives in `journal_backend.py`): the checks run in every
command's preflight, and a rejected command must answer before Optuna (about a second to import) is loaded.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from dqn_core.errors import ConfigError

SETTLE_S = 0.5  # another worker's append may be in flight: a partial tail must stay put this long to count
TAIL_BLOCK = 1 << 16


class JournalPartialLine(ConfigError):
    """The journal ends in a partial line: appending would glue the next entry onto it and corrupt the file."""


def partial_line_message(path: Path, cut: int) -> str:
    return (
        f"Optuna journal {path} ends in a partial line ({cut} bytes, an interrupted write); "
        f"run `dqn-sweep repair --journal {path}` (keeps a backup), then retry"
    )


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def check_journal(path: Path, *, writable: bool, must_exist: bool) -> None:
    """Refuse, in one line and before anything is opened or created, a journal path Optuna must not touch."""
    if not str(path):
        raise ConfigError("journal path must name a file, got ''")
    try:
        info = os.stat(path)  # follows symlinks: a link to /dev/full is a device too
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(f"cannot use Optuna journal {path}: {exc.strerror}") from None
    if info is None:
        if must_exist:
            raise ConfigError(f"no Optuna journal at {path}; run a sweep first or pass --storage")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise ConfigError(f"journal folder does not exist: {folder}")
        if writable and not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"Optuna journal {path} is read-only (cannot write {folder})")
        if writable:  # permission bits lie for root and on /sys or /proc: try (a nameless temp file, gone at once)
            try:
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as exc:
                raise ConfigError(f"cannot create Optuna journal {path}: {exc.strerror}") from None
        return
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"journal path must name a file, got the folder '{path}'")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"Optuna journal {path} is not a regular file (a device, pipe or socket); name a file")
    if writable:
        if not os.access(path, os.W_OK):
            raise ConfigError(f"Optuna journal {path} is read-only (cannot write {path})")
        cut = partial_tail(path)
        if cut:
            raise JournalPartialLine(partial_line_message(path, cut))


def partial_tail(path: Path) -> int:
    """Bytes after the last newline of `path` (0: the file ends cleanly), once the file has stopped growing."""
    size, cut = _tail(path)
    while cut:
        time.sleep(SETTLE_S)
        new_size, new_cut = _tail(path)
        if new_size == size:
            return new_cut
        size, cut = new_size, new_cut
    return 0


def _tail(path: Path) -> tuple[int, int]:
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        position = size
        while position > 0:
            start = max(0, position - TAIL_BLOCK)
            handle.seek(start)
            block = handle.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return size, size - (start + newline + 1)
            position = start
        return size, size


def repair_journal(path: Path) -> tuple[Path | None, int]:
    """Cut a partial last line off `path`, keeping a full copy first; returns (backup or None, bytes cut).

    Stop every worker of the journal before running this: a worker's append in flight looks exactly like a
    partial line for a moment (which is why `partial_tail` waits for the file to settle).
    """
    check_journal(path, writable=False, must_exist=True)
    if not os.access(path, os.W_OK):
        raise ConfigError(f"Optuna journal {path} is read-only; cannot repair it")
    cut = partial_tail(path)
    if not cut:
        return None, 0
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))  # the lock every append holds: no write can be under way meanwhile
    lock.acquire()
    try:
        cut = _tail(path)[1]
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
        shutil.copy2(path, backup)
        with path.open("r+b") as handle:
            handle.truncate(handle.seek(0, os.SEEK_END) - cut)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        lock.release()
    return backup, cut
