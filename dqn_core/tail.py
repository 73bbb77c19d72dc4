"""When a stream's tail moves into a smaller population: only once the idle slots have cost what compiling the
smaller size would.

A smaller population runs each tick in about size/K of the time, but a size this process has not compiled yet
costs a compilation first (seconds) and its memory for the life of the process, since TensorFlow never evicts a
compiled program. Whether that pays off depends on how long the tail lasts, which nobody knows in advance. The
rent-or-buy rule bounds the loss: keep the current size (rent) until the time its idle slots have cost reaches the
compilation's measured time, then compile (buy); by its own estimates that costs at most twice the better choice
in hindsight. A short tail (agents that end together) compiles nothing, and a size already compiled in the process
is moved into at once: the smallest one that holds the live agents, which may skip several halvings (e.g. from 32
slots to the 2 that a lone run compiled, for the slowest agent of a population).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

COMPILED: set[tuple[Hashable, int]] = set()
"""(program, slots) pairs this process has run, i.e. compiled (shared by all streams, as TF's cache is)."""
COMPILE_SECONDS: dict[Hashable, float] = {}
"""The latest measured compilation time of each program, for any slot count: it varies little with the size."""


@dataclass
class TailRental:
    """The rent-or-buy ledger of one stream. `program` names everything but the slot count that selects a compiled
    program (env, network, replay, features, ticks, in-graph or host-stepped)."""

    program: Hashable
    idle_cost_s: float = 0.0
    _last_call_s: float = 0.0
    _fresh_call_s: float | None = None

    def ran(self, slots: int, seconds: float) -> None:
        """A call at `slots` took `seconds`. The first call at a new size includes its compilation: that minus the
        next call at the same size is the compilation's time (until then, the whole first call stands for it)."""
        self._last_call_s = seconds
        if (self.program, slots) not in COMPILED:
            COMPILED.add((self.program, slots))
            self._fresh_call_s = seconds
            COMPILE_SECONDS.setdefault(self.program, seconds)
        elif self._fresh_call_s is not None:
            COMPILE_SECONDS[self.program] = max(0.0, self._fresh_call_s - seconds)
            self._fresh_call_s = None

    def compiled_size_for(self, slots: int, needed: int) -> int | None:
        """The smallest size below `slots` this process has compiled that holds `needed` slots, if any: moving there
        costs nothing. A move starts a new ledger."""
        sizes = [size for program, size in COMPILED if program == self.program and needed <= size < slots]
        if not sizes:
            return None
        self.idle_cost_s = 0.0
        return min(sizes)

    def shrink_now(self, slots: int, target: int) -> bool:
        """Asked after each call while the tail could move from `slots` into `target` slots."""
        self.idle_cost_s += self._last_call_s * (1 - target / slots)
        compile_s = 0.0 if (self.program, target) in COMPILED else COMPILE_SECONDS.get(self.program, 0.0)
        if self.idle_cost_s < compile_s:
            return False
        self.idle_cost_s = 0.0
        return True
