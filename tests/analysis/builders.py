"""Real Optuna studies and MLflow stores in the shape a racing sweep records them, built without training.

Trials are added with `optuna.trial.create_trial` (params with their distributions, one intermediate value per
seed, the user attributes of `sweeps.study.schema`), so the analysis reads exactly what a sweep would have written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweeps.stores.locations import open_optuna_storage
from sweeps.study.schema import (
    ATTR_BASE_CONFIG,
    ATTR_SEEDS,
    BOOK,
    HELD_OUT_SEED_START,
    TRIAL_BASELINE,
    TRIAL_CENSORED,
    TRIAL_LOWER_BOUNDS,
    TRIAL_PER_SEED,
)
from sweeps.study.stats import aggregate
from sweeps.tracking.tags import TAG_ROLE, TAG_STUDY

MAX_SEEDS = 16
MAX_EPISODES = 500
DISTRIBUTIONS = {  # the default search space's kinds: linear and log-scale floats and ints, categoricals
    "gamma": FloatDistribution(0.9, 0.999),
    "batch_size": CategoricalDistribution([16, 32, 64]),
    "epsilon_decay_rate": FloatDistribution(0.0002, 0.005, log=True),
    "learning_rate": FloatDistribution(0.0003, 0.003, log=True),
    "epsilon_decay_steps": IntDistribution(1000, 10000, log=True),
    "epsilon_schedule": CategoricalDistribution(["exponential", "linear"]),
    "target_refresh_episodes": IntDistribution(1, 4),
    "warmup": IntDistribution(0, 20),
}


def add_trial(
    study: optuna.Study,
    values: Sequence[float],
    *,
    state: TrialState = TrialState.COMPLETE,
    params: Mapping[str, object] | None = None,
    book: bool = False,
    old_lower_bounds: bool = False,
) -> None:
    """One finished trial with `values[i]` as seed i's episodes to solve (a prefix of the seeds when pruned)."""
    params = dict(params or {"gamma": 0.95, "batch_size": 32})
    per_seed = {str(seed): float(v) for seed, v in enumerate(values)}
    attrs: dict[str, object] = {TRIAL_CENSORED: any(v > MAX_EPISODES for v in values)}
    attrs[TRIAL_LOWER_BOUNDS if old_lower_bounds else TRIAL_PER_SEED] = per_seed
    if book:
        attrs[TRIAL_BASELINE] = BOOK
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=aggregate(values) if state == TrialState.COMPLETE else None,
            params=params,
            distributions={name: DISTRIBUTIONS[name] for name in params},
            user_attrs=attrs,
            intermediate_values={seed: float(v) for seed, v in enumerate(values)},
        )
    )


def racing_study(storage: optuna.storages.BaseStorage | None = None, name: str = "racing") -> optuna.Study:
    """Trial 0 the book; 1 the best (30 episodes faster than the book on every seed); 2 its twin (the same value on
    every seed); 3 slower than the best on every seed; 4-6 pruned after 3, 4 and 6 seeds; 7 pruned in an older
    study (lower bounds only); 8 failed."""
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    study.set_user_attr(ATTR_SEEDS, list(range(MAX_SEEDS)))
    study.set_user_attr(ATTR_BASE_CONFIG, {"env_id": "CartPole-v1", "max_episodes": MAX_EPISODES})
    book = [80.0 + 3 * s for s in range(MAX_SEEDS)]
    add_trial(study, book, params={"gamma": 0.99, "batch_size": 32}, book=True)
    best = [v - 30 for v in book]
    add_trial(study, best, params={"gamma": 0.97, "batch_size": 64})
    add_trial(study, best, params={"gamma": 0.98, "batch_size": 64})
    add_trial(study, [v + 5 + (s % 3) for s, v in enumerate(best)], params={"gamma": 0.96, "batch_size": 16})
    for number, seeds in enumerate((3, 4, 6)):
        add_trial(study, [200.0 + 10 * number + s for s in range(seeds)], state=TrialState.PRUNED)
    add_trial(study, [150.0, 160.0, 170.0], state=TrialState.PRUNED, old_lower_bounds=True)
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    return study


def wide_study(
    storage: optuna.storages.BaseStorage | None = None, name: str = "wide", trials: int = 12
) -> optuna.Study:
    """Every parameter of DISTRIBUTIONS searched (log-scale ones drawn in log space), all trials complete on every
    seed with whole episode counts; trial 0 is the book and its seed 3 never solved (max_episodes + 1)."""
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    study.set_user_attr(ATTR_SEEDS, list(range(MAX_SEEDS)))
    study.set_user_attr(ATTR_BASE_CONFIG, {"env_id": "CartPole-v1", "max_episodes": MAX_EPISODES})
    rng = np.random.default_rng(0)
    for number in range(trials):
        params = {param: _draw(rng, distribution) for param, distribution in DISTRIBUTIONS.items()}
        values = [float(rng.integers(40, 160)) for _ in range(MAX_SEEDS)]
        if number == 0:
            values[3] = MAX_EPISODES + 1
        add_trial(study, values, params=params, book=number == 0)
    return study


def _draw(rng: np.random.Generator, distribution: optuna.distributions.BaseDistribution) -> object:
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[int(rng.integers(len(distribution.choices)))]
    low, high = distribution.low, distribution.high
    value = float(np.exp(rng.uniform(np.log(low), np.log(high))) if distribution.log else rng.uniform(low, high))
    return round(value) if isinstance(distribution, IntDistribution) else value


def record_verdict(study: optuna.Study, *, winner: int = 1, seeds: int = 32) -> dict:
    """The study's verdict as `dqn-sweep run` stores it: the winner and the book on unseen seeds."""
    from sweeps.run.verdict import judge

    held_out = list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + seeds))
    winner_values = {s: 50.0 + (s % 7) for s in held_out}
    book_values = {s: 85.0 + (s % 11) for s in held_out}
    verdict = judge(winner, held_out, winner_values, book_values, cap=MAX_EPISODES + 1)
    verdict.store(study)
    return verdict.to_dict()


def journal_study(root: Path, name: str = "racing") -> str:
    """A racing study in a journal file under `root`; returns the `--storage` value that opens it."""
    journal = root / "optuna-journal.log"
    racing_study(open_optuna_storage(f"journal:{journal}"), name=name)
    return f"journal:{journal}"


def mlflow_store(root: Path, study_names: Sequence[str]) -> str:
    """A real SQLite MLflow store with each study's experiment and parent run; returns its tracking URI."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    for name in study_names:
        experiment = client.create_experiment(name)
        run = client.create_run(experiment, run_name=name, tags={TAG_ROLE: "study", TAG_STUDY: name})
        client.set_terminated(run.info.run_id, "FINISHED")
    return uri
