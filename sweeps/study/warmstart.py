"""Carry what one sweep learned into the next: the best configuration as a trainer YAML, and configurations
queued as the first trials of a sweep (after the book), from files or from the top of another study.

A queued configuration is projected onto the new sweep's search space: its value of every searched parameter is
queued; a value outside the space is an error for a file the user wrote, and left to the sampler for a study's
trial (whose space may differ: that is the point of `--from-study`). A file that sets a key the sweep does not
search to another value than the sweep's base config (another network, another env) is an error too: a trial
carries only searched values, so that key would be dropped without a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from dqn_core.config import TrainConfig, load_config
from dqn_core.errors import ConfigError
from dqn_core.yamlfile import read_mapping
from sweeps.study.existing import best_trial, ranked_complete_trials
from sweeps.study.schema import per_seed_values, trial_config
from sweeps.study.space import ParamSpec, SweepFile, sweep_from_mapping
from sweeps.study.verdict_record import Verdict

TRIAL_WARM_START = "warm_start"  # where a queued trial's configuration came from (a file, or study:trial)


@dataclass(frozen=True)
class QueuedConfig:
    params: dict[str, Any]
    origin: str
    left_to_sampler: tuple[str, ...] = ()


def best_config_yaml(study: optuna.Study) -> str:
    """The best trial's full trainer config as YAML that `train --config`, `run --base-config` and
    `run --enqueue` read; the comments say where it came from."""
    best = best_trial(study)
    if best is None:
        raise ConfigError(f"study '{study.study_name}' has no complete trial yet")
    values = per_seed_values(best)
    lines = [
        f"# best trial {best.number} of study '{study.study_name}': {best.value:g} episodes to solve "
        f"(median of {len(values)} seeds)",
    ]
    verdict = Verdict.of_study(study)
    if verdict and verdict.winner_trial == best.number:
        lines.append(f"# {verdict.line or ''}")
    lines += [
        "# train it:          dqn-sweep train --config THIS.yaml --seed 0",
        "# sweep around it:   dqn-sweep run --config SWEEP.yaml --base-config THIS.yaml  (or --enqueue THIS.yaml)",
    ]
    body = yaml.safe_dump({"trainer": trial_config(study, best).to_dict()}, sort_keys=False)
    return "\n".join(lines) + "\n" + body


def with_base_config(sweep: SweepFile, path: str | Path) -> SweepFile:
    """The sweep with its `trainer:` section replaced by the config in `path` (checked against the space)."""
    base = load_config(path)
    definition = {**sweep.definition, "trainer": base.to_dict()}
    return sweep_from_mapping(definition, source=f"{sweep.path} with base config {path}")


def project(config: TrainConfig, space: Sequence[ParamSpec], origin: str, *, strict: bool) -> QueuedConfig:
    params, outside = {}, []
    for spec in space:
        value = getattr(config, spec.name)
        if spec.contains(value):
            params[spec.name] = spec.as_choice(value)
        else:
            outside.append(f"{spec.name}={spec.as_choice(value)!r}")
            if strict:
                raise ConfigError(
                    f"{origin}: {spec.name}={spec.as_choice(value)!r} is outside the search space ({spec.describe()})"
                )
    return QueuedConfig(params, origin, tuple(outside))


def from_files(paths: Sequence[str], sweep: SweepFile) -> list[QueuedConfig]:
    queued = []
    for path in paths:
        config = load_config(path)
        check_unsearched(path, config, sweep)
        queued.append(project(config, sweep.space, str(path), strict=True))
    return queued


def check_unsearched(path: str | Path, config: TrainConfig, sweep: SweepFile) -> None:
    """Refuse a file whose keys outside the search space differ from the sweep's base config: first the env (the
    file was written for another problem), then every such key by name. Keys the file leaves out, and keys equal to
    the base (a `best --format yaml` of the same sweep), are fine."""
    data = read_mapping(path)
    if isinstance(data.get("trainer"), Mapping):
        data = data["trainer"]
    searched = {spec.name for spec in sweep.space}
    base = sweep.base
    if "env_id" in data and "env_id" not in searched and config.env_id != base.env_id:
        raise ConfigError(
            f"--enqueue {path}: written for env {config.env_id}, but this sweep trains {base.env_id}; "
            "enqueue a config of this env"
        )
    differ = [key for key in data if key not in searched and getattr(config, key) != getattr(base, key)]
    if differ:
        shown = ", ".join(f"{key}={_shown(getattr(config, key))} (base {_shown(getattr(base, key))})" for key in differ)
        raise ConfigError(
            f"--enqueue {path}: {shown} not searched by this sweep, so a queued trial cannot carry "
            f"{'it' if len(differ) == 1 else 'them'}; add {'it' if len(differ) == 1 else 'them'} to search_space, "
            "or use --base-config"
        )


def _shown(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else repr(value)


def from_study(source: optuna.Study, top: int, sweep: SweepFile) -> list[QueuedConfig]:
    """The `top` best complete trials of another study (the book baseline among them if it ranks), best first."""
    ranked = ranked_complete_trials(source)
    if not ranked:
        raise ConfigError(f"--from-study: study '{source.study_name}' has no complete trial yet")
    return [
        project(trial_config(source, trial), sweep.space, f"{source.study_name}:{trial.number}", strict=False)
        for trial in ranked[:top]
    ]


def enqueue(study: optuna.Study, queued: Sequence[QueuedConfig]) -> list[str]:
    """Queue each configuration unless the study already holds a trial with the same parameters (a resumed
    `run` queues nothing twice, and the book is trial 0 already); one line per configuration, for the user."""
    import warnings

    lines = []
    for item in queued:
        before = len(study.get_trials(deepcopy=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            study.enqueue_trial(item.params, user_attrs={TRIAL_WARM_START: item.origin}, skip_if_exists=True)
        after = study.get_trials(deepcopy=False)
        if len(after) == before:
            lines.append(f"queued {item.origin}: skipped, the study already has a trial with these parameters")
            continue
        note = f"; left to the sampler: {', '.join(item.left_to_sampler)}" if item.left_to_sampler else ""
        lines.append(f"queued {item.origin} as trial {after[-1].number}{note}")
    return lines
