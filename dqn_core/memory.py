"""How much memory a compiled population takes, and how much this process may use.

A population's replay buffers are preallocated for every slot at the shape's largest `memory_size`, so 64 slots of
10,000,000 transitions ask TensorFlow for ~27 GB at once: too much ended in a ResourceExhaustedError traceback
(or the kernel's OOM killer) after the study had been created. The CLI checks the estimate against the process's
limit before any store is written (`check_population`), and `validate` and the verdict stream their agents through
as many slots as fit (`slots_that_fit`); a stream's results do not depend on its slot count.

Pure arithmetic on a `StreamShape` and a few files under /proc and /sys: no TensorFlow, so a refusal answers at
once.
"""

from __future__ import annotations

import itertools
import math
import resource
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dqn_core.errors import ConfigError
from dqn_core.shape import MIN_SLOTS, StreamShape, physical_slots

FLOAT32 = INT32 = 4
BOOL = 1
ROW_CHUNK = 32
"""`network.ROW_CHUNK` (that module loads TensorFlow; a test checks the two agree): a batch's rows are summed in
chunks of this many, each chunk's weight gradient held apart."""
NETWORK_COPIES = 8
"""Float32 copies of a network's weights a slot holds: the online and target weights and Adam's two moments, each
twice while a compiled call runs (the state it was given and the one it returns) or while refilled slots are
written on the host."""
ACTIVATION_COPIES = 5
"""Per minibatch row and unit: the online forward pass (kept for the backward pass), the target's (and the online
one for Double DQN) on the next observations, and the backward pass's two gradients."""
TAIL_REPLAY = 1.5
"""When a stream's tail moves into a smaller population (`dqn_core.tail`) the survivors' replay buffers are
gathered while the old ones are alive: at most half the slots, so 1.5 times the replay at that moment (measured)."""
SLOT_EXTRA = 64 * 1024
"""Per slot, everything else: env state, counters, hyperparameters, a call's event records (256 ticks)."""

SAFETY = 0.9
"""Only this fraction of a limit is counted on: allocators round up and fragment, and a limit is not a target."""
RUNTIME_RESIDENT = 1 << 30
"""Resident memory the process needs besides the population: Python, TensorFlow and a compiled program (the book's
population peaked at 0.77 GB). Wide networks compile larger programs, which is not counted (two hidden layers of
512 units: 0.5 GB more, whatever the slot count)."""
RUNTIME_ADDRESS_SPACE = 5 << 29
"""Address space the same needs (RLIMIT_AS counts reservations too: 2.3 GB for the book's population on 2 cores)."""
UNLIMITED = 1 << 60
"""A cgroup limit at or above this is "no limit" (cgroup v1 writes 9223372036854771712)."""


@dataclass(frozen=True)
class PopulationMemory:
    """The bytes one compiled population allocates at its peak, by kind (see `population_memory`)."""

    slots: int
    """Physical slots (a power of two, at least `MIN_SLOTS`)."""
    replay: int
    networks: int
    minibatch: int

    @property
    def total(self) -> int:
        return self.replay + self.networks + self.minibatch


def population_memory(shape: StreamShape, slots: int) -> PopulationMemory:
    """An upper-bound estimate of what a stream of `slots` slots compiled for `shape` allocates at its peak.

    Per physical slot (`physical_slots`), with obs_dim d, replay capacity M, batch rows B, P weights and biases in
    the network and W units over its layers (observation, hidden, actions):

    - replay: M x (obs and next obs 2 x 4d bytes, action 4, reward 4, terminated 1, truncated 1) + 8 (write index
      and fill count); times `TAIL_REPLAY` where the tail can move into a smaller population (more than
      `MIN_SLOTS` slots);
    - networks: 4P bytes x (`NETWORK_COPIES` + 1 for the gradient + one partial gradient per 32-row chunk of a
      batch, `network.ROW_CHUNK`);
    - minibatch: B x (2 x 4d + 10) for the sampled transitions, plus 4 x B x W x `ACTIVATION_COPIES` for the
      activations and their gradients, plus `SLOT_EXTRA`.

    CartPole's obs_dim of 4 makes a transition 42 bytes: 64 slots of memory_size 10,000,000 hold ~27 GB of
    replay, ~40 GB with the tail's move. Measured peaks (resident, less the runtime) were within 5% of the replay
    term for large buffers."""
    env = shape.env
    sizes = shape.sizes()
    physical = physical_slots(slots)
    transition = 2 * FLOAT32 * env.obs_dim + INT32 + FLOAT32 + 2 * BOOL
    tail = TAIL_REPLAY if physical > MIN_SLOTS else 1.0
    replay = math.ceil(physical * (shape.memory_size * transition + 2 * INT32) * tail)
    weights = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    chunks = 1 << (math.ceil(shape.batch_rows / ROW_CHUNK) - 1).bit_length()
    networks = physical * FLOAT32 * weights * (NETWORK_COPIES + 1 + chunks)
    rows = shape.batch_rows * (2 * FLOAT32 * env.obs_dim + 10)
    activations = FLOAT32 * shape.batch_rows * sum(sizes) * ACTIVATION_COPIES
    minibatch = physical * (rows + activations + SLOT_EXTRA)
    return PopulationMemory(slots=physical, replay=replay, networks=networks, minibatch=minibatch)


@dataclass(frozen=True)
class MemoryLimit:
    """One limit on this process's memory: its bytes, where it comes from, and what the runtime needs of it."""

    bytes: int
    source: str
    reserve: int = RUNTIME_RESIDENT

    @property
    def usable(self) -> int:
        """What a population may take: `SAFETY` of the limit, less the runtime's own."""
        return max(0, int(self.bytes * SAFETY) - self.reserve)


def cgroup_limit(root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")) -> int | None:
    """The smallest memory limit of this process's cgroup and its ancestors (v2 `memory.max`, v1
    `memory.limit_in_bytes`), None if there is none; a container that shows its own cgroup as the root is read
    there."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        relative = path.strip().lstrip("/")
        if controllers == "":  # v2: one unified hierarchy
            candidates += _with_ancestors(root, root / relative, "memory.max")
        elif "memory" in controllers.split(","):  # v1: the memory controller's own hierarchy
            candidates += _with_ancestors(root / "memory", root / "memory" / relative, "memory.limit_in_bytes")
    candidates += [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    limits = [value for value in map(_read_limit, candidates) if value is not None]
    return min(limits, default=None)


def _with_ancestors(top: Path, folder: Path, name: str) -> list[Path]:
    files = []
    while True:
        files.append(folder / name)
        if folder == top or top not in folder.parents:
            return files
        folder = folder.parent


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():  # "max", or nothing
        return None
    value = int(text)
    return value if 0 < value < UNLIMITED else None


def address_space_limit() -> int | None:
    """RLIMIT_AS (`ulimit -v`), None if unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The kernel's MemAvailable: what can be allocated now without swapping (free plus reclaimable cache)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_limits() -> list[MemoryLimit]:
    """Every limit that applies to this process now (none where /proc and /sys tell nothing)."""
    found = [
        (cgroup_limit(), "the cgroup's memory limit", RUNTIME_RESIDENT),
        (address_space_limit(), "RLIMIT_AS", RUNTIME_ADDRESS_SPACE),
        (available_memory(), "MemAvailable", RUNTIME_RESIDENT),
    ]
    return [MemoryLimit(value, source, reserve) for value, source, reserve in found if value is not None]


def tightest(limits: Iterable[MemoryLimit]) -> MemoryLimit | None:
    """The limit that leaves a population the least, None if there is none."""
    return min(limits, key=lambda limit: limit.usable, default=None)


def size_text(n: int) -> str:
    """A size as a message shows it: `40 GB`, `1.6 GB`, `840 MB` (decimal units, whole from 10 up)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n} bytes"


def check_population(
    shape: StreamShape, slots: int, *, limit: MemoryLimit | None, slots_flag: str | None = "--slots", what: str = ""
) -> PopulationMemory:
    """The estimate if it fits under `limit` (None: nothing to compare with), else a one-line ConfigError naming
    the need, the limit and what to lower. `slots_flag`: the option that sets the slot count, if there is one;
    `what`: how the message names the population (a population of N slots)."""
    need = population_memory(shape, slots)
    if limit is None or need.total <= limit.usable:
        return need
    if need.replay >= need.networks + need.minibatch:
        cause, knob = f"memory_size {shape.memory_size}", "memory_size"
    else:
        hidden = ",".join(map(str, shape.hidden_sizes))
        cause, knob = f"hidden_sizes {hidden} and batch_size {shape.batch_rows}", "hidden_sizes or batch_size"
    advice = f"{slots_flag} or {knob}" if slots_flag and need.slots > MIN_SLOTS else knob
    margin = f"{limit.source} {size_text(limit.bytes)}, less {1 - SAFETY:.0%} and TensorFlow's own"
    raise ConfigError(
        f"{what or f'a population of {need.slots} slots'} with {cause} needs ~{size_text(need.total)}; this "
        f"process may use ~{size_text(limit.usable)} ({margin}): lower {advice}"
    )


def slots_that_fit(shape: StreamShape, agents: int, *, limit: MemoryLimit | None) -> int:
    """How many slots a stream of `agents` agents may have: all of them, or the most whose population fits under
    `limit` (a power of two, as physical slots are); a ConfigError when not even `MIN_SLOTS` fit."""
    slots = max(1, agents)
    while limit is not None and physical_slots(slots) > MIN_SLOTS:
        if population_memory(shape, slots).total <= limit.usable:
            return slots
        slots = physical_slots(slots) // 2
    check_population(shape, slots, limit=limit, slots_flag=None, what=f"even a stream of {MIN_SLOTS} slots")
    return slots


def check_this_process(
    shape: StreamShape, slots: int, *, slots_flag: str | None = "--slots", what: str = ""
) -> PopulationMemory:
    """`check_population` against the tightest of this process's limits (`process_limits`)."""
    return check_population(shape, slots, limit=tightest(process_limits()), slots_flag=slots_flag, what=what)
