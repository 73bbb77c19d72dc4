"""Lanes: a population of two compute shapes, trained mixed (lanes, one compiled population per shape), mixed in one
covering shape (what a stream did before lanes), and as two populations apart, all in this one process.

The mixed population is `--agents` book agents (16-16-16, batch 32) and as many 64-64/batch-64 agents, each with
its own seed. The issue's target: mixed-with-lanes wall time over the sum of the two apart <= 1.2 (it was 3.7 with
one covering shape). Every variant runs once untimed first with the same members and slot counts, so the timed
runs reuse compiled programs; the first runs' times are printed too (they include XLA compilation per lane and
size). Also printed: whether every agent's result is the same in all three (it must be, bit for bit), and the
process's peak RSS.

Run: `.venv/bin/python benchmarks/lanes.py [--agents 32] [--max-episodes 40]`. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from throughput import peak_rss_mib  # benchmarks/ is on the path of a script run from it

from dqn_core import TrainConfig, graph, train_population
from dqn_core.lanes import describe, plan_lanes
from dqn_core.stream import StreamShape


def timed(run) -> tuple[float, list]:
    started = time.perf_counter()
    results = run()
    return time.perf_counter() - started, results


def same(a, b) -> bool:
    return a.steps.tolist() == b.steps.tolist() and all(
        np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=32, help="agents of each shape (default 32)")
    parser.add_argument("--max-episodes", type=int, default=40, help="episode budget per agent (default 40)")
    args = parser.parse_args()
    book = TrainConfig(max_episodes=args.max_episodes)
    wide = book.replace(hidden_sizes=(64, 64), batch_size=64)
    n = args.agents
    book_members = [(book, seed) for seed in range(n)]
    wide_members = [(wide, 1000 + seed) for seed in range(n)]
    mixed = [member for pair in zip(book_members, wide_members, strict=True) for member in pair]
    covering = StreamShape.covering([book, wide])
    lanes = plan_lanes([book, wide]).shapes
    print(f"{n} book agents + {n} 64-64/batch-64 agents, {args.max_episodes} episodes at most each")
    print(f"lanes: {', '.join(describe(s) for s in lanes)}; covering shape: {describe(covering)}")

    variants = {
        "book apart": lambda: train_population(book_members),
        "64-64 apart": lambda: train_population(wide_members),
        "mixed, lanes": lambda: train_population(mixed),
        "mixed, one covering shape": lambda: train_population(mixed, shape=covering),
    }
    first, warm, results = {}, {}, {}
    for name, run in variants.items():
        programs = graph.TRACES["run_ticks"]
        first[name], _ = timed(run)
        print(f"  first run  {name:<26} {first[name]:7.1f} s  ({graph.TRACES['run_ticks'] - programs} compiled)")
    for name, run in variants.items():
        warm[name], results[name] = timed(run)
        print(f"  warm run   {name:<26} {warm[name]:7.1f} s")
    apart = warm["book apart"] + warm["64-64 apart"]
    steps = sum(r.total_env_steps for r in results["mixed, lanes"])
    print(f"agent-steps in the mixed population: {steps:,}")
    print(f"mixed with lanes / sum apart:          {warm['mixed, lanes'] / apart:5.2f}  (target <= 1.2)")
    print(f"mixed, one covering shape / sum apart: {warm['mixed, one covering shape'] / apart:5.2f}")
    print(f"one covering shape / lanes:            {warm['mixed, one covering shape'] / warm['mixed, lanes']:5.2f}x")
    print(f"compile time of the lanes (first run - warm run): {first['mixed, lanes'] - warm['mixed, lanes']:.1f} s")
    separate = results["book apart"] + results["64-64 apart"]
    by_member = dict(zip(book_members + wide_members, separate, strict=True))
    identical = all(
        same(by_member[member], lanes_result) and same(by_member[member], covering_result)
        for member, lanes_result, covering_result in zip(
            mixed, results["mixed, lanes"], results["mixed, one covering shape"], strict=True
        )
    )
    print(f"every agent's result identical in all three: {'yes' if identical else 'NO'}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
