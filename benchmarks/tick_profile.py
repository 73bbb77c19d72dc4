"""Where a training step's time goes: XLA's own timing of every kernel of the compiled tick, each attributed to the
part of the tick its ops come from (act, env, replay add, replay sample, update, or the loop's own bookkeeping),
plus the share of a stream's wall time spent on the host between compiled calls.

Run: `.venv/bin/python benchmarks/tick_profile.py [--slots 64] [--rows 32]`. Printed, not asserted. The kernel
timings come from TensorFlow's profiler with XLA's per-kernel trace events switched on (this script adds
`--xla_cpu_enable_xprof_traceme=true` to XLA_FLAGS before TensorFlow loads); tracing slows a tick a little, so read
the shares, and the untraced time per tick printed beside them. A fused kernel counts for the part its result comes
from (XLA fuses across parts, e.g. a layer's forward pass into the loss).
"""

from __future__ import annotations

import os

# Before TensorFlow loads: XLA reads its flags once.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_enable_xprof_traceme=true".strip()

import argparse
import collections
import re
import shutil
import tempfile
import time
from pathlib import Path

from dqn_core import TrainConfig, graph, replay, xla
from dqn_core.quiet_tf import tf
from dqn_core.stream import StreamShape, Supply, WorkItem, _Lane, train_stream
from sweeps.cli import DEFAULT_SWEEP
from sweeps.study.space import load_sweep

TICKS = 256
CALLS = 8
PARTS = ("act", "env", "replay_add", "replay_sample", "update")
"""The name scopes `graph.tick` puts its parts in."""
BOOKKEEPING = "loop bookkeeping"


def part_of(op_name: str) -> str:
    """The tick part an op belongs to, from its scoped name (e.g. `gradient_tape/while/update/...` -> update)."""
    for component in op_name.split("/"):
        scope = re.sub(r"_\d+$", "", component)  # a scope entered twice is `env_1` the second time
        if scope in PARTS:
            return scope
    return BOOKKEEPING


def _full_stream(slots: int, shape: StreamShape) -> _Lane:
    """Every slot holds a never-finishing book agent (its batch the shape's rows, at most the book's 32)."""
    config = TrainConfig(max_episodes=1_000_000, successes_to_solve=1_000_000, batch_size=min(shape.batch_rows, 32))
    stream = _Lane(shape, slots, TICKS)
    stream._place([(i, WorkItem(config, i)) for i in range(slots)])
    return stream


def first_call_s(slots: int, shape: StreamShape) -> float:
    """Seconds for the first compiled call of a stream graph: XLA compilation plus one chunk of ticks."""
    stream = _full_stream(slots, shape)
    compiled = graph.compiled_in_place(graph._run_ticks)
    started = time.perf_counter()
    _, events, _ = compiled(stream.state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    return time.perf_counter() - started


def ms_per_tick(slots: int, rows: int) -> float:
    """Milliseconds per tick of a full population of never-finishing book agents (warm, untraced)."""
    stream = _full_stream(slots, StreamShape(batch_rows=rows))
    state, events, _ = graph.run_ticks(stream.state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    started = time.perf_counter()
    for _ in range(CALLS):
        state, events, _ = graph.run_ticks(state, stream.hyper, TICKS, stream.features)
    events.ended.numpy()
    return (time.perf_counter() - started) / (TICKS * CALLS) * 1e3


def kernel_ms_per_tick(slots: int, rows: int) -> dict[str, float] | None:
    """Traced milliseconds per tick of XLA's kernels, summed by tick part; None where TensorFlow lacks the
    profiler's protobufs (a private module)."""
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        return None
    stream = _full_stream(slots, StreamShape(batch_rows=rows))
    compiled = xla.compiled(graph._run_ticks)  # the replay passed as tensors: the same kernels, simpler to call
    state = stream.state._replace(memory=replay.read(stream.state.memory))
    args = (stream.hyper, TICKS, stream.features)
    for _ in range(2):
        state, events, _ = compiled(state, *args)
    events.ended.numpy()
    hlo = compiled.experimental_get_compiler_ir(state, *args)(stage="optimized_hlo")
    kernel_ops = dict(re.findall(r'%([\w.\-]+) = [^\n]*?op_name="([^"]+)"', hlo))
    logdir = tempfile.mkdtemp(prefix="tick_profile_")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(CALLS):
            state, events, _ = compiled(state, *args)
        events.ended.numpy()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    by_part: dict[str, float] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name in kernel_ops:
                    by_part[part_of(kernel_ops[name])] += event.duration_ps / 1e9 / (TICKS * CALLS)
    return dict(by_part)


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
    whole = ms_per_tick(args.slots, args.rows)
    print(f"K={args.slots}, {args.rows} minibatch rows: {whole:.3f} ms per tick for all agents (untraced)", flush=True)
    kernels = kernel_ms_per_tick(args.slots, args.rows)
    if kernels is None:
        print("  (no kernel profile: this TensorFlow lacks tensorflow.tsl.profiler.protobuf)", flush=True)
    else:
        total = sum(kernels.values())
        print(
            f"  XLA kernels, traced: {total:.3f} ms of kernel time per tick (independent kernels may run side by side "
            "on the cores, so this can exceed the tick), by part of the tick:",
            flush=True,
        )
        for part in (*PARTS, BOOKKEEPING):
            ms = kernels.get(part, 0.0)
            print(f"    {part.replace('_', ' '):18s} {ms:7.3f} ms ({100 * ms / total:3.0f}%)", flush=True)
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
