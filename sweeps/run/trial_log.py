"""Where a finished trial goes, in one place: its MLflow run (summary metrics, one learning curve, its config and
every seed's curves as artifacts), the live metrics the MLflow UI shows while the sweep runs, the progress bar, and
this process's counts for the summary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from dqn_core.results import TrainResult
from sweeps.run.options import SweepOptions
from sweeps.run.session import finished_count
from sweeps.study.existing import best_trial
from sweeps.study.objective import TrialRun
from sweeps.study.schema import CURVES_FILE, TRIAL_RUN_ID, TRIAL_TRACKING_TAGS
from sweeps.tracking import artifacts
from sweeps.tracking.live_metrics import LiveProgress
from sweeps.tracking.tags import TAG_PRUNER, TAG_SAMPLER, TAG_STATE, TAG_STUDY
from sweeps.tracking.tracker import StudyTracker, summary_metrics

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class TrialLog:
    """This process's record of its trials: what it logs and shows as each seed and trial finishes."""

    def __init__(self, options: SweepOptions, study: optuna.Study, tracker: StudyTracker) -> None:
        self.options = options
        self.study = study
        self.tracker = tracker
        self.live = LiveProgress(tracker)
        self.progress = _progress(options, finished_count(study))
        self.new_trials = 0
        self.trial_seconds = 0.0  # summed wall time of the trials finished in this run
        self.seed_runs = 0
        self.env_steps = 0
        self.seeds_per_trial: dict[int, int] = {}

    def open_run(self, run: TrialRun) -> None:
        """The trial's MLflow run, RUNNING from its start (none while tracking is down: `sync` makes it later)."""
        settings, trial, tracker = self.options.study, run.trial, self.tracker
        tags = {TAG_SAMPLER: settings.sampler, TAG_PRUNER: settings.pruner}
        trial.set_user_attr(TRIAL_TRACKING_TAGS, tags)
        searched = [p.name for p in self.options.sweep.space]
        run.run_id = tracker.attempt(
            f"starting trial {trial.number}",
            lambda: tracker.trials.start(
                trial.number,
                run.config.to_dict(),
                searched,
                self.options.seeds,
                tags={TAG_STUDY: self.options.study_name, **tags},
            ),
        )
        if run.run_id is None:
            return
        try:
            trial.set_user_attr(TRIAL_RUN_ID, run.run_id)
        except BaseException:  # a full journal or a stop: the run exists, its trial never knew it; close it here
            run_id = run.run_id
            self.tracker.attempt(
                f"closing trial {trial.number}'s run", lambda: self.tracker.trials.finish(run_id, "FAIL"), force=True
            )
            raise

    def seed_done(self, run: TrialRun, seed: int, result: TrainResult) -> None:
        self.seed_runs += 1
        self.env_steps += result.total_env_steps
        self.live.seed_done(run.run_id, seed, run.values, trial_over=run.state != TrialState.RUNNING)

    def trial_done(self, run: TrialRun, status_override: str | None = None) -> None:
        """`status_override`: the MLflow state when it is not the trial's own (KILLED after a stop, FAIL after a
        store failure)."""
        self.tracker.attempt(f"trial {run.number}", lambda: _log_trial(self.tracker, run, status_override))
        if run.state not in FINISHED:
            return
        self.new_trials += 1
        self.trial_seconds += run.wall_time_s
        self.seeds_per_trial[run.number] = len(run.values)
        trials = self.study.get_trials(deepcopy=False)  # every worker's: one read for the bar and MLflow
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        self.progress.n = min(complete + pruned, self.options.study.n_trials)
        best = best_trial(self.study)
        best_value = best.value if best else None
        self.progress.set_postfix_str(f"best={best_value:g}" if best_value is not None else "", refresh=True)
        self.live.study_progress(step=complete + pruned, complete=complete, pruned=pruned, best=best_value)

    def flush(self) -> None:
        self.live.flush()

    def note(self, text: str) -> None:
        """One line on stderr that does not break the progress bar."""
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        """Ends the progress bar (a line printed after it must not land inside it); safe to call again."""
        self.progress.close()


def _log_trial(tracker: StudyTracker, run: TrialRun, status_override: str | None) -> None:
    """Log a finished trial to its run; a failure half-way (an artifact path too long, a full disk) closes the run
    as FAILED instead of leaving it RUNNING, and reaches the user as the one warning line of `attempt`."""
    if run.run_id is None:
        return
    try:
        _log_trial_run(tracker, run, status_override)
    except Exception:
        tracker.trials.abandon(run.run_id)
        raise


def _log_trial_run(tracker: StudyTracker, run: TrialRun, status_override: str | None) -> None:
    # Every seed's per-episode curves go to one CSV artifact; complete trials (the ones worth a chart) also get
    # one learning curve as a metric history for MLflow's charts: the median steps over the seeds still playing.
    curves = (
        {"steps_median": median_curve([c.steps for c in run.curves.values()])}
        if run.state == TrialState.COMPLETE
        else {}
    )
    summary = summary_metrics(
        value=run.value,
        per_seed=run.per_seed,
        extra={
            "wall_time_s": run.wall_time_s,
            "env_steps": float(run.env_steps),
            "episodes": float(max((len(c.steps) for c in run.curves.values()), default=0)),
            "seeds": float(len(run.values)),
        },
    )
    state = status_override or run.state.name
    tracker.trials.log_curves(run.run_id, curves, summary, tags={TAG_STATE: state})
    files: dict[str, Callable[[Path], Any]] = {
        "config.yaml": lambda p: artifacts.write_config_yaml(p, run.config.to_dict(), sorted(run.values)),
        CURVES_FILE: lambda p: artifacts.write_curves_csv(p, run.curves),
    }
    tracker.trials.log_files(run.run_id, files)
    tracker.trials.finish(run.run_id, state, tagged=True)


def median_curve(per_seed: list[list[int]]) -> list[float]:
    """Per episode, the median steps over the seeds that played that episode (solved seeds stop early)."""
    length = max((len(steps) for steps in per_seed), default=0)
    return [float(np.median([steps[e] for steps in per_seed if len(steps) > e])) for e in range(length)]


def _progress(options: SweepOptions, already: int):
    from tqdm import tqdm

    return tqdm(
        total=options.study.n_trials,
        initial=min(already, options.study.n_trials),
        desc=options.study_name,
        unit="trial",
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )
