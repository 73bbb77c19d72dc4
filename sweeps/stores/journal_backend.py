"""Optuna's journal file backend with the partial-line guard (`journal.py` holds the checks, without Optuna).

Kept apart so that the preflight's journal checks import no Optuna: a rejected command answers before it loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from sweeps.stores.journal import JournalPartialLine, _ends_with_newline, _tail, partial_line_message


class GuardedJournalFileBackend(JournalFileBackend):
    """Optuna's journal file backend, but an append first checks, under the journal's lock, that the file ends in a
    newline, and refuses (`JournalPartialLine`) instead of writing onto a line another process left cut off (a
    full disk in the middle of its write). The append itself is Optuna's: the same lines, written and fsynced."""

    def __init__(self, path: str) -> None:
        self._guard = JournalFileSymlinkLock(path)  # Optuna's default lock, kept so append can hold it here
        self._journal_path = Path(path)
        super().__init__(path, lock_obj=self._guard)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        self._guard.acquire()
        try:
            with self._journal_path.open("ab") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size and not _ends_with_newline(self._journal_path, size):
                    raise JournalPartialLine(partial_line_message(self._journal_path, _tail(self._journal_path)[1]))
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            self._guard.release()
