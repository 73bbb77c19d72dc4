"""Where a training step's time goes: the compiled tick timed whole and with one part at a time replaced by a
trivial stand-in (an ablation profile: XLA fuses across parts, so a part's cost is the time its removal saves),
plus the share of a stream's wall time spent on the host between compiled calls.

Run: `.venv/bin/python benchmarks/tick_profile.py [--slots 64] [--rows 32]`. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from dqn_core import TrainConfig, graph, update
from dqn_core.quiet_tf import tf
from dqn_core.stream import StreamShape, Supply, WorkItem, _Stream, train_stream
from sweeps.cli import DEFAULT_SWEEP
from sweeps.space import load_sweep

TICKS = 256
CALLS = 8


# (module, attribute, stand-in) per part of the tick: each stand-in keeps shapes and dtypes, does ~nothing.
PARTS = {
    "update": (graph, "dqn_update", lambda p, t, a, b, h, apply, double=False: (p, a, tf.zeros_like(h.gamma))),
    "replay sample": (
        graph.replay,
        "sample",
        lambda r, k, c, rows, stream=0: update.Batch(
            *(x[:, :rows] for x in (r.obs, r.action, r.reward, r.next_obs, r.terminated, r.truncated))
        ),
    ),
    "replay add": (graph.replay, "add", lambda r, t, s, c: r._replace(count=tf.minimum(r.count + 1, c))),
    "act (forward pass)": (graph, "q_values", lambda p, o: tf.zeros([tf.shape(o)[0], 1, 2])),
    "env step": (graph.cartpole, "cartpole_step", lambda s, a: (s * 0.999, tf.zeros_like(a, tf.bool))),
}


@contextlib.contextmanager
def _without(part: str | None):
    """While tracing, one collaborator of graph.tick is swapped for its stand-in."""
    if part is None:
        yield
        return
    module, name, stand_in = PARTS[part]
    original = getattr(module, name)
    setattr(module, name, stand_in)
    try:
        yield
    finally:
        setattr(module, name, original)


def first_call_s(slots: int, shape: StreamShape) -> float:
    """Seconds for the first compiled call of a stream graph: XLA compilation plus one chunk of ticks."""
    config = TrainConfig(max_episodes=1_000_000, successes_to_solve=1_000_000)
    stream = _Stream(shape, slots, TICKS)
    stream._place([(i, WorkItem(config, i)) for i in range(slots)])
    compiled = graph.compiled_in_place(graph._run_ticks)
    started = time.perf_counter()
    _, events, _ = compiled(stream.state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    return time.perf_counter() - started


def ms_per_tick(slots: int, rows: int, part: str | None) -> float:
    """Milliseconds per tick of a full population of never-finishing book agents, traced afresh."""
    config = TrainConfig(max_episodes=1_000_000, successes_to_solve=1_000_000, batch_size=min(rows, 32))
    shape = StreamShape(batch_rows=rows, memory_size=config.memory_size)
    stream = _Stream(shape, slots, TICKS)
    stream._place([(i, WorkItem(config, i)) for i in range(slots)])
    compiled = graph.compiled_in_place(graph._run_ticks)
    with _without(part):
        state, events, _ = compiled(stream.state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    started = time.perf_counter()
    for _ in range(CALLS):
        state, events, _ = compiled(state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    return (time.perf_counter() - started) / (TICKS * CALLS) * 1e3


def host_share(slots: int, items: int) -> tuple[float, float]:
    """(seconds inside compiled calls, wall seconds) for a warm stream of book agents with refills."""
    compiled = graph.run_ticks
    inside = {"s": 0.0}

    def timed(*args):
        started = time.perf_counter()
        out = compiled(*args)
        out[0].active.numpy()
        inside["s"] += time.perf_counter() - started
        return out

    def once() -> float:
        work = iter([WorkItem(TrainConfig(max_episodes=300), seed) for seed in range(items)])
        inside["s"] = 0.0
        started = time.perf_counter()
        train_stream(lambda: next(work, Supply.DONE), shape=StreamShape(), slots=slots)
        return time.perf_counter() - started

    graph.run_ticks = timed
    try:
        once()  # compiles every population size the stream and its tail use
        wall = once()
    finally:
        graph.run_ticks = compiled
    return inside["s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=64, help="population size (64)")
    parser.add_argument("--rows", type=int, default=32, help="minibatch rows compiled in (32: the book's batch)")
    parser.add_argument("--items", type=int, default=128, help="book agents for the host-share stream (128)")
    args = parser.parse_args()
    whole = ms_per_tick(args.slots, args.rows, None)
    print(f"K={args.slots}, {args.rows} minibatch rows: {whole:.3f} ms per tick for all agents", flush=True)
    for part in PARTS:
        without = ms_per_tick(args.slots, args.rows, part)
        saved = whole - without
        print(f"  {part:20s} {saved:7.3f} ms ({100 * saved / whole:3.0f}% of the tick)", flush=True)
    sweep_shape = load_sweep(DEFAULT_SWEEP).stream_shape()
    print(
        f"first compiled call of the K={args.slots} stream for the default sweep's shape ({sweep_shape.batch_rows} "
        f"minibatch rows): {first_call_s(args.slots, sweep_shape):.1f} s (compilation + {TICKS} ticks)",
        flush=True,
    )
    inside, wall = host_share(args.slots, args.items)
    print(
        f"host visits (hooks, bookkeeping, refills) in a stream of {args.items} book agents: "
        f"{wall - inside:.2f} s of {wall:.2f} s wall = {100 * (wall - inside) / wall:.1f}%",
        flush=True,
    )


if __name__ == "__main__":
    main()
