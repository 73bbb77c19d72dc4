"""Training throughput: the book's loop ported line for line vs our trainer at K=1, uniform populations at K=64 and
K=128, a sweep-like stream (configs drawn from the default search space x seeds) through K=64 refilled slots, and
agent-steps/s per environment (CartPole, Acrobot, MountainCar, each stepped inside the graph) at K=64.

Run: `.venv/bin/python benchmarks/throughput.py [--book-steps 20] [--stream-items 512]`. Prints env-steps/s and
ratios measured in this one process (the book loop and the uniform K=64 population are the baselines), first-run
times (XLA compilation included) and peak resident memory after each phase. Figures are printed, not asserted:
compare ratios across machines, not absolute times.
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import numpy as np

from dqn_core import TrainConfig, graph, train, train_population
from dqn_core.envs import make_env
from dqn_core.results import EpisodeStats, TrainResult
from dqn_core.stream import StreamShape, Supply, WorkItem, train_stream
from sweeps.study.space import SweepFile, load_sweep

DEFAULT_SWEEP = "sweeps/configs/default.yaml"


def peak_rss_mib() -> float:
    """Process high-water mark (VmHWM): monotonic, so each phase reports the peak so far."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_note() -> str:
    """Peak RSS so far and how many programs XLA has compiled in this process: each compiled population size (and
    each env and network shape) stays resident for the process, so the peak grows with their count."""
    return f"peak RSS {peak_rss_mib():.0f} MiB ({sum(graph.TRACES.values())} compiled programs so far)"


def book_loop_steps_per_s(train_steps: int, seed: int = 0) -> float:
    """The book's cells (4-4-5 .. 4-4-12) with gymnasium and Keras 3 APIs; only training steps are timed."""
    import keras

    def q_network():
        model = keras.Sequential(
            [keras.Input((4,))]
            + [keras.layers.Dense(16, activation="relu") for _ in range(3)]
            + [keras.layers.Dense(2, activation="linear")]
        )
        model.compile(loss=keras.losses.Huber(), optimizer=keras.optimizers.Adam(learning_rate=0.001))
        return model

    np.random.seed(seed)
    env = make_env("CartPole-v0")
    main_qn, target_qn = q_network(), q_network()
    memory: deque = deque(maxlen=10000)
    gamma, warmup, batch_size = 0.99, 10, 32
    state, _ = env.reset(seed=seed)
    state = np.reshape(state, [1, 4])
    total_step, timed_steps, timed_seconds = 0, 0, 0.0
    while timed_steps < train_steps:
        step = 0
        target_qn.set_weights(main_qn.get_weights())
        for _ in range(1, 201):
            step += 1  # noqa: SIM113 (kept as the book writes it)
            total_step += 1
            started = time.perf_counter()
            epsilon = 0.01 + (1.0 - 0.01) * np.exp(-0.001 * total_step)
            if epsilon > np.random.rand():
                action = env.action_space.sample()
            else:
                action = np.argmax(main_qn.predict(state, verbose=0)[0])
            next_state, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            next_state = np.reshape(next_state, [1, 4])
            if done:
                reward = 1 if step >= 190 else 0
                next_state = np.zeros(state.shape)
            else:
                reward = 0
            if step > warmup:
                memory.append((state, action, reward, next_state))
            if not done:
                state = next_state
            if len(memory) >= batch_size:
                inputs, targets = np.zeros((batch_size, 4)), np.zeros((batch_size, 2))
                idx = np.random.choice(np.arange(len(memory)), size=batch_size, replace=False)
                for i, (state_b, action_b, reward_b, next_state_b) in enumerate([memory[j] for j in idx]):
                    inputs[i] = state_b
                    if not (next_state_b == np.zeros(state_b.shape)).all(axis=1):
                        target = reward_b + gamma * np.amax(target_qn.predict(next_state_b, verbose=0)[0])
                    else:
                        target = reward_b
                    targets[i] = main_qn.predict(state_b, verbose=0)
                    targets[i][action_b] = target
                main_qn.fit(inputs, targets, epochs=1, verbose=0)
                timed_seconds += time.perf_counter() - started
                timed_steps += 1
                if timed_steps >= train_steps:
                    break
            if done:
                break
        state, _ = env.reset()
        state = np.reshape(state, [1, 4])
    env.close()
    return timed_steps / timed_seconds


def ours_steps_per_s(members: list[tuple[TrainConfig, int]], *, in_graph: bool = True) -> tuple[float, float, int]:
    """(steps/s warm, first-run seconds incl. XLA compilation, env steps) for one population."""
    started = time.perf_counter()
    train_population(members, in_graph=in_graph)
    first = time.perf_counter() - started
    started = time.perf_counter()
    results = train_population(members, in_graph=in_graph)
    seconds = time.perf_counter() - started
    steps = sum(r.total_env_steps for r in results)
    return steps / seconds, first, steps


class PopulationSizes:
    """While active, times every compiled call of the in-graph trainer by the population size it ran at, with the
    share of its slots that still trained: where a population that empties as its agents solve spends its time."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, float]] = []  # (slots, live slots, ticks run, seconds)

    def __enter__(self) -> PopulationSizes:
        self._compiled = graph.run_ticks

        def timed(state, *args):
            started = time.perf_counter()
            out = self._compiled(state, *args)
            ticks = int(out[2].numpy())
            live = int(np.sum(state.active.numpy()))
            self.calls.append((len(state.active), live, ticks, time.perf_counter() - started))
            return out

        graph.run_ticks = timed
        return self

    def __exit__(self, *exc) -> None:
        graph.run_ticks = self._compiled

    def summary(self) -> str:
        parts = []
        for size in sorted({slots for slots, *_ in self.calls}, reverse=True):
            rows = [c for c in self.calls if c[0] == size]
            seconds = sum(c[3] for c in rows)
            live = sum(c[1] * c[2] for c in rows) / max(1, sum(c[0] * c[2] for c in rows))
            parts.append(f"{size} slots {seconds:.1f} s at {100 * live:.0f}% live")
        return ", ".join(parts)


def sample_configs(sweep: SweepFile, count: int, seed: int = 0) -> list[TrainConfig]:
    """`count` configs drawn uniformly (log-uniformly where the space says log) from a sweep's search space."""
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(count):
        params = {}
        for spec in sweep.space:
            if spec.kind == "categorical":
                params[spec.name] = spec.choices[rng.integers(len(spec.choices))]
            elif spec.kind == "int":
                params[spec.name] = int(rng.integers(int(spec.low), int(spec.high) + 1))
            elif spec.log:
                params[spec.name] = float(np.exp(rng.uniform(np.log(spec.low), np.log(spec.high))))
            else:
                params[spec.name] = float(rng.uniform(spec.low, spec.high))
        configs.append(sweep.config_for(params))
    return configs


def stream_workload(configs: list[TrainConfig], seeds: int, slots: int, shape: StreamShape) -> dict[str, float]:
    """A sweep's work through refilled slots: configs x seeds, an agent stopped as soon as it can no longer reach
    five consecutive successes (as the sweep's objective does). Returns rates, timings, counts."""
    work = iter([WorkItem(c, seed) for c in configs for seed in range(seeds)])
    results: list[TrainResult] = []
    clock = {"dry": None}

    def source() -> WorkItem | Supply:
        item = next(work, None)
        if item is None:
            clock["dry"] = clock["dry"] or time.perf_counter()
            return Supply.DONE
        return item

    def still_solvable(item: WorkItem, stats: EpisodeStats) -> bool:
        needed = item.config.successes_to_solve - stats.consecutive_successes
        return stats.episode + needed <= item.config.max_episodes

    started = time.perf_counter()
    train_stream(source, shape=shape, slots=slots, on_episode=still_solvable, on_done=lambda _, r: results.append(r))
    wall = time.perf_counter() - started
    steps = sum(r.total_env_steps for r in results)
    dry = (clock["dry"] or time.perf_counter()) - started
    return {
        "wall": wall,
        "steps": steps,
        "rate": steps / wall,
        "items": len(results),
        "unsolved": sum(not r.solved for r in results),
        "tail_s": wall - dry,
        "rows": shape.batch_rows,
    }


def uniform_population(book: TrainConfig, k: int) -> tuple[float, float, int]:
    rate, first, steps = ours_steps_per_s([(book, seed) for seed in range(k)])
    return rate, first, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-steps", type=int, default=20, help="training steps of the book loop to time (20)")
    parser.add_argument("--stream-items", type=int, default=512, help="(config, seed) items in the stream (512)")
    parser.add_argument("--stream-seeds", type=int, default=4, help="seeds per drawn config in the stream (4)")
    parser.add_argument("--skip-book", action="store_true", help="skip the (slow) book loop baseline")
    parser.add_argument("--envs-only", action="store_true", help="only the per-environment figures")
    args = parser.parse_args()
    if args.envs_only:
        per_env_rates()
        return
    book = TrainConfig()

    book_rate = float("nan")
    if not args.skip_book:
        print(f"book loop, ported line for line: timing {args.book_steps} training steps ...", flush=True)
        book_rate = book_loop_steps_per_s(args.book_steps)
        print(f"  {book_rate:.3f} steps/s   {memory_note()}", flush=True)

    started = time.perf_counter()
    single = train(book, seed=0)  # compiles the K=1 graph
    k1_first = time.perf_counter() - started
    started = time.perf_counter()
    single = train(book, seed=0)
    k1_rate = single.total_env_steps / (time.perf_counter() - started)
    print(
        f"ours K=1 (book config, seed 0, {single.total_env_steps} steps): {k1_rate:,.0f} steps/s = "
        f"{k1_rate / book_rate:,.0f}x the book loop (first run incl. compilation {k1_first:.1f} s)   " + memory_note(),
        flush=True,
    )

    uniform: dict[int, float] = {}
    for k in (64, 128):
        rate, first, steps = uniform_population(book, k)
        uniform[k] = rate
        print(
            f"ours uniform K={k} (book config, seeds 0..{k - 1}, {steps} agent-steps): {rate:,.0f} agent-steps/s = "
            f"{rate / book_rate:,.0f}x the book loop, {rate / k1_rate:.1f}x K=1 "
            f"(first run incl. compilation {first:.1f} s)   {memory_note()}",
            flush=True,
        )
        with PopulationSizes() as sizes:
            results = train_population([(book, seed) for seed in range(k)])
        longest = sorted(r.total_env_steps for r in results)
        print(
            f"  where a warm K={k} run spends its time (run once more, timed per call): {sizes.summary()}; the "
            f"slowest agent trains {longest[-1]:,} steps, the median {longest[len(longest) // 2]:,}",
            flush=True,
        )

    sweep = load_sweep(DEFAULT_SWEEP)
    n_configs = max(1, args.stream_items // args.stream_seeds)
    drawn = sample_configs(sweep, n_configs)
    workloads = [
        (
            f"{n_configs} configs drawn from {DEFAULT_SWEEP} x {args.stream_seeds} seeds",
            drawn,
            sweep.stream_shape(),
        ),
        (
            f"the sweep's base config x {n_configs * args.stream_seeds} seeds (isolates refilling from padding)",
            [sweep.base] * n_configs,
            StreamShape.covering([sweep.base]),
        ),
    ]
    for label, configs, shape in workloads:
        w = stream_workload(configs, args.stream_seeds, slots=64, shape=shape)
        print(
            f"stream workload, {label}, through K=64 refilled slots ({w['items']} items, {w['unsolved']} unsolved, "
            f"minibatch rows {w['rows']}): {w['rate']:,.0f} agent-steps/s = {100 * w['rate'] / uniform[64]:.0f}% of "
            f"uniform K=64 ({w['steps']} agent-steps in {w['wall']:.1f} s incl. compilation; tail after the source "
            f"ran dry {w['tail_s']:.1f} s = {100 * w['tail_s'] / w['wall']:.0f}% of the wall time)   " + memory_note(),
            flush=True,
        )
    per_env_rates()


ENV_SWEEPS = {"Acrobot-v1": "sweeps/configs/acrobot.yaml", "MountainCar-v0": "sweeps/configs/mountaincar.yaml"}
ENV_EPISODES = 20  # enough steps for a rate, far from solving: the rate, not the learning, is measured


def per_env_rates(k: int = 64) -> None:
    """K agents of each env for ENV_EPISODES episodes: the book's settings on every env (the env's own cost next to
    CartPole's, same network and batch) and each env's sweep base config (what its sweep trains)."""
    rows = [
        ("CartPole-v0", "book settings", TrainConfig(), True),
        ("CartPole-v0", "book settings", TrainConfig(), False),
    ]
    for env_id, path in ENV_SWEEPS.items():
        rows.append((env_id, "book settings", TrainConfig(env_id=env_id), True))
        rows.append((env_id, f"{path} base", load_sweep(path).base, True))
    baseline = None
    for env_id, label, config, in_graph in rows:
        config = config.replace(max_episodes=ENV_EPISODES)
        rate, first, steps = ours_steps_per_s([(config, seed) for seed in range(k)], in_graph=in_graph)
        baseline = baseline or rate
        where = "in-graph" if in_graph else "host-stepped (gymnasium SyncVectorEnv)"
        print(
            f"env {env_id}, {label} (hidden {list(config.hidden_sizes)}, batch {config.batch_size}), {where} K={k}, "
            f"{ENV_EPISODES} episodes each ({steps} agent-steps): {rate:,.0f} agent-steps/s = "
            f"{100 * rate / baseline:.0f}% of CartPole-v0 in-graph with the book's settings (first run incl. "
            f"compilation {first:.1f} s)   {memory_note()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
