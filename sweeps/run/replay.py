"""The agent worth watching: a trial's median seed re-trained alone (bit-identical to its run in the sweep), its
greedy episode as a GIF, and, for the sweep's best trial, the agent, the GIF and its learning curve in MLflow."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from dqn_core.agent import TrainedAgent
from sweeps.stores.output_paths import StoreFiles, write_output
from sweeps.study.existing import best_trial
from sweeps.study.schema import CURVES_FILE, TRIAL_RUN_ID, per_seed_values, trial_config
from sweeps.tracking import artifacts
from sweeps.tracking.tags import TAG_AGENT_LOGGED
from sweeps.tracking.tracker import StudyTracker


def representative_seed(trial: optuna.trial.FrozenTrial) -> int:
    """The seed whose value is the trial's median: its agent is the one worth watching."""
    per_seed = per_seed_values(trial)
    if not per_seed:
        return 0
    ordered = sorted(per_seed, key=lambda s: (per_seed[s], s))
    return ordered[(len(ordered) - 1) // 2]


def retrain_agent(study: optuna.Study, trial: optuna.trial.FrozenTrial, seed: int) -> tuple[TrainedAgent, int | None]:
    """Re-train one seed of a trial alone; bit-identical to its run inside the sweep's population."""
    from dqn_core.trainer import train

    result = train(trial_config(study, trial), seed=seed)
    return result.agent(), result.episodes_to_solve


def write_replay(
    study: optuna.Study,
    tracker: StudyTracker,
    trial: optuna.trial.FrozenTrial,
    out: Path,
    *,
    log_agent: bool,
    stores: StoreFiles | None = None,
) -> tuple[Path, int, str]:
    """Re-train the trial's representative seed, render a GIF to `out`, log both to the trial's run. An env that
    cannot draw frames (no rgb_array render mode) gets no GIF: its greedy episode is played without one. The GIF
    is written whole and never over one of `stores` (`write_output`: training takes minutes after the check)."""
    seed = representative_seed(trial)
    agent, solved_at = retrain_agent(study, trial, seed)
    renders = agent.config.env.renders
    if renders:
        steps = write_output(
            out, lambda gif: artifacts.write_episode_gif(gif, agent, seed=seed), option="--out", stores=stores
        )
    else:
        steps = agent.play(seed=seed).steps
    expected = per_seed_values(trial).get(seed)
    note = ""
    if expected is not None and solved_at is not None and solved_at != expected:
        note = f"warning: re-training seed {seed} solved at {solved_at}, the sweep recorded {expected}"
    run_id = trial.user_attrs.get(TRIAL_RUN_ID)
    if run_id:
        files: dict[str, Callable[[Path], Any]] = (
            {"greedy_episode.gif": lambda p: p.write_bytes(out.read_bytes())} if renders else {}
        )
        if log_agent:
            files[f"agent_seed{seed}.npz"] = agent.save
        tracker.trials.log_files(run_id, files, purpose="best")
        tracker.trials.tag(run_id, TAG_AGENT_LOGGED, "true")
    return out, steps, note


def log_best_agent(
    study: optuna.Study, tracker: StudyTracker, announce: Callable[[str], None] | None = None
) -> list[str]:
    """The best trial's agent and a GIF, to its run, unless already there (workers ending together may both log).
    `announce` gets one line before the re-training starts: it takes seconds to minutes, and a sweep whose bar
    stood at 100% with nothing said looked hung."""
    best = best_trial(study)
    if best is None:
        return ["no trial completed, so no best agent was saved"]
    run_id = best.user_attrs.get(TRIAL_RUN_ID)
    if run_id is None:
        return [f"best trial {best.number} has no MLflow run (tracking was down); its agent was not logged"]

    def log() -> list[str]:
        if tracker.trials.tag_value(run_id, TAG_AGENT_LOGGED) == "true":
            return []
        if announce is not None:
            announce(
                f"best agent: re-training trial {best.number}'s seed {representative_seed(best)} for its agent, "
                "greedy-episode GIF and learning curve ..."
            )
        with tempfile.TemporaryDirectory() as folder:
            _, steps, note = write_replay(study, tracker, best, Path(folder) / "greedy_episode.gif", log_agent=True)
            _log_learning_curve(study, tracker, best, run_id, Path(folder))
        episode = (
            f"a {steps}-step greedy episode GIF"
            if trial_config(study, best).env.renders
            else f"no GIF ({trial_config(study, best).env_id} draws no rgb_array frames)"
        )
        notes = [f"best trial {best.number}: agent, {episode}, learning curve logged to MLflow"]
        return notes + ([note] if note else [])

    return tracker.attempt("logging the best agent", log) or []


def _log_learning_curve(
    study: optuna.Study, tracker: StudyTracker, best: optuna.trial.FrozenTrial, run_id: str, folder: Path
) -> None:
    """The best trial's learning-curve PNG, drawn from its curves.csv (one picture per sweep: drawing one per trial
    cost ~0.12 s each, most of the tracking budget; every complete trial charts `steps_median` in MLflow)."""
    curves = tracker.trials.download(run_id, CURVES_FILE, folder)
    if curves is None:
        return
    steps = artifacts.read_curve_steps(curves)
    config = trial_config(study, best)
    threshold = config.success_threshold if config.env.return_is_length else None
    title = f"{study.study_name} best trial {best.number}"
    tracker.trials.log_files(
        run_id,
        {"learning_curve.png": lambda p: artifacts.write_learning_curve(p, steps, threshold=threshold, title=title)},
        purpose="best",
    )
