"""What one process runs: the study's settings (`StudyOptions`) and where and how this process runs them, checked
when built, so that everything after it may assume good input.

Imports neither Optuna nor TensorFlow at run time: the CLI builds `SweepOptions` before it loads them, so a bad
flag is refused at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dqn_core.errors import ConfigError
from dqn_core.lanes import LanePlan, describe
from dqn_core.memory import check_this_process, population_memory, process_limits, tightest
from sweeps.stores.locations import GRACE_PERIOD, HEARTBEAT_INTERVAL
from sweeps.stores.preflight import check_liveness, check_study_name, check_timeout
from sweeps.study.schema import ATTR_DEFINITION, ATTR_OPTIONS, StudyOptions, recorded
from sweeps.study.space import SweepFile, sweep_from_mapping

if TYPE_CHECKING:  # annotations only: importing either loads Optuna
    import optuna

    from sweeps.study.warmstart import QueuedConfig


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    """One process's sweep: the study's settings (`StudyOptions`) and where and how this process runs it."""

    sweep: SweepFile
    study_name: str
    study: StudyOptions
    storage: str
    tracking_uri: str
    progress: bool = True
    command_line: str = ""
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    join_only: bool = False  # `worker`: never create the study
    verdict: bool = True  # `run` ends with the verdict (winner vs book on unseen seeds); `worker` never does
    timeout_s: float | None = None  # no new trial is asked after this; running trials finish
    queued: tuple[QueuedConfig, ...] = ()  # warm start: configurations to try first (`warmstart.py`)

    def __post_init__(self) -> None:
        check_liveness(self.heartbeat_interval, self.grace_period)
        check_timeout(self.timeout_s)
        if self.join_only:  # an existing study keeps the name it has
            if not self.study_name.strip():
                raise ConfigError("study name must not be empty")
        else:
            check_study_name(self.study_name)
        self.lanes()  # the populations this process compiles fit its memory (the verdict's stream as many as fit)

    def lanes(self) -> LanePlan:
        """The lanes this process's sweep streams compile (`SweepFile.stream_lanes`): one line, and a ConfigError,
        when there are more lanes than slots; fewer lanes (merged, each merge named) when they would not all fit
        in memory at the full slot count, down to the one covering shape, which `check_this_process` checks."""
        plan, slots = self.sweep.stream_lanes(), self.study.slots
        if slots < len(plan.shapes):
            lanes = ", ".join(describe(shape) for shape in plan.shapes)
            raise ConfigError(
                f"--slots: must be at least the number of lanes the search space compiles ({len(plan.shapes)}: "
                f"{lanes}), got {slots}"
            )
        limit = tightest(process_limits())
        for cap in range(len(plan.shapes), 1, -1):
            fewer = plan if cap == len(plan.shapes) else self.sweep.stream_lanes(cap=cap)
            if limit is None or sum(population_memory(s, slots).total for s in fewer.shapes) <= limit.usable:
                return fewer
        covering = self.sweep.stream_shape()
        check_this_process(covering, slots)
        merged = () if len(plan.shapes) == 1 else (f"all {len(plan.shapes)} lanes -> {describe(covering)} (memory)",)
        return LanePlan((covering,), plan.merges + merged)

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.study.seeds


def worker_options(study: optuna.Study, *, storage: str, tracking_uri: str, **overrides: Any) -> SweepOptions:
    """Options for a process joining `study`: the sweep and settings the study recorded, then `overrides` (the
    study options among them; None leaves a setting as recorded)."""
    definition = recorded(study, ATTR_DEFINITION)
    if definition is None:
        raise ConfigError(
            f"study '{study.study_name}' does not record its sweep (made by an older dqn-sweep); "
            "join it with `dqn-sweep run --config SWEEP.yaml` instead"
        )
    sweep = sweep_from_mapping(definition, source=f"study '{study.study_name}'")
    settings = recorded(study, ATTR_OPTIONS, {})
    if "max_seeds" not in settings:
        raise ConfigError(
            f"study '{study.study_name}' was made before seeds were raced (it records no max_seeds); "
            "start a new study for this version of dqn-sweep"
        )
    study_fields = {k: v for k, v in overrides.items() if k in settings}
    study_options = StudyOptions.from_mapping(settings, source=f"study '{study.study_name}'").replace(
        as_flags=True, **study_fields
    )
    rest = {k: v for k, v in overrides.items() if k not in settings and v is not None}
    return SweepOptions(
        sweep=sweep,
        study_name=study.study_name,
        study=study_options,
        storage=storage,
        tracking_uri=tracking_uri,
        join_only=True,
        verdict=False,
        **rest,
    )
