"""Access to existing studies for `best`, `replay`, `worker`, `repair` and `sync`: never creates a store or a study."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from dqn_core.errors import ConfigError
from sweeps.stores.locations import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    open_optuna_storage,
    storage_url,
    tracking_uri,
)
from sweeps.stores.preflight import probe_storage
from sweeps.study.schema import TRIAL_CENSORED, TRIAL_RUN_ID, per_seed_values
from sweeps.study.verdict_record import Verdict


def load_existing_study(
    name: str | None,
    storage: str | None,
    tracking: str | None,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    writable: bool = False,
) -> optuna.Study:
    """The named study (or the only one in the storage); a missing store or study is a ConfigError."""
    url = storage_url(storage, tracking_uri(tracking))
    probe_storage(url, writable=writable, must_exist=True)  # read-only: a store that is not there stays so
    backend = open_optuna_storage(
        url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, writable=writable
    )
    names = [s.study_name for s in optuna.get_all_study_summaries(backend, include_best_trial=False)]
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise ConfigError(f"--study-name is required: the storage holds {len(names)} studies ({listed})")
        name = names[0]
    if name not in names:
        raise ConfigError(f"unknown study '{name}' (the storage holds: {', '.join(names) or 'no studies'})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=backend)


def find_trial(study: optuna.Study, *, number: int | None, run_id: str | None) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if (number is not None and trial.number == number) or (
            run_id is not None and trial.user_attrs.get(TRIAL_RUN_ID) == run_id
        ):
            if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
                raise ConfigError(
                    f"trial {trial.number} of '{study.study_name}' is {trial.state.name}; nothing to replay"
                )
            return trial
    what = f"trial {number}" if number is not None else f"trial with MLflow run id {run_id}"
    raise ConfigError(f"study '{study.study_name}' has no {what} ({len(trials)} trials)")


def ranked_complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best first (lower value; ties to the earlier trial): the one ordering every command uses."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return sorted(complete, key=lambda t: (t.value, t.number))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    ranked = ranked_complete_trials(study)
    return ranked[0] if ranked else None


def best_summary(study: optuna.Study) -> dict[str, Any]:
    """The best complete trial as plain data (`best --format json`, and the rows of `best_table`): what a script
    reads without parsing the table."""
    best = best_trial(study)
    if best is None:
        raise ConfigError(f"study '{study.study_name}' has no complete trial yet")
    verdict = Verdict.of_study(study)
    return {
        "study": study.study_name,
        "trial": best.number,
        "value": best.value,
        "per_seed": {str(seed): value for seed, value in sorted(per_seed_values(best).items())},
        "censored": bool(best.user_attrs.get(TRIAL_CENSORED, False)),
        "mlflow_run_id": best.user_attrs.get(TRIAL_RUN_ID),
        "verdict": (verdict.line or "") if verdict and verdict.winner_trial == best.number else None,
        "params": dict(best.params),
    }


def best_table(study: optuna.Study) -> str:
    summary = best_summary(study)
    per_seed = summary["per_seed"]
    rows = [
        ("study", summary["study"]),
        ("best trial", str(summary["trial"])),
        (f"episodes to solve (median of {len(per_seed)} seeds)", f"{summary['value']:g}"),
        ("per seed", ", ".join(f"{s}: {v}" for s, v in per_seed.items())),
        ("censored", str(summary["censored"])),
        ("MLflow run", summary["mlflow_run_id"] or "-"),
    ]
    if summary["verdict"] is not None:
        rows.append(("verdict", summary["verdict"]))
    rows += [
        (name, f"{value:.6g}" if isinstance(value, float) else str(value)) for name, value in summary["params"].items()
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
