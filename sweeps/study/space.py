"""Sweep configuration files: the base trainer config, the search space, and the study's defaults.

A sweep YAML has three sections (`sweeps/configs/default.yaml` is the reference):

    study:         # `StudyOptions` for `dqn-sweep run` (the command line wins), and optionally study_name
      n_trials: 64
    trainer:       # TrainConfig keys; anything not set keeps the book's value
      max_episodes: 300
    search_space:  # TrainConfig keys -> distributions
      gamma: {type: float, low: 0.9, high: 0.999}
      batch_size: {type: categorical, choices: [16, 32, 64]}

Everything is validated when the file is loaded, so a typo fails before any study or run is created.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from dqn_core import lanes
from dqn_core.config import TrainConfig, coerce_value, field_names
from dqn_core.errors import ConfigError
from dqn_core.lanes import LanePlan, plan_lanes
from dqn_core.shape import StreamShape
from dqn_core.yamlfile import read_mapping
from sweeps.study.schema import StudyOptions

PARAM_KINDS = ("float", "int", "categorical")
SHARED_IN_POPULATION = ("env_id",)  # compiled into the graph; cannot vary between trials
SECTIONS = ("study", "trainer", "search_space")
LANE_PARAMS = {
    "hidden_sizes": ("categorical",),
    "double_dqn": ("categorical",),
    "batch_size": ("categorical", "int"),
    "updates_per_step": ("categorical", "int"),
}
"""The parameters that set what a slot computes per step, each value (bucket) a compiled lane, and the kinds of
search they allow."""


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One searched TrainConfig field."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter from an Optuna trial."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """Every value a grid sampler visits; floats need a step."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None and self.kind == "float":
            raise ConfigError(f"the grid sampler needs a step or choices for '{self.name}'")
        step = self.step or 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 12) for v in values]

    def as_choice(self, value: Any) -> Any:
        """A config value as this parameter stores it in Optuna (a layer tuple becomes "16,16,16")."""
        if self.kind == "categorical" and isinstance(value, tuple):
            return ",".join(map(str, value))
        return value

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return self.as_choice(value) in self.choices
        return self.low <= value <= self.high

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name}: one of {list(self.choices)}"
        scale = ", log" if self.log else ""
        step = f", step {self.step}" if self.step is not None else ""
        return f"{self.name}: {self.kind} in [{self.low}, {self.high}]{scale}{step}"


@dataclass(frozen=True, kw_only=True)
class SweepFile:
    """A parsed, validated sweep YAML."""

    path: str
    base: TrainConfig
    space: tuple[ParamSpec, ...]
    study: StudyOptions = field(default_factory=StudyOptions)
    study_name: str | None = None  # the `study:` section's name; else the file's stem
    definition: dict[str, Any] = field(default_factory=dict)  # the parsed YAML, kept so workers need no file

    def stream_shape(self) -> StreamShape:
        """The compiled shape that fits every config this sweep can sample, so every batch reuses one graph."""
        corners = [self.base.replace(**{spec.name: value}) for spec in self.space for value in _corners(spec)]
        return StreamShape.covering([self.base, *corners])

    def lane_configs(self) -> list[TrainConfig]:
        """One config per combination of the compute-setting parameters' lane values (`lane_values`), the rest the
        base's: what `dqn_core.lanes.plan_lanes` compiles a population for, each combination weighted alike."""
        configs = [self.base]
        for spec in self.space:
            if spec.name in LANE_PARAMS:
                configs = [config.replace(**{spec.name: value}) for config in configs for value in lane_values(spec)]
        return configs

    def stream_lanes(self, *, cap: int | None = None) -> LanePlan:
        """The lanes this sweep's stream compiles: one per combination of network, batch size, updates per step and
        Double DQN the space can sample (integer ranges in power-of-two buckets), merged down to `cap` (default
        `dqn_core.lanes.MAX_LANES`, read when called: 1 compiles one covering shape, as before lanes)."""
        plan = plan_lanes(self.lane_configs(), cap=lanes.MAX_LANES if cap is None else cap)
        memory = self.stream_shape().memory_size  # a searched replay capacity fits every lane
        return LanePlan(tuple(replace(shape, memory_size=memory) for shape in plan.shapes), plan.merges)

    def book_params(self) -> dict[str, Any]:
        """The book's value of every searched parameter the space contains, as Optuna stores it: trial 0."""
        book = TrainConfig()
        return {p.name: p.as_choice(getattr(book, p.name)) for p in self.space if p.contains(getattr(book, p.name))}

    def config_for(self, params: Mapping[str, Any]) -> TrainConfig:
        """The trainer config of one trial: the base with the sampled values applied (and validated)."""
        try:
            return self.base.replace(**params)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: sampled parameters {dict(params)} are invalid: {exc}") from None


def lane_values(spec: ParamSpec) -> list[Any]:
    """The values of a compute-setting parameter that lanes are compiled for: each choice, or for an integer range
    the powers of two inside it and its top (a sampled value trains in the lane of the next bucket up)."""
    if spec.kind == "categorical":
        return list(spec.choices)
    low, high = int(spec.low), int(spec.high)
    return [2**k for k in range(high.bit_length()) if low <= 2**k < high] + [high]


def _check_lane_param(name: str, kind: str, where: str) -> None:
    """A compute-setting parameter must have few enough values to compile a population per bucket of them."""
    allowed = LANE_PARAMS.get(name)
    if allowed is None or kind in allowed or (kind == "float" and "int" in allowed):
        return  # (a float range of an integer knob gets the integer check's own message)
    example = {"hidden_sizes": ' (choices such as ["16,16,16", "32,32"])', "double_dqn": " (choices: [false, true])"}
    raise ConfigError(
        f"{where}: must be {' or '.join(allowed)}{example.get(name, '')}, got type {kind}: the stream compiles a "
        "population per value, so it cannot be a free range"
    )


def load_sweep(path: str | Path) -> SweepFile:
    return sweep_from_mapping(read_mapping(path), source=str(path))


def sweep_from_mapping(data: Mapping[str, Any], *, source: str) -> SweepFile:
    """A sweep from its parsed YAML (a file, or the copy a study keeps for its workers), fully validated."""
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"{source}: unknown section '{key}' (expected {', '.join(SECTIONS)})")
    trainer = data.get("trainer") or {}
    base = TrainConfig.from_mapping(trainer, source=f"{source} [trainer]")
    space = parse_space(data.get("search_space") or {}, source=f"{source} [search_space]")
    study_section = dict(data.get("study") or {}) if isinstance(data.get("study") or {}, Mapping) else data["study"]
    study_name = study_section.pop("study_name", None) if isinstance(study_section, dict) else None
    if study_name is not None and not isinstance(study_name, str):
        raise ConfigError(f"{source} [study]: study_name: must be a string, got {study_name!r}")
    study = StudyOptions.from_mapping(study_section, source=f"{source} [study]")
    if not space:  # a sweep of nothing would train the same configuration over and over
        raise ConfigError(f"{source}: no search_space (a sweep needs at least one searched parameter)")
    for spec in space:  # every corner of the space must be a valid trainer config
        for value in _corners(spec):
            try:
                base.replace(**{spec.name: value})
            except ConfigError as exc:
                raise ConfigError(f"{source} [search_space] {spec.name}={value!r} is invalid: {exc}") from None
    return SweepFile(path=source, base=base, space=space, study=study, study_name=study_name, definition=dict(data))


def parse_space(data: Mapping[str, Any], *, source: str) -> tuple[ParamSpec, ...]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of parameter names to distributions")
    known = set(field_names())
    specs = []
    for name, body in data.items():
        if name not in known:
            raise ConfigError(f"{source}: '{name}' is not a trainer parameter")
        if name in SHARED_IN_POPULATION:
            raise ConfigError(f"{source}: '{name}' cannot be searched (every trial of a sweep runs the same env)")
        specs.append(_parse_param(name, body, source))
    return tuple(specs)


def _parse_param(name: str, body: Any, source: str) -> ParamSpec:
    where = f"{source} {name}"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {{type: float, low: 0.9, high: 0.999}}")
    allowed = {"type", "low", "high", "log", "step", "choices"}
    for key in body:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
    kind = body.get("type")
    if kind not in PARAM_KINDS:
        raise ConfigError(f"{where}: type: must be one of {PARAM_KINDS}, got {kind!r}")
    _check_lane_param(name, kind, where)
    if kind == "categorical":
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: categorical needs a non-empty list of choices")
        if set(body) - {"type", "choices"}:
            raise ConfigError(f"{where}: categorical takes only choices")
        values = [coerce_value(name, c) for c in choices]
        if any(isinstance(v, tuple) for v in values):  # e.g. hidden_sizes: Optuna's choices must be scalars
            values = [",".join(map(str, v)) for v in values]
        return ParamSpec(name=name, kind=kind, choices=tuple(values))
    if "choices" in body:
        raise ConfigError(f"{where}: choices belong to type categorical")
    low, high = body.get("low"), body.get("high")
    for label, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {label}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {label}: must be a finite number, got {value!r}")
    if low > high:
        raise ConfigError(f"{where}: low: must not exceed high, got {low} > {high}")
    log = body.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log: must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    step = body.get("step")
    if step is not None and (
        isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) or step <= 0
    ):
        raise ConfigError(f"{where}: step: must be a positive number, got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: step and log cannot be combined")
    if step is not None:
        _check_step(where, low, high, step)
    if kind == "int":
        for label, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and float(value) != int(value):
                raise ConfigError(f"{where}: {label}: must be an integer for type int, got {value}")
        coerce_value(name, int(low))  # the field itself must be an integer field
        return ParamSpec(name=name, kind=kind, low=int(low), high=int(high), log=log, step=step)
    if isinstance(coerce_value(name, low), int):
        raise ConfigError(f"{where}: '{name}' is an integer parameter; use type int")
    return ParamSpec(name=name, kind=kind, low=float(low), high=float(high), log=log, step=step)


def _check_step(where: str, low: float, high: float, step: float) -> None:
    """A step must divide high - low. Optuna would otherwise move `high` down to the last multiple with a multi-line
    UserWarning per distribution, and a step larger than the range would leave one value to search. Decimal, as
    Optuna's own check, so that 0.9 to 0.99 in steps of 0.045 divides exactly."""
    span = Decimal(str(high)) - Decimal(str(low))
    if span and Decimal(str(step)) > span:
        raise ConfigError(f"{where}: step {step} is larger than the range [{low}, {high}]; only {low} would be tried")
    if span % Decimal(str(step)):
        below = Decimal(str(low)) + span // Decimal(str(step)) * Decimal(str(step))
        raise ConfigError(
            f"{where}: step {step} does not divide the range [{low}, {high}]; use high {below} or another step"
        )


def _corners(spec: ParamSpec) -> list[Any]:
    if spec.kind == "categorical":
        return list(spec.choices)
    return [spec.low, spec.high]
