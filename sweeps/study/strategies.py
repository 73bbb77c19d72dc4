"""Samplers and pruners by name, as the CLI and sweep files spell them.

The objective reports each finished seed's episodes-to-solve at step = seed, so the pruner is Optuna's
WilcoxonPruner: a paired signed-rank test against the best trial over the seeds both have. The earlier `median`
(MedianPruner on a within-episode bound) never fired on a default sweep and `reachable` (a bound on the median over
3 seeds) has no meaning once trials differ in their seed counts; both were retired with seeds as the budget.
"""

from __future__ import annotations

import warnings

import optuna

from dqn_core.errors import ConfigError
from sweeps.stores.extras import require
from sweeps.stores.optuna_adapter import GridSampler
from sweeps.study.schema import PRUNERS, SAMPLERS, StudyOptions
from sweeps.study.space import ParamSpec


def make_sampler(name: str, *, seed: int | None, space: tuple[ParamSpec, ...]) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # constant_liar: trials asked together in one batch see each other as provisional results.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        require("cmaes", "cmaes", what="the cmaes sampler")  # Optuna imports it late: once a trial has completed
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        if not space:
            raise ConfigError("the grid sampler needs a non-empty search_space")
        return GridSampler({p.name: p.grid_values() for p in space}, seed=seed)
    raise ConfigError(f"unknown sampler '{name}' (choose from {', '.join(SAMPLERS)})")


def make_pruner(settings: StudyOptions) -> optuna.pruners.BasePruner:
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    if settings.pruner == "wilcoxon":
        with warnings.catch_warnings():  # "WilcoxonPruner is experimental": it is what this tool races with
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(
                p_threshold=settings.p_threshold, n_startup_steps=settings.startup_seeds
            )
    raise ConfigError(f"unknown pruner '{settings.pruner}' (choose from {', '.join(PRUNERS)})")
