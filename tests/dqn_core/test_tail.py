"""The rent-or-buy rule for a stream's tail: a size already compiled is moved into at once; a new size only once
the idle slots have cost as much time as its compilation is measured to take. A stream that rents still equals lone
runs (its agents never depend on the slot count)."""

import numpy as np

from dqn_core import TrainConfig, graph, tail, train
from dqn_core.stream import StreamShape, Supply, WorkItem, _Lane, train_stream


def test_a_size_already_compiled_is_moved_into_at_once():
    ledger = tail.TailRental(program=object())
    ledger.ran(64, 5.0)
    ledger.ran(32, 4.0)  # this process has a 32-slot program now
    ledger.ran(64, 1.0)
    assert ledger.shrink_now(64, 32)


def test_the_tail_moves_at_once_into_the_smallest_compiled_size_that_holds_it():
    ledger = tail.TailRental(program=object())
    for slots in (64, 32, 2):  # this process compiled these sizes for the program
        ledger.ran(slots, 1.0)
    ledger.ran(64, 1.0)
    ledger.idle_cost_s = 0.7
    assert ledger.compiled_size_for(64, 4) == 32  # 2 slots cannot hold 4
    assert ledger.idle_cost_s == 0.0
    assert ledger.compiled_size_for(64, 2) == 2  # skips 16, 8 and 4 (never compiled)
    assert ledger.compiled_size_for(32, 64) is None
    assert tail.TailRental(program=object()).compiled_size_for(64, 2) is None  # another program's sizes


def test_a_new_size_waits_until_idle_slots_cost_its_measured_compilation():
    ledger = tail.TailRental(program=object())
    ledger.ran(64, 10.0)  # compiles, then runs one call
    ledger.ran(64, 1.0)  # warm: the compilation took 9 s
    assert tail.COMPILE_SECONDS[ledger.program] == 9.0
    answers = [ledger.shrink_now(64, 32) for _ in range(18)]  # each call at 64 instead of 32 idles 0.5 s
    assert answers == [False] * 17 + [True]
    assert ledger.idle_cost_s == 0.0  # the next size starts a new ledger
    ledger.ran(32, 6.0)  # compiles 32
    ledger.ran(32, 0.5)
    assert tail.COMPILE_SECONDS[ledger.program] == 5.5
    assert [ledger.shrink_now(32, 16) for _ in range(22)] == [False] * 21 + [True]


def test_before_a_warm_call_the_whole_first_call_stands_for_the_compilation():
    ledger = tail.TailRental(program=object())
    ledger.ran(8, 3.0)
    assert tail.COMPILE_SECONDS[ledger.program] == 3.0
    assert not ledger.shrink_now(8, 4)  # idles 1.5 s of the 3 s
    assert ledger.shrink_now(8, 4)


def test_a_stream_that_rents_its_tail_equals_lone_runs(monkeypatch):
    """Compilation made (nearly) unaffordable: the tail stays in its four slots, compiles nothing new, and each
    agent still equals its lone run."""
    compacted = []
    monkeypatch.setattr(_Lane, "_compact", lambda self, size: compacted.append(size))
    monkeypatch.setattr(tail, "COMPILE_SECONDS", _Unaffordable())
    configs = [TrainConfig(max_episodes=n, hidden_sizes=(12, 12)) for n in (2, 9, 3, 4)]
    shape = StreamShape.covering(configs)
    traces = graph.TRACES["run_ticks"]
    pending = iter([WorkItem(c, 30 + i) for i, c in enumerate(configs)])
    results = {}
    train_stream(
        lambda: next(pending, Supply.DONE),
        shape=shape,
        slots=4,
        on_done=lambda item, result: results.__setitem__(item.seed, result),
        ticks_per_call=32,
    )
    assert compacted == [] and graph.TRACES["run_ticks"] <= traces + 1  # at most the 4-slot program itself
    for i, config in enumerate(configs):
        alone = train(config, seed=30 + i)
        np.testing.assert_array_equal(results[30 + i].steps, alone.steps)
        np.testing.assert_array_equal(results[30 + i].losses, alone.losses)


class _Unaffordable(dict):
    def get(self, key, default=None):
        return float("inf")

    def setdefault(self, key, default=None):
        return float("inf")


def test_a_tail_skips_to_a_size_a_lone_run_compiled_and_still_equals_lone_runs(monkeypatch):
    """Seven short agents and one long one in eight slots: once the seven end, the survivor moves straight into the
    two slots its lone run compiled (not through four), and every agent equals its lone run."""
    configs = [TrainConfig(max_episodes=2, hidden_sizes=(10, 10))] * 7 + [
        TrainConfig(max_episodes=40, hidden_sizes=(10, 10))
    ]
    alone = {40 + i: train(config, seed=40 + i) for i, config in enumerate(configs)}  # compiles the 2-slot size
    moves = []
    compact = _Lane._compact
    monkeypatch.setattr(_Lane, "_compact", lambda self, size: (moves.append(size), compact(self, size)))
    monkeypatch.setattr(tail, "COMPILE_SECONDS", _Unaffordable())  # no new size may be bought
    results = {}
    pending = iter([WorkItem(c, 40 + i) for i, c in enumerate(configs)])
    train_stream(
        lambda: next(pending, Supply.DONE),
        shape=StreamShape.covering(configs),
        slots=8,
        on_done=lambda item, result: results.__setitem__(item.seed, result),
    )
    assert moves == [2]
    for seed, lone in alone.items():
        np.testing.assert_array_equal(results[seed].steps, lone.steps)
        np.testing.assert_array_equal(results[seed].losses, lone.losses)
        for ours, theirs in zip(results[seed].weights, lone.weights, strict=True):
            np.testing.assert_array_equal(ours, theirs)
