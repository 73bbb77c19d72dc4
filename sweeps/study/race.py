"""The sweep's work source: which (trial, seed) a free slot of the streaming population trains next.

Seeds are the budget. A free slot takes, in this order:
1. the next seed of a running trial, the trial furthest along first (intensification: the trials the pruner has
   not stopped earn seeds, as SMAC and irace race their candidates). A trial has at most `seeds_in_flight` seeds
   training at once, so its early results reach the pruner before all its seeds are spent. Racing needs a
   reference: until some trial is complete, a trial gets no seed beyond its `startup_seeds` (poor configurations
   fail fast in CartPole, so they would otherwise spend every seed before the pruner had anything to compare
   with). The book baseline is exempt from both limits, since every comparison waits for it. Before a trial gets
   another seed, the pruner is asked again (a reference may have appeared since its last report);
2. otherwise a new trial from the sampler (TPE treats running trials as constant liars);
3. once the study's trial budget is handed out, any seed left of a running trial (the in-flight cap no longer
   applies), so the slots stay full to the end.
When none of these is left the source is dry and the stream drains; when the only seeds left wait for a
reference, the source answers WAIT until one exists (or until nothing of this process trains any more).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from dqn_core.results import EpisodeStats, TrainResult
from dqn_core.shape import WorkItem
from dqn_core.stream import Supply
from sweeps.study.objective import TrialDone, TrialRun, conclude, pruner_outcome, seed_finished

REFERENCE_POLL_S = 5.0
AskTrial = Callable[[], "TrialRun | None"]
"""Asks the study for one more trial within its budget (None: the budget is handed out, or nothing is left)."""


class SeedRace:
    def __init__(
        self,
        study: optuna.Study,
        *,
        ask: AskTrial,
        seeds_in_flight: int,
        startup_seeds: int,
        racing: bool,
        on_trial_done: TrialDone,
        check_stop: Callable[[], None],
    ) -> None:
        self.study = study
        self.ask = ask
        self.seeds_in_flight = seeds_in_flight
        self.startup_seeds = startup_seeds
        self.racing = racing  # a pruner compares trials: the reference rule applies
        self.on_trial_done = on_trial_done
        self.check_stop = check_stop
        self.runs: list[TrialRun] = []  # every trial this process started, in order
        self._budget_spent = False
        self._reference = False
        self._reference_checked = -math.inf

    def open_stream(self) -> None:
        """A new stream asks the study again: trials of dead workers may have come back since the last one."""
        self._budget_spent = False

    def next_item(self) -> WorkItem | Supply:
        """The stream's source: called whenever a slot is free at a host visit."""
        self.check_stop()
        run = self._pick(capped=True)
        if run is None and not self._budget_spent:
            run = self.ask()
            if run is None:
                self._budget_spent = True
            else:
                self.runs.append(run)
        if run is None:
            run = self._pick(capped=False)
        if run is None and any(r.seeds_left for r in self.runs):  # only seeds that wait for a reference
            if any(r.in_flight for r in self.runs):
                return Supply.WAIT
            run = self._pick(capped=False, waiting=True)  # nothing else trains: go on without one
        if run is None:
            return Supply.DONE
        seed = run.take_seed()
        return WorkItem(run.config, seed, tag=(run, seed))

    def _pick(self, *, capped: bool, waiting: bool = False) -> TrialRun | None:
        while True:
            open_runs = [r for r in self.runs if r.seeds_left > 0]
            if capped:
                open_runs = [r for r in open_runs if r.baseline or len(r.in_flight) < self.seeds_in_flight]
            if not waiting:
                open_runs = [r for r in open_runs if not self._waits_for_reference(r)]
            if not open_runs:
                return None
            run = max(open_runs, key=lambda r: (len(r.values) + len(r.in_flight), -r.number))
            if run.baseline or not run.values or not self._settle(run, pruner_outcome(run)):
                return run

    def _waits_for_reference(self, run: TrialRun) -> bool:
        if not self.racing or run.baseline or len(run.curves) < self.startup_seeds:
            return False
        return not self._has_reference()

    def _has_reference(self) -> bool:
        """Whether the study holds a complete trial (looked up at most every few seconds: other workers')."""
        if self._reference or any(r.state == TrialState.COMPLETE for r in self.runs):
            self._reference = True
        elif time.monotonic() - self._reference_checked > REFERENCE_POLL_S:
            self._reference_checked = time.monotonic()
            self._reference = bool(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        return self._reference

    def on_episode(self, item: WorkItem, stats: EpisodeStats) -> bool:
        """Record the episode; stop the seed once its trial is over or its value can no longer change."""
        self.check_stop()
        run, seed = item.tag
        if run.state != TrialState.RUNNING:
            return False
        return run.curves[seed].record(stats, run.config)

    def on_done(self, item: WorkItem, result: TrainResult) -> None:
        run, seed = item.tag
        self._settle(run, seed_finished(run, seed))

    def _settle(self, run: TrialRun, outcome: TrialState | None) -> bool:
        """Dispatch a trial's outcome, from its last seed or the pruner: tell it, then hand the run to the trial
        log. False when the trial goes on."""
        if outcome is None:
            return False
        conclude(self.study, run, outcome)
        self.on_trial_done(run)
        return True
