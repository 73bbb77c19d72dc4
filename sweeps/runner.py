"""Run a sweep: create or resume the Optuna study, ask trials in batches, train, tell, track, show progress.

`--n-trials` is the total number of finished (complete or pruned) trials the study should hold: running the same
command again resumes the study and runs only the missing trials. Failed trials (an interrupt, say) do not count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dqn_core.agent import TrainedAgent
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from sweeps import artifacts
from sweeps.objective import TrialRun, fail_unfinished, run_batch
from sweeps.space import SweepFile
from sweeps.stores import open_optuna_storage, redact
from sweeps.strategies import PRUNERS, SAMPLERS, make_pruner, make_sampler
from sweeps.tracking import TAG_PRUNER, TAG_SAMPLER, TAG_STORAGE, TAG_STUDY, StudyTracker

ATTR_BASE_CONFIG = "base_config"
ATTR_SEEDS = "seeds"
ATTR_SWEEP_HASH = "sweep_hash"
ATTR_COMMAND = "command_line"
TAG_AGENT_LOGGED = "dqn_sweep.best_agent_logged"


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    sweep: SweepFile
    study_name: str
    n_trials: int
    n_seeds: int
    trials_per_batch: int
    sampler: str
    pruner: str
    seed: int | None
    storage: str
    tracking_uri: str
    progress: bool = True
    command_line: str = ""

    def __post_init__(self) -> None:
        for name in ("n_trials", "n_seeds", "trials_per_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler '{self.sampler}' (choose from {', '.join(SAMPLERS)})")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner '{self.pruner}' (choose from {', '.join(PRUNERS)})")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if not self.study_name.strip():
            raise ConfigError("study name must not be empty")

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every trial trains on the same seeds (common random numbers make trials comparable)."""
        return tuple(range(self.n_seeds))


@dataclass
class SweepSummary:
    study_name: str
    counts: dict[str, int]
    new_trials: int
    seconds: float
    tracking_seconds: dict[str, float]
    trial_seconds: float  # summed wall time of the trials finished in this run
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    experiment_id: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


def sweep_hash(sweep: SweepFile, seeds: tuple[int, ...]) -> str:
    """What must not change when a study is resumed: the base config, the space, the seeds."""
    payload = {"base": sweep.base.to_dict(), "space": [repr(p) for p in sweep.space], "seeds": list(seeds)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def open_study(options: SweepOptions) -> optuna.Study:
    """Create the study, or load it when it exists and was made from the same sweep (else a ConfigError)."""
    storage = open_optuna_storage(options.storage)
    sampler = make_sampler(options.sampler, seed=options.seed, space=options.sweep.space)
    expected = sweep_hash(options.sweep, options.seeds)
    try:
        existing = optuna.load_study(study_name=options.study_name, storage=storage, sampler=sampler)
    except KeyError:
        existing = None
    except Exception as exc:
        raise ConfigError(f"cannot read study '{options.study_name}': {exc}") from None
    if existing is not None:
        found = existing.user_attrs.get(ATTR_SWEEP_HASH)
        if found != expected:
            raise ConfigError(
                f"study '{options.study_name}' was created from a different sweep config or seed count; "
                "use another --study-name (nothing was changed)"
            )
        existing.pruner = make_pruner(options.pruner)
        return existing
    study = optuna.create_study(
        storage=storage,
        study_name=options.study_name,
        sampler=sampler,
        pruner=make_pruner(options.pruner),
        direction="minimize",
    )
    study.set_user_attr(ATTR_SWEEP_HASH, expected)
    study.set_user_attr(ATTR_BASE_CONFIG, options.sweep.base.to_dict())
    study.set_user_attr(ATTR_SEEDS, list(options.seeds))
    study.set_user_attr(ATTR_COMMAND, options.command_line)
    study.set_user_attr("sweep_file", options.sweep.path)
    book = TrainConfig()
    baseline = {p.name: getattr(book, p.name) for p in options.sweep.space if p.contains(getattr(book, p.name))}
    study.enqueue_trial(baseline, user_attrs={"baseline": "book"})
    return study


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_sweep(options: SweepOptions) -> SweepSummary:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    study = open_study(options)
    tracker = StudyTracker(
        options.tracking_uri,
        options.study_name,
        tags={
            TAG_STUDY: options.study_name,
            TAG_SAMPLER: options.sampler,
            TAG_PRUNER: options.pruner,
            TAG_STORAGE: redact(options.storage),
        },
        searched=[p.name for p in options.sweep.space],
    )
    started = time.perf_counter()
    already = finished_count(study)
    batch_rows = _largest_batch(options.sweep)
    progress = _progress(options, already)
    new_trials, failures, interrupted, trial_seconds = 0, 0, False, 0.0
    runs: list[TrialRun] = []

    def on_trial_done(run: TrialRun, status_override: str | None = None) -> None:
        nonlocal new_trials, trial_seconds
        _log_trial(tracker, run, options, status_override)
        if run.state in ("COMPLETE", "PRUNED"):
            new_trials += 1
            trial_seconds += run.wall_time_s
            progress.update(1)
            best = _best_value(study)
            if best is not None:
                progress.set_postfix_str(f"best={best:g}")

    stop = _StopRequest()
    try:
        while finished_count(study) < options.n_trials:
            stop.check()
            wanted = min(options.trials_per_batch, options.n_trials - finished_count(study))
            runs = _ask_batch(study, options, tracker, wanted)
            if not runs:
                failures += wanted
                if failures > 2 * options.n_trials + 10:
                    raise ConfigError("too many sampled configurations were invalid; check the search space")
                continue
            run_batch(study, runs, on_trial_done=on_trial_done, batch_rows=batch_rows, check_stop=stop.check)
        notes = _log_best_agent(study, tracker, options)
        tracker.finish_study("FINISHED")
    except KeyboardInterrupt:
        interrupted = True
        previous = _set_sigint(signal.SIG_IGN)  # a further Ctrl-C must not cut the cleanup short
        try:
            fail_unfinished(study, runs, lambda run: on_trial_done(run, "KILLED"))
            for run in runs:  # a forced stop can land while a finished trial was being logged
                if run.run_id and not run.closed:
                    tracker.finish_trial(run.run_id, run.state)
            tracker.finish_study("KILLED")
        finally:
            _set_sigint(previous)
        notes = []
    finally:
        stop.release()
        progress.close()
    counts = {state.name: len(study.get_trials(deepcopy=False, states=(state,))) for state in _COUNTED}
    best_trial = _best_trial(study)
    return SweepSummary(
        study_name=options.study_name,
        counts=counts,
        new_trials=new_trials,
        seconds=time.perf_counter() - started,
        tracking_seconds=dict(tracker.seconds),
        trial_seconds=trial_seconds,
        best_number=best_trial.number if best_trial else None,
        best_value=best_trial.value if best_trial else None,
        best_params=dict(best_trial.params) if best_trial else {},
        experiment_id=tracker.experiment_id,
        interrupted=interrupted,
        notes=notes,
    )


class _StopRequest:
    """Ctrl-C asks the sweep to stop at the next safe point (no store write under way); a second one forces it.

    An interrupt in the middle of an SQLite transaction left the MLflow store locked for the cleanup that followed.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous = _set_sigint(self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping at the next safe point (Ctrl-C again to force) ...", file=sys.stderr, flush=True)

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def release(self) -> None:
        _set_sigint(self.previous)


def _set_sigint(handler: Any) -> Any:
    """Install a SIGINT handler where Python allows it (the main thread); returns the previous one."""
    if handler is None:
        return None
    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        return None


_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


def _ask_batch(study: optuna.Study, options: SweepOptions, tracker: StudyTracker, wanted: int) -> list[TrialRun]:
    runs = []
    searched = [p.name for p in options.sweep.space]
    for _ in range(wanted):
        trial = study.ask()
        params = {spec.name: spec.suggest(trial) for spec in options.sweep.space}
        try:
            config = options.sweep.config_for(params)
        except ConfigError as exc:
            trial.set_user_attr("fail_reason", str(exc))
            study.tell(trial, state=TrialState.FAIL)
            continue
        run = TrialRun(trial=trial, config=config, seeds=options.seeds)
        run.run_id = tracker.start_trial(
            trial.number,
            config.to_dict(),
            searched,
            options.seeds,
            tags={TAG_STUDY: options.study_name, TAG_SAMPLER: options.sampler, TAG_PRUNER: options.pruner},
        )
        trial.set_user_attr("mlflow_run_id", run.run_id)
        runs.append(run)
    return runs


def _log_trial(tracker: StudyTracker, run: TrialRun, options: SweepOptions, status_override: str | None) -> None:
    if run.run_id is None:
        return
    curves: dict[str, list[float]] = {}
    for seed, curve in run.curves.items():
        curves[f"seed_{seed}/steps"] = curve.steps
        curves[f"seed_{seed}/epsilon"] = curve.epsilon
        curves[f"seed_{seed}/loss"] = curve.loss
    summary: dict[str, float] = {
        "wall_time_s": run.wall_time_s,
        "env_steps": float(run.env_steps),
        "episodes": float(max((len(c.steps) for c in run.curves.values()), default=0)),
    }
    if run.value is not None:
        summary["episodes_to_solve"] = run.value
    if run.state == "COMPLETE":
        summary.update({f"seed_{s}/episodes_to_solve": v for s, v in zip(run.seeds, run.per_seed, strict=True)})
    else:
        summary.update({f"seed_{s}/lower_bound": c.bound for s, c in run.curves.items()})
    tracker.log_curves(run.run_id, curves, summary)
    if any(c.steps for c in run.curves.values()):
        title = f"{options.study_name} trial {run.number} ({run.state.lower()})"
        tracker.log_files(
            run.run_id,
            {
                "config.yaml": lambda p: artifacts.write_config_yaml(p, run.config.to_dict(), run.seeds),
                "learning_curve.png": lambda p: artifacts.write_learning_curve(
                    p,
                    {s: c.steps for s, c in run.curves.items()},
                    threshold=run.config.success_threshold,
                    title=title,
                ),
            },
        )
    tracker.finish_trial(run.run_id, status_override or run.state)
    run.closed = True


def representative_seed(trial: optuna.trial.FrozenTrial) -> int:
    """The seed whose value is the trial's median: its agent is the one worth watching."""
    per_seed = {int(k): v for k, v in trial.user_attrs.get("episodes_to_solve_per_seed", {}).items()}
    if not per_seed:
        return 0
    ordered = sorted(per_seed, key=lambda s: (per_seed[s], s))
    return ordered[(len(ordered) - 1) // 2]


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> TrainConfig:
    base = TrainConfig.from_mapping(study.user_attrs[ATTR_BASE_CONFIG], source=f"study {study.study_name}")
    return base.replace(**trial.params)


def retrain_agent(study: optuna.Study, trial: optuna.trial.FrozenTrial, seed: int) -> tuple[TrainedAgent, int | None]:
    """Re-train one seed of a trial alone; bit-identical to its run inside the sweep's population."""
    from dqn_core.trainer import train

    result = train(trial_config(study, trial), seed=seed)
    return result.agent(), result.episodes_to_solve


def write_replay(
    study: optuna.Study, tracker: StudyTracker, trial: optuna.trial.FrozenTrial, out: Path, *, log_agent: bool
) -> tuple[Path, int, str]:
    """Re-train the trial's representative seed, render a GIF to `out`, log both to the trial's run."""
    seed = representative_seed(trial)
    agent, solved_at = retrain_agent(study, trial, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = artifacts.write_episode_gif(out, agent, seed=seed)
    expected = trial.user_attrs.get("episodes_to_solve_per_seed", {}).get(str(seed))
    note = ""
    if expected is not None and solved_at is not None and solved_at != expected:
        note = f"warning: re-training seed {seed} solved at {solved_at}, the sweep recorded {expected}"
    run_id = trial.user_attrs.get("mlflow_run_id")
    if run_id:
        files: dict[str, Callable[[Path], Any]] = {
            "greedy_episode.gif": lambda p: p.write_bytes(out.read_bytes()),
        }
        if log_agent:
            files[f"agent_seed{seed}.npz"] = agent.save
        tracker.log_files(run_id, files, purpose="best")
        tracker.client.set_tag(run_id, TAG_AGENT_LOGGED, "true")
    return out, steps, note


def _log_best_agent(study: optuna.Study, tracker: StudyTracker, options: SweepOptions) -> list[str]:
    best = _best_trial(study)
    if best is None:
        return ["no trial completed, so no best agent was saved"]
    run_id = best.user_attrs.get("mlflow_run_id")
    if run_id and tracker.client.get_run(run_id).data.tags.get(TAG_AGENT_LOGGED) == "true":
        return []
    with tempfile.TemporaryDirectory() as folder:
        _, steps, note = write_replay(study, tracker, best, Path(folder) / "greedy_episode.gif", log_agent=True)
    notes = [f"best trial {best.number}: agent and a {steps}-step greedy episode GIF logged to MLflow"]
    return notes + ([note] if note else [])


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def _best_value(study: optuna.Study) -> float | None:
    best = _best_trial(study)
    return best.value if best else None


def _largest_batch(sweep: SweepFile) -> int:
    sizes = [sweep.base.batch_size]
    for spec in sweep.space:
        if spec.name == "batch_size":
            sizes += [int(c) for c in spec.choices] if spec.kind == "categorical" else [int(spec.high)]
    return max(sizes)


def _progress(options: SweepOptions, already: int):
    from tqdm import tqdm

    return tqdm(
        total=options.n_trials,
        initial=min(already, options.n_trials),
        desc=options.study_name,
        unit="trial",
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v or k in ("COMPLETE", "PRUNED"))


def trials_per_minute(n: int, seconds: float) -> float:
    return n / seconds * 60 if seconds > 0 else 0.0
