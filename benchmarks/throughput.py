"""Training throughput: the book's loop ported line for line vs our population trainer at K=1 and K=64.

Run: `.venv/bin/python benchmarks/throughput.py [--book-steps 20] [--population 64]`. Prints env-steps/s and ratios
measured in this one process (the book loop is the baseline), plus peak resident memory after each phase.
Figures are printed, not asserted: compare ratios across machines, not absolute times.
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import numpy as np

from dqn_core import TrainConfig, train, train_population
from dqn_core.envs import make_env


def peak_rss_mib() -> float:
    """Process high-water mark (VmHWM): monotonic, so each phase reports the peak so far."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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


def ours_steps_per_s(members: list[tuple[TrainConfig, int]]) -> tuple[float, float, int]:
    """(steps/s warm, first-run seconds incl. XLA compilation, env steps) for one population."""
    started = time.perf_counter()
    train_population(members)
    first = time.perf_counter() - started
    started = time.perf_counter()
    results = train_population(members)
    seconds = time.perf_counter() - started
    steps = sum(r.total_env_steps for r in results)
    return steps / seconds, first, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-steps", type=int, default=20, help="training steps of the book loop to time (20)")
    parser.add_argument("--population", type=int, default=64, help="agents in the population run (64)")
    args = parser.parse_args()
    book = TrainConfig()

    print(f"book loop, ported line for line: timing {args.book_steps} training steps ...", flush=True)
    book_rate = book_loop_steps_per_s(args.book_steps)
    print(f"  {book_rate:.3f} steps/s   peak RSS {peak_rss_mib():.0f} MiB", flush=True)

    single = train(book, seed=0)  # compiles the K=1 graph
    started = time.perf_counter()
    single = train(book, seed=0)
    k1_rate = single.total_env_steps / (time.perf_counter() - started)
    print(
        f"ours K=1 (book config, seed 0, {single.total_env_steps} steps): {k1_rate:,.0f} steps/s = "
        f"{k1_rate / book_rate:,.0f}x the book loop   peak RSS {peak_rss_mib():.0f} MiB",
        flush=True,
    )

    members = [(book, seed) for seed in range(args.population)]
    kn_rate, first, steps = ours_steps_per_s(members)
    print(
        f"ours K={args.population} (book config, seeds 0..{args.population - 1}, {steps} agent-steps): "
        f"{kn_rate:,.0f} agent-steps/s = {kn_rate / book_rate:,.0f}x the book loop, {kn_rate / k1_rate:.1f}x K=1 "
        f"(first run incl. compilation {first:.1f} s)   peak RSS {peak_rss_mib():.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
