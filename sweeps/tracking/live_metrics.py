"""What the MLflow UI shows while a sweep runs, not only after it: each running trial's results seed by seed, and
the study's progress on its parent run.

Per seed, a trial run gets `seed_episodes_to_solve` (step = seed) and `episodes_to_solve_so_far` (the median of
its finished seeds, step = how many). Those go out batched: one `log_batch` per run every `FLUSH_INTERVAL_S`, and
at the trial's end. The parent run gets `trials_complete`, `trials_pruned` and `best_value` (step = finished
trials of the study, every worker's) each time a trial of this process finishes: one call per trial.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sweeps.tracking.tracker import StudyTracker

FLUSH_INTERVAL_S = 10.0


class LiveProgress:
    def __init__(self, tracker: StudyTracker, *, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.tracker = tracker
        self.interval_s = interval_s
        self.pending: dict[str, list[Any]] = {}
        self.last_flush = time.monotonic()

    def seed_done(self, run_id: str | None, seed: int, values: dict[int, int], *, trial_over: bool) -> None:
        """A seed of a trial finished (`values`: every finished seed's episodes to solve, this one included)."""
        from mlflow.entities import Metric

        if run_id is None or seed not in values:
            return
        now = int(time.time() * 1000)
        self.pending.setdefault(run_id, []).extend(
            [
                Metric("seed_episodes_to_solve", float(values[seed]), now, seed),
                Metric("episodes_to_solve_so_far", float(np.median(list(values.values()))), now, len(values)),
            ]
        )
        if trial_over:
            self._flush_run(run_id)
        elif time.monotonic() - self.last_flush >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        for run_id in list(self.pending):
            self._flush_run(run_id)
        self.last_flush = time.monotonic()

    def _flush_run(self, run_id: str) -> None:
        metrics = self.pending.pop(run_id, None)
        if metrics:
            self.tracker.attempt("live metrics", lambda: self.tracker.trials.log_metrics(run_id, metrics))

    def study_progress(self, *, step: int, complete: int, pruned: int, best: float | None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric("trials_complete", float(complete), now, step),
            Metric("trials_pruned", float(pruned), now, step),
        ]
        if best is not None:
            metrics.append(Metric("best_value", float(best), now, step))
        self.tracker.attempt(
            "study progress", lambda: self.tracker.trials.log_metrics(self.tracker.parent_run_id, metrics)
        )
