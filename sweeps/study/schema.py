"""What a study stores, in one place: attribute keys, the study's options, and how a trial's record is read back.

Optuna is the store of record. Runner, recovery, inspect, the verdict and analysis all read and write a study
through these names, so a key is spelled once. `StudyOptions` is the one list of a sweep's settings: the `run`
flags, the sweep YAML's `study:` section and the options a study records for its workers all derive from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.shape import SEED_LIMIT

# The study's record. What dqn-sweep reads back (the base config, the seeds, the sweep and its options, the command
# line, the verdict's per-seed values) is kept in the study's system attributes, under RECORD_PREFIX: Optuna's tools
# do not print those, where as user attributes they made `optuna studies` print a ~5 kB row. The user attributes
# keep what a person looks for there: the sweep file, its hash and the verdict's line. Studies recorded before
# keep everything as user attributes, and `recorded` reads them as they are.
RECORD_PREFIX = "dqn_sweep."
ATTR_BASE_CONFIG = "base_config"  # the sweep's trainer section, as a TrainConfig mapping
ATTR_SEEDS = "seeds"  # every seed a trial may train on, in the order trials take them (0, 1, 2, ...)
ATTR_SWEEP_HASH = "sweep_hash"  # written last: a study with a hash is completely created
ATTR_COMMAND = "command_line"
ATTR_DEFINITION = "sweep_definition"  # the sweep YAML as parsed: a worker needs no file
ATTR_OPTIONS = "sweep_options"  # the StudyOptions of the latest `run`
ATTR_SWEEP_FILE = "sweep_file"
ATTR_VERDICT = "verdict"  # the latest verdict: the record `Verdict.to_dict`, the user attribute its line

# Trial user attributes.
TRIAL_PER_SEED = "episodes_to_solve_per_seed"  # {seed: episodes to solve, unsolved = max_episodes + 1}
TRIAL_CENSORED = "censored"  # some seed did not solve within max_episodes
TRIAL_BASELINE = "baseline"  # "book" on the queued book configuration
TRIAL_RUN_ID = "mlflow_run_id"
TRIAL_WORKER = "worker"
TRIAL_TRACKING_TAGS = "tracking_tags"
TRIAL_FAIL_REASON = "fail_reason"
TRIAL_ENV_STEPS = "env_steps"
TRIAL_WALL_TIME = "wall_time_s"
TRIAL_LOWER_BOUNDS = "lower_bound_per_seed"  # studies made before seeds were the budget (read, never written)
BOOK = "book"

# Trial run artifacts.
CURVES_FILE = "curves.csv"  # every episode of every seed: seed, episode, steps, epsilon, loss

HELD_OUT_SEED_START = 10_000
"""Seeds no trial trains on (a trial takes seeds 0 .. max_seeds - 1, and max_seeds <= 1,000): the verdict and
`validate` use 10000, 10001, ..."""

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "grid")  # built by `strategies.make_sampler`
PRUNERS = ("wilcoxon", "none")  # built by `strategies.make_pruner`


def _option(
    help_text: str, *, low: float | None = None, high: float | None = None, choices: tuple = (), open_: bool = False
) -> Any:
    """`open_`: the bounds themselves are not allowed (a margin of 0 or 1 means nothing)."""
    return {"help": help_text, "low": low, "high": high, "choices": choices, "open": open_}


@dataclass(frozen=True, kw_only=True)
class StudyOptions:
    """A sweep's settings. Defaults are measured choices (README: "Racing seeds"); the command line overrides the
    sweep file's `study:` section, which overrides these."""

    n_trials: int = field(
        default=64, metadata=_option("total finished (complete + pruned) trials", low=1, high=100_000)
    )
    max_seeds: int = field(
        default=16,
        metadata=_option("seeds a surviving trial is trained on; its value is their median", low=2, high=1_000),
    )
    slots: int = field(
        default=64, metadata=_option("agents trained at once in one compiled population", low=1, high=1_024)
    )
    seeds_in_flight: int = field(
        default=4,
        metadata=_option(
            "most seeds of one trial training at once, so the pruner sees results early", low=1, high=1_000
        ),
    )
    sampler: str = field(default="tpe", metadata=_option("the Optuna sampler", choices=SAMPLERS))
    pruner: str = field(default="wilcoxon", metadata=_option("the Optuna pruner", choices=PRUNERS))
    p_threshold: float = field(
        default=0.1,
        metadata=_option("WilcoxonPruner: prune when worse than the best at this p-value", low=0, high=1),
    )
    startup_seeds: int = field(
        default=4, metadata=_option("WilcoxonPruner: common seeds before a trial may be pruned", low=2, high=1_000)
    )
    seed: int | None = field(
        default=None, metadata=_option("sampler seed: the same seed, the same trials", low=0, high=SEED_LIMIT - 1)
    )
    validate_seeds: int = field(
        default=32, metadata=_option("unseen seeds of the verdict, winner vs book (0 skips it)", low=0, high=1_000)
    )
    equivalence_margin: float = field(
        default=0.1,
        metadata=_option(
            "the verdict calls two configurations equivalent when the 90% CI of their ratio lies within 1 +- this",
            low=0,
            high=1,
            open_=True,
        ),
    )

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check(spec.name, getattr(self, spec.name), spec.type, spec.metadata)
        if self.pruner == "wilcoxon" and self.startup_seeds > self.max_seeds:
            raise ConfigError(f"startup_seeds: must not exceed max_seeds, got {self.startup_seeds} > {self.max_seeds}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> StudyOptions:
        """From a sweep file's `study:` section or a study's record; unknown keys and bad values are one line."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping")
        known = option_names()
        for key in data:
            if key not in known:
                raise ConfigError(f"{source}: unknown key '{key}' (allowed: {', '.join(known)})")
        try:
            return cls(**dict(data))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def replace(self, *, as_flags: bool = False, **overrides: Any) -> StudyOptions:
        """These options with every override that is not None applied (unset command-line flags are None);
        `as_flags`: a bad value is named as its command-line flag (--n-trials) rather than its key (n_trials)."""
        try:
            return replace(self, **{k: v for k, v in overrides.items() if v is not None})
        except ConfigError as exc:
            if not as_flags:
                raise
            message = str(exc)
            for name in option_names():
                message = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), message)
            raise ConfigError(message) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds every trial takes, in order: the same for all trials, so comparisons are paired."""
        return tuple(range(self.max_seeds))


def option_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in fields(StudyOptions))


def option_help(name: str) -> str:
    return next(spec.metadata["help"] for spec in fields(StudyOptions) if spec.name == name)


def option_type(name: str) -> type:
    kind = next(spec.type for spec in fields(StudyOptions) if spec.name == name)
    return {"int": int, "float": float, "str": str, "int | None": int}[kind]


def option_choices(name: str) -> tuple[str, ...]:
    return next(spec.metadata["choices"] for spec in fields(StudyOptions) if spec.name == name)


def _check(name: str, value: Any, kind: str, meta: Mapping[str, Any]) -> None:
    flag = name
    if value is None and kind == "int | None":
        return
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{flag}: must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{flag}: must be a number, got {value!r}")
    elif not isinstance(value, str):
        raise ConfigError(f"{flag}: must be a string, got {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{flag}: unknown value '{value}' (choose from {', '.join(meta['choices'])})")
    low, high = meta["low"], meta["high"]
    if meta.get("open") and not low < value < high:
        raise ConfigError(f"{flag}: must be in ({low}, {high}), got {value}")
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{flag}: must be in [{low}, {high}], got {value}")


def per_seed_values(trial: optuna.trial.FrozenTrial) -> dict[int, float]:
    """Episodes to solve of every seed a trial finished (complete and pruned trials alike), by seed."""
    return {int(seed): value for seed, value in trial.user_attrs.get(TRIAL_PER_SEED, {}).items()}


def is_baseline(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.user_attrs.get(TRIAL_BASELINE) == BOOK


def recorded(study: optuna.Study, key: str, default: Any = None) -> Any:
    """One entry of the study's record (see RECORD_PREFIX), or of its user attributes in a study made before."""
    from sweeps.stores.optuna_adapter import study_system_attrs

    system = study_system_attrs(study)
    if RECORD_PREFIX + key in system:
        return system[RECORD_PREFIX + key]
    return study.user_attrs.get(key, default)


def record(study: optuna.Study, key: str, value: Any) -> None:
    from sweeps.stores.optuna_adapter import set_study_system_attr

    set_study_system_attr(study, RECORD_PREFIX + key, value)


def base_config(study: optuna.Study) -> TrainConfig:
    mapping = recorded(study, ATTR_BASE_CONFIG)
    if mapping is None:
        raise ConfigError(f"study '{study.study_name}' records no base config (was it made by dqn-sweep?)")
    return TrainConfig.from_mapping(mapping, source=f"study {study.study_name}")


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> TrainConfig:
    """The trainer config a trial trained: the study's base with the trial's parameters."""
    return base_config(study).replace(**trial.params)


def book_config(study: optuna.Study) -> TrainConfig:
    """The sweep's base with every searched parameter at the book's value: what the sweep has to beat."""
    book = TrainConfig()
    searched = {name for trial in study.get_trials(deepcopy=False) for name in trial.params}
    return base_config(study).replace(**{name: getattr(book, name) for name in sorted(searched)})


def held_out_seeds(count: int) -> list[int]:
    return list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + count))
