"""Episodes to five consecutive successes of each env's default configuration over many seeds, as one population.

Run: `.venv/bin/python benchmarks/sample_efficiency.py [--seeds 32] [--env cartpole|acrobot|mountaincar|all]`.
The default configuration is the book's on CartPole-v0 and the base of `sweeps/configs/<env>.yaml` elsewhere.
Prints every seed's value, the median with a bootstrap 95% CI, and how many seeds never solved (counted as
max_episodes + 1, i.e. censored).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dqn_core import TrainConfig, train_population
from sweeps.study.space import load_sweep

DEFAULTS = {
    "cartpole": lambda: TrainConfig(),
    "acrobot": lambda: load_sweep("sweeps/configs/acrobot.yaml").base,
    "mountaincar": lambda: load_sweep("sweeps/configs/mountaincar.yaml").base,
}


def bootstrap_median_ci(values: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, len(values)), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32, help="number of seeds, 0..N-1 (32)")
    parser.add_argument("--env", choices=[*DEFAULTS, "all"], default="cartpole", help="which default config (cartpole)")
    args = parser.parse_args()
    for name in DEFAULTS if args.env == "all" else [args.env]:
        report(name, DEFAULTS[name](), args.seeds)


def report(name: str, config: TrainConfig, seeds: int) -> None:
    started = time.perf_counter()
    results = train_population([(config, seed) for seed in range(seeds)])
    seconds = time.perf_counter() - started
    values = np.array([r.episodes_to_solve or config.max_episodes + 1 for r in results])
    low, high = bootstrap_median_ci(values)
    steps = sum(r.total_env_steps for r in results)
    print(
        f"{config.env_id} ({name} default config), {seeds} seeds as one population, {seconds:.1f} s "
        f"(compilation included), {steps} agent-steps = {steps / seconds:,.0f} agent-steps/s"
    )
    print("episodes to solve per seed:", " ".join(str(v) for v in values))
    print(f"median {np.median(values):.1f}  (bootstrap 95% CI {low:.1f} .. {high:.1f})")
    unsolved = sum(not r.solved for r in results)
    print(f"unsolved within {config.max_episodes} episodes: {unsolved} of {seeds}", flush=True)


if __name__ == "__main__":
    main()
