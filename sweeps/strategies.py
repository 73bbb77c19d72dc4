"""Samplers and pruners by name, as the CLI and sweep files spell them.

Intermediate values reported by the objective are lower bounds on the final objective (see `objective.py`), so a
trial whose bound already reaches the best finished value can never win: `ReachablePruner` stops it there.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from dqn_core.errors import ConfigError
from sweeps.optuna_adapter import GridSampler
from sweeps.space import ParamSpec

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "grid")
PRUNERS = ("none", "median", "reachable")


class ReachablePruner(optuna.pruners.BasePruner):
    """Prune once a trial's best still-reachable value cannot beat the best finished trial (minimisation).

    The objective reports, per episode, the median over seeds of "episodes so far + successes still needed" (or
    the episode of solving); the final value can only be greater or equal. Unlike the median rule this never
    prunes a trial that could still become the best; it only saves the episodes that cannot matter.
    """

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in complete if t.value is not None]
        return bool(values) and trial.intermediate_values[step] >= min(values)


def make_sampler(name: str, *, seed: int | None, space: tuple[ParamSpec, ...]) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # constant_liar: trials asked together in one batch see each other as provisional results.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        if not space:
            raise ConfigError("the grid sampler needs a non-empty search_space")
        return GridSampler({p.name: p.grid_values() for p in space}, seed=seed)
    raise ConfigError(f"unknown sampler '{name}' (choose from {', '.join(SAMPLERS)})")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        # Wait for a few finished trials and episodes: early episodes are mostly exploration noise.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
    if name == "reachable":
        return ReachablePruner()
    raise ConfigError(f"unknown pruner '{name}' (choose from {', '.join(PRUNERS)})")
