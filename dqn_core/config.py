"""The trainer's configuration: one frozen value object whose defaults are the book's (textbook ch. 4-4).

Validation happens here, once, so every entry point (Python, YAML, `--set`) fails with the same one-line message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dqn_core.envs import EnvSpec, resolve_env
from dqn_core.errors import ConfigError, shown
from dqn_core.yamlfile import read_mapping

REWARD_MODES = ("book", "env")
TIME_LIMIT_MODES = ("terminal", "bootstrap")
EPSILON_SCHEDULES = ("exponential", "linear")
MAX_UPDATES_PER_STEP = 16
# Hidden layers of the Q-network. The book has 3; the DQN literature on low-dimensional control (rl-zoo3's tuned
# CartPole, Acrobot and MountainCar agents, SB3's default MLP) uses 1-3, so 8 leaves room to explore deeper nets. Every
# layer is one more padded matmul in the compiled population graph (its size and compile time grow with depth):
# 300 one-unit layers took 378 s and 17.8 GB for 5 episodes.
MAX_HIDDEN_LAYERS = 8
MAX_HIDDEN_UNITS = 4096
# The graph computes every float setting in float32 (`dqn_core.hyper`): a larger value would become inf (with a
# NumPy overflow warning) and a tiny nonzero one 0.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.401298464324817e-45  # the smallest positive (subnormal) float32
FLOAT_FIELDS = ("gamma", "epsilon_start", "epsilon_stop", "epsilon_decay_rate", "learning_rate")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything one DQN training run needs except its seed. Defaults reproduce the book."""

    env_id: str = "CartPole-v0"
    """Gymnasium environment id; CartPole-v0 (200 steps) is the book's, CartPole-v1 (500 steps) also works."""
    max_episodes: int = 500
    """Episodes an agent may use before it counts as unsolved (book: NUM_EPISODES)."""
    gamma: float = 0.99
    """Discount factor, in (0, 1]."""
    warmup: int = 10
    """The first `warmup` steps of every episode are acted out but not stored in replay (book: WARMUP)."""
    epsilon_start: float = 1.0
    """Exploration rate at total step 0 (book: E_START)."""
    epsilon_stop: float = 0.01
    """Exploration rate the decay approaches (book: E_STOP)."""
    epsilon_decay_rate: float = 0.001
    """epsilon = stop + (start - stop) * exp(-rate * total_steps) (book: E_DECAY_RATE); exponential schedule only."""
    epsilon_schedule: str = "exponential"
    """`exponential` in total steps (book), or `linear` from epsilon_start to epsilon_stop over epsilon_decay_steps
    and flat after (the form SB3 and rl-zoo3 tune as exploration_fraction / exploration_final_eps)."""
    epsilon_decay_steps: int = 10_000
    """Total env steps the linear schedule takes to reach epsilon_stop; linear schedule only."""
    memory_size: int = 10_000
    """Replay capacity in transitions; the oldest is overwritten when full (book: MEMORY_SIZE)."""
    batch_size: int = 32
    """Transitions per gradient step; training starts once replay holds this many (book: BATCH_SIZE)."""
    hidden_sizes: tuple[int, ...] = (16, 16, 16)
    """Units of each ReLU hidden layer of the Q-network (1-8 layers of 1-4096 units)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    target_refresh_episodes: int = 1
    """Copy the online weights into the target network at the start of every N-th episode (book: 1)."""
    target_refresh_steps: int = 0
    """If > 0, copy the online weights into the target every N env steps instead (target_refresh_episodes is then
    unused; SB3's target_update_interval); 0 keeps the per-episode refresh (book)."""
    updates_per_step: int = 1
    """Gradient steps per env step, each on its own minibatch (the replay ratio; book: 1)."""
    double_dqn: bool = False
    """Double DQN targets: the online network picks the next action, the target network values it (book: off)."""
    success_threshold: int | None = None
    """An episode whose return (the sum of the env's rewards) reaches this is a success; unset: 190 on CartPole-v0
    (the book: 190 of 200 steps; a CartPole return is the episode's length), else the env's reward_threshold
    (CartPole-v1 475, Acrobot-v1 -100, MountainCar-v0 -110)."""
    successes_to_solve: int = 5
    """Training stops after this many consecutive successes; the episode count at that point is the objective."""
    reward_mode: str | None = None
    """`book` (CartPole only, its default): 0 per step, +1 at the end of a successful episode; `env`: gymnasium's
    reward (the default of every other env)."""
    time_limit: str = "terminal"
    """`terminal`: the time-limit cut is a terminal state (book); `bootstrap`: bootstrap through truncation."""

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, list):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _check_types(self)
        _resolve_env_defaults(self)
        _check_ranges(self)

    @property
    def env(self) -> EnvSpec:
        """The resolved environment (cached per id)."""
        return resolve_env(self.env_id)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied and validated; unknown names are a ConfigError."""
        return TrainConfig.from_mapping({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the result can go to YAML, JSON or an MLflow param list as is."""
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping (parsed YAML, say), rejecting unknown keys with a did-you-mean hint."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
        for key in data:
            check_key(key, source=source)
        try:
            return cls(**{key: coerce_value(key, value) for key, value in data.items()})
        except ConfigError as exc:  # the value's rule, and where the value came from
            raise ConfigError(f"{source}: {exc}") from None


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def check_key(key: Any, *, source: str) -> None:
    """Refuse a key that is no config field in one line: the near miss if there is one, else every allowed key.

    One function for YAML files, mappings and `--set`, so every entry point names a typo the same way.
    """
    known = field_names()
    if key in known:
        return
    hint = difflib.get_close_matches(str(key), known, n=1)
    suggestion = f"did you mean '{hint[0]}'?" if hint else f"allowed: {', '.join(known)}"
    raise ConfigError(f"{source}: unknown config key '{key}' ({suggestion})")


def field_doc(name: str) -> str:
    """The one-line docstring under a field, for `--help` texts."""
    return _FIELD_DOCS.get(name, "")


def field_default(name: str) -> str:
    """A field's default as it is written in `--set` and YAML (`16,16,16`, `false`), read from a default
    TrainConfig so `--help` cannot drift from the code; fields the env decides show the book env's value."""
    default = getattr(TrainConfig(), name)
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return str(default)


def coerce_value(key: str, value: Any) -> Any:
    """Turn a parsed value (YAML scalar or a `--set` string) into the field's type, or raise ConfigError."""
    kind = _FIELD_TYPES[key]
    if isinstance(kind, str) and kind.endswith(" | None"):  # unset: the env decides (`_resolve_env_defaults`)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none", "~")):
            return None
        kind = {"int": int, "str": str}[kind.removesuffix(" | None")]
    if kind == "tuple[int, ...]":
        if isinstance(value, str):  # "32,32" or "[32, 32]" from --set, or a sweep's categorical choice
            parsed = _scalar(value)
            value = parsed if isinstance(parsed, list) else _layer_list(key, value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: must be a list of integers, got {value!r}")
        return tuple(_as_int(f"{key} entry", item) for item in value)
    if isinstance(value, str) and kind is not str:
        value = _scalar(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if kind is int:
        return _as_int(key, value)
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` and `1e300` (no dot, no sign) as strings
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string, got {value!r}")
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` from the command line, typed by the field it names."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set: expects key=value, got '{text}'")
    check_key(key, source="--set")
    try:
        return key, coerce_value(key, raw.strip())
    except ConfigError as exc:  # every --set error says where the value came from
        raise ConfigError(f"--set: {exc}") from None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML file of TrainConfig keys (a `trainer:` section is also accepted) and apply overrides."""
    data = read_mapping(path)
    if "trainer" in data and isinstance(data["trainer"], Mapping):
        beside = [key for key in data if key not in ("trainer", *SWEEP_FILE_SECTIONS)]
        if beside:
            raise ConfigError(
                f"{shown(path)}: '{beside[0]}' sits beside the trainer: section and would be ignored; put it under "
                "trainer: (a file with a trainer: section takes its keys from there)"
            )
        data = data["trainer"]
    return TrainConfig.from_mapping({**data, **(overrides or {})}, source=str(path))


# A sweep file given to `train` trains its `trainer:` section; its other sections are the sweep's, not unused keys.
SWEEP_FILE_SECTIONS = ("study", "search_space")


def _layer_list(key: str, text: str) -> list[Any]:
    """The entries of "16,32"; an empty entry ("16,,16", "16,16,") is an error, not a layer fewer."""
    if not text.strip():
        return []  # no layer at all: `_check_ranges` says that hidden_sizes needs one
    parts = text.split(",")
    for number, part in enumerate(parts, start=1):
        if not part.strip():
            where = f"entry {number} of {len(parts)} in {text.strip()!r}"
            raise ConfigError(f"{key}: {where} is empty (one number per layer)")
    return [_scalar(part) for part in parts]


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise ConfigError(f"{key}: must be an integer, got {value!r}")
    return value


def _check_types(config: TrainConfig) -> None:
    for name in _FIELD_TYPES:
        value = getattr(config, name)
        coerced = coerce_value(name, value)
        if coerced != value or type(coerced) is not type(value):
            object.__setattr__(config, name, coerced)


def _resolve_env_defaults(config: TrainConfig) -> None:
    """Fields whose book value is CartPole's: left unset, they take the env's (see their docs)."""
    env = resolve_env(config.env_id)  # raises ConfigError for unknown or unsupported ids
    if config.reward_mode is None:
        object.__setattr__(config, "reward_mode", "book" if env.simulator == "cartpole" else "env")
    if config.success_threshold is None:
        if env.default_success_threshold is None:
            raise ConfigError(f"{config.env_id} declares no reward_threshold; set success_threshold")
        object.__setattr__(config, "success_threshold", env.default_success_threshold)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_ranges(c: TrainConfig) -> None:
    finite = all(math.isfinite(getattr(c, n)) for n in FLOAT_FIELDS)
    _require(finite, "float config values must be finite numbers")
    for name in FLOAT_FIELDS:
        value = abs(getattr(c, name))
        _require(
            value <= FLOAT32_MAX,
            f"{name}: {getattr(c, name):g} overflows float32, the graph's dtype (at most {FLOAT32_MAX:.7g})",
        )
        _require(
            value == 0 or value >= FLOAT32_TINY,
            f"{name}: {getattr(c, name):g} underflows float32, the graph's dtype, to 0 (at least {FLOAT32_TINY:.7g})",
        )
    _require(0.0 < c.gamma <= 1.0, f"gamma: must be in (0, 1], got {c.gamma}")
    _require(c.max_episodes >= 1, f"max_episodes: must be >= 1, got {c.max_episodes}")
    _require(c.warmup >= 0, f"warmup: must be >= 0, got {c.warmup}")
    _require(0.0 <= c.epsilon_stop <= 1.0, f"epsilon_stop: must be in [0, 1], got {c.epsilon_stop}")
    _require(
        c.epsilon_stop <= c.epsilon_start <= 1.0,
        f"epsilon_start: must be in [epsilon_stop, 1] = [{c.epsilon_stop}, 1], got {c.epsilon_start}",
    )
    _require(c.epsilon_decay_rate >= 0.0, f"epsilon_decay_rate: must be >= 0, got {c.epsilon_decay_rate}")
    _require(c.memory_size >= 1, f"memory_size: must be >= 1, got {c.memory_size}")
    _require(
        1 <= c.batch_size <= c.memory_size,
        f"batch_size: must be in [1, memory_size={c.memory_size}], got {c.batch_size}",
    )
    _require(len(c.hidden_sizes) >= 1, "hidden_sizes must name at least one hidden layer")
    _require(
        len(c.hidden_sizes) <= MAX_HIDDEN_LAYERS,
        f"hidden_sizes: {len(c.hidden_sizes)} layers, at most {MAX_HIDDEN_LAYERS} are allowed (the book has 3)",
    )
    _require(
        all(units >= 1 for units in c.hidden_sizes),
        f"hidden_sizes entries: must be >= 1 unit, got {list(c.hidden_sizes)}",
    )
    _require(0.0 < c.learning_rate <= 1.0, f"learning_rate: must be in (0, 1], got {c.learning_rate}")
    _require(
        c.target_refresh_episodes >= 1,
        f"target_refresh_episodes: must be >= 1, got {c.target_refresh_episodes}",
    )
    _require(
        c.epsilon_schedule in EPSILON_SCHEDULES,
        f"epsilon_schedule: must be one of {EPSILON_SCHEDULES}, got '{c.epsilon_schedule}'",
    )
    _require(c.epsilon_decay_steps >= 1, f"epsilon_decay_steps: must be >= 1, got {c.epsilon_decay_steps}")
    _require(c.target_refresh_steps >= 0, f"target_refresh_steps: must be >= 0, got {c.target_refresh_steps}")
    _require(
        1 <= c.updates_per_step <= MAX_UPDATES_PER_STEP,
        f"updates_per_step: must be in [1, {MAX_UPDATES_PER_STEP}], got {c.updates_per_step}",
    )
    _require(c.successes_to_solve >= 1, f"successes_to_solve: must be >= 1, got {c.successes_to_solve}")
    _require(c.reward_mode in REWARD_MODES, f"reward_mode: must be one of {REWARD_MODES}, got '{c.reward_mode}'")
    _require(c.time_limit in TIME_LIMIT_MODES, f"time_limit: must be one of {TIME_LIMIT_MODES}, got '{c.time_limit}'")
    env = resolve_env(c.env_id)
    _require(
        c.reward_mode == "env" or env.simulator == "cartpole",
        f"reward_mode 'book' is CartPole's (+1 for an episode of >= success_threshold steps); {c.env_id} needs "
        "reward_mode 'env' (its own reward)",
    )
    if env.simulator == "host":  # any env: its returns are bounded only by what a float32 sum can tell apart
        low, high = -(10**9), 10**9
    else:  # the ported envs pay +-1 per step at most
        low, high = (1 if env.simulator == "cartpole" else -env.max_steps), env.max_steps
    _require(
        low <= c.success_threshold <= high,
        f"success_threshold: must be in [{low}, {high}] for {c.env_id}, got {c.success_threshold}",
    )
    # Upper bounds (README "Bounds"): far above any real run, low enough that no count overflows a graph integer.
    for name, high in (
        ("max_episodes", 1_000_000),
        ("target_refresh_episodes", 1_000_000),
        ("warmup", 1_000_000),
        ("successes_to_solve", 1_000_000),
        ("memory_size", 10_000_000),
        ("target_refresh_steps", 1_000_000_000),
        ("epsilon_decay_steps", 1_000_000_000),
    ):
        _require(getattr(c, name) <= high, f"{name}: must be <= {high:,}, got {getattr(c, name)}")
    _require(
        all(units <= MAX_HIDDEN_UNITS for units in c.hidden_sizes),
        f"hidden_sizes entries: must be <= {MAX_HIDDEN_UNITS} units, got {list(c.hidden_sizes)}",
    )


def _collect_field_docs() -> dict[str, str]:
    """Field docstrings live in the class source, as in CleanRL's Args; read them once for --help."""
    import ast
    import inspect
    import itertools
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(TrainConfig)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(following.value.value).split())  # one line, however wrapped
    return docs


def _field_types() -> dict[str, Any]:
    mapping = {"int": int, "float": float, "str": str, "bool": bool}
    return {f.name: mapping.get(str(f.type), str(f.type)) for f in dataclasses.fields(TrainConfig)}


_FIELD_TYPES: dict[str, Any] = _field_types()
_FIELD_DOCS = _collect_field_docs()
