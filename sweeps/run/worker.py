"""The loop of one process's share of a study: ask a trial under the study's lock, prepare it (sample, open its MLflow
run), and race its seeds through one streaming population until the study holds its budget.

`--n-trials` is the total number of finished (complete or pruned) trials the study should hold: running the same
command again resumes the study and runs only the missing trials. Failed trials (an interrupt, say) do not count.
Any number of processes may run one study: each counts finished + running trials and asks new ones under a
per-study lock (`stores/budget.py`), beats for its running trials, and fails and re-queues the trials of dead
workers (`stores/heartbeats.py`). Opening the study (`session.py`), logging trials (`trial_log.py`) and stopping
(`shutdown.py`) are other units'; `sweep.py` puts them together.
"""

from __future__ import annotations

import math
import time
import warnings

import optuna
from optuna.trial import TrialState

from dqn_core.errors import ConfigError
from dqn_core.results import TrainResult
from dqn_core.shape import WorkItem
from sweeps.run.options import SweepOptions
from sweeps.run.session import Session, committed_count, finished_count, worker_name
from sweeps.run.shutdown import StopRequest, close_after_store_failure
from sweeps.run.trial_log import TrialLog
from sweeps.stores.budget import budget_lock
from sweeps.stores.heartbeats import Heartbeats, fail_stale_trials
from sweeps.stores.optuna_adapter import grid_points_started, trial_id
from sweeps.study.objective import TrialRun, fail_unfinished
from sweeps.study.race import SeedRace
from sweeps.study.schema import BOOK, TRIAL_BASELINE, TRIAL_FAIL_REASON, TRIAL_WORKER

IDLE_POLL_S = 5.0  # a worker with nothing to ask (the rest is running elsewhere) looks again this often


class Deadline:
    """`--timeout`: no new trial is asked after it; the trials running then finish and the stream drains."""

    def __init__(self, timeout_s: float | None) -> None:
        self.at = None if timeout_s is None else time.monotonic() + timeout_s
        self.stopped_asking = False  # an ask was refused because of it

    def refuses_ask(self) -> bool:
        if self.at is not None and time.monotonic() >= self.at:
            self.stopped_asking = True
        return self.stopped_asking


class SweepWorker:
    """Asks, prepares and trains; a finished trial goes to the trial log. Owns the race, the heartbeats of its
    running trials and the deadline."""

    def __init__(self, options: SweepOptions, session: Session, log: TrialLog, stop: StopRequest) -> None:
        self.options = options
        self.settings = options.study
        self.storage = session.storage
        self.study = session.study
        self.tracker = session.tracker
        self.log = log
        self.stop = stop
        self.heartbeats = Heartbeats(self.storage, options.heartbeat_interval)
        self.deadline = Deadline(options.timeout_s)
        self._waiting_for = 0  # trials of other processes this worker last said it waits for
        self.race = SeedRace(
            self.study,
            ask=self._ask,
            seeds_in_flight=self.settings.seeds_in_flight,
            startup_seeds=self.settings.startup_seeds,
            racing=self.settings.pruner != "none",
            on_trial_done=self.on_trial_done,
            check_stop=stop.check,
        )
        self.failures = 0

    def train(self) -> list[str]:
        """Stream until the study holds its budget; between streams (the source ran dry while trials of other
        workers still run) look again now and then, since a dead worker's trial comes back as a retry. Returns
        notes on why it ended early (a used-up grid, the deadline)."""
        from dqn_core.lanes import describe, lane_key
        from dqn_core.stream import StreamError, train_stream

        lanes = self.options.lanes()
        if lanes.merges:
            wanted = len({lane_key(config) for config in self.options.sweep.lane_configs()})
            names = ", ".join(describe(shape) for shape in lanes.shapes)
            self.log.note(
                f"lanes: the search space has {wanted} compute shapes; they train in {len(lanes.shapes)} compiled "
                f"populations ({names}): a config pays for the lane it fits (README: Lanes)"
            )
        notes = []
        with self.heartbeats:
            while finished_count(self.study) < self.settings.n_trials:
                self.stop.check()
                self.race.open_stream()
                try:
                    trained = train_stream(
                        self.race.next_item,
                        shape=lanes.shapes,
                        slots=self.settings.slots,
                        on_episode=self.race.on_episode,
                        on_done=self._on_seed_done,
                    )
                except StreamError as exc:  # a store failure inside a callback: handled as if raised here
                    raise (exc.__cause__ or exc) from None
                if finished_count(self.study) >= self.settings.n_trials:
                    break
                if _grid_used_up(self.study, self.options) and not _running(self.study):
                    notes.append(
                        f"the grid of {_grid_size(self.options)} points is used up: the study holds "
                        f"{finished_count(self.study)} finished trials, fewer than the {self.settings.n_trials} "
                        "asked for"
                    )
                    break
                if self.deadline.stopped_asking:
                    break
                if not trained:
                    self._say_waiting()
                    time.sleep(min(IDLE_POLL_S, self.options.heartbeat_interval))  # the rest runs elsewhere
        if self.deadline.stopped_asking:
            notes.append(
                f"--timeout: stopped asking new trials after {self.options.timeout_s / 60:g} min; the study holds "
                f"{finished_count(self.study)} of {self.settings.n_trials} finished trials (run the same command "
                "again to go on)"
            )
        return notes

    def on_trial_done(self, run: TrialRun, status_override: str | None = None) -> None:
        self.heartbeats.discard(trial_id(run.trial))
        self.log.trial_done(run, status_override)

    def _say_waiting(self) -> None:
        """Once per wait: the budget is handed out and other processes' trials still run; a dead worker's come
        back only after the grace period, which is otherwise a silent pause of minutes."""
        running = len(self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if running and running != self._waiting_for:
            self.log.note(
                f"waiting for {running} trial(s) running in other processes; a trial whose worker died is failed "
                f"and retried once it has had no heartbeat for --grace-period ({self.options.grace_period} s)"
            )
        self._waiting_for = running

    def fail_running(self) -> None:
        """After a stop: the trials still running are FAIL in Optuna and KILLED in MLflow."""
        fail_unfinished(self.study, self.race.runs, lambda run: self.on_trial_done(run, "KILLED"))

    def close_after_store_failure(self) -> None:
        close_after_store_failure(self.study, self.race.runs, self.tracker, self.on_trial_done)

    def _on_seed_done(self, item: WorkItem, result: TrainResult) -> None:
        self.race.on_done(item, result)
        run, seed = item.tag
        self.log.seed_done(run, seed, result)

    def _ask(self) -> TrialRun | None:
        """Under the study's lock: fail dead workers' trials (they are re-queued), then ask one trial if the budget
        allows. The new trial gets its first heartbeat before the lock is released, so no other worker can see it
        silent. Sampled parameters that make an invalid config fail the trial, and the next one is asked."""
        while True:
            if self.deadline.refuses_ask():
                return None
            with budget_lock(self.options.storage, self.storage, self.options.study_name):
                fail_stale_trials(self.study)
                if committed_count(self.study) >= self.settings.n_trials or _grid_used_up(self.study, self.options):
                    return None
                with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat
                    warnings.simplefilter("ignore", UserWarning)
                    trial = self.study.ask()
                self.heartbeats.add(trial_id(trial))
            run = self._prepare(trial)
            if run is not None:
                return run
            self.failures += 1
            if self.failures > 2 * self.settings.n_trials + 10:
                raise ConfigError("too many sampled configurations were invalid; check the search space")

    def _prepare(self, trial: optuna.Trial) -> TrialRun | None:
        """Sample the trial's parameters and open its MLflow run (when tracking is up); an invalid sample FAILs."""
        params = {spec.name: spec.suggest(trial) for spec in self.options.sweep.space}
        try:
            config = self.options.sweep.config_for(params)
        except ConfigError as exc:
            trial.set_user_attr(TRIAL_FAIL_REASON, str(exc))
            self.study.tell(trial, state=TrialState.FAIL)
            self.heartbeats.discard(trial_id(trial))
            return None
        baseline = trial.user_attrs.get(TRIAL_BASELINE) == BOOK
        run = TrialRun(trial=trial, config=config, max_seeds=self.settings.max_seeds, baseline=baseline)
        trial.set_user_attr(TRIAL_WORKER, worker_name())
        self.log.open_run(run)
        return run


def _grid_size(options: SweepOptions) -> int:
    return math.prod(len(spec.grid_values()) for spec in options.sweep.space)


def _grid_used_up(study: optuna.Study, options: SweepOptions) -> bool:
    """The grid sampler has handed out every point and nothing is queued: asking more would repeat a point."""
    if options.study.sampler != "grid":
        return False
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    return len(grid_points_started(study)) >= _grid_size(options)


def _running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
