"""Episodes to five consecutive successes for the book configuration over many seeds, trained as one population.

Run: `.venv/bin/python benchmarks/sample_efficiency.py [--seeds 32]`. Prints every seed's value, the median with a
bootstrap 95% CI, and how many seeds never solved (counted as max_episodes + 1, i.e. censored).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dqn_core import TrainConfig, train_population


def bootstrap_median_ci(values: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, len(values)), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32, help="number of seeds, 0..N-1 (32)")
    args = parser.parse_args()
    config = TrainConfig()
    started = time.perf_counter()
    results = train_population([(config, seed) for seed in range(args.seeds)])
    seconds = time.perf_counter() - started
    values = np.array([r.episodes_to_solve or config.max_episodes + 1 for r in results])
    low, high = bootstrap_median_ci(values)
    print(f"book config, {args.seeds} seeds as one population, {seconds:.1f} s (compilation included)")
    print("episodes to solve per seed:", " ".join(str(v) for v in values))
    print(f"median {np.median(values):.1f}  (bootstrap 95% CI {low:.1f} .. {high:.1f})")
    print(f"unsolved within {config.max_episodes} episodes: {sum(not r.solved for r in results)} of {args.seeds}")


if __name__ == "__main__":
    main()
