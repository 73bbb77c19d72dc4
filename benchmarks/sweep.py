"""A sweep, timed: `sweeps/configs/default.yaml` (or `--config`) into fresh stores in a temp dir, verdict included.

Run: `.venv/bin/python benchmarks/sweep.py [--config FILE] [--lanes N] [--n-trials N] [--no-baseline]`. Prints the
sweep's wall time, its (trial, seed) runs, its agent-steps/s as a ratio of a uniform population of book agents
trained in the same process (64 agents, the sweep's slot count), a seeds-per-trial histogram, MLflow's share of
the wall time and the verdict. The uniform figure is measured after the sweep; its compilation is not counted.

`--lanes N` caps the sweep's lanes (`dqn_core.lanes.MAX_LANES`; 1 compiles one shape covering the whole space, as
before lanes). With more than one lane it also prints the ideal: the seconds the sweep's agent-steps would take,
lane by lane, at the rate of a full uniform population compiled for that lane (`--ideal-episodes` episodes per
agent, measured in this process after the sweep), and the sweep's rate as a share of it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from throughput import peak_rss_mib  # benchmarks/ is on the path of a script run from it

from dqn_core import graph, lanes
from dqn_core.lanes import cheapest_fitting, describe
from sweeps.cli import DEFAULT_SWEEP
from sweeps.run.options import SweepOptions
from sweeps.run.summary import describe_counts, describe_seeds
from sweeps.run.sweep import run_sweep
from sweeps.study.space import load_sweep

UNIFORM_SEEDS = range(1000, 1064)  # 64 book agents, seeds no trial uses
RECHECK_START = 20_000  # further unseen seeds: is what the verdict said still true there?


def uniform_rate(shape) -> float:
    """Agent-steps/s of 64 book agents trained to the end as one population, in the sweep's compiled shape; a
    first run of the same population compiles every size its tail shrinks through and is discarded."""
    from dqn_core.config import TrainConfig
    from dqn_core.trainer import train_population

    config = TrainConfig(max_episodes=300)
    members = [(config, seed) for seed in UNIFORM_SEEDS]
    train_population(members, shape=shape)
    started = time.perf_counter()
    results = train_population(members, shape=shape)
    seconds = time.perf_counter() - started
    return sum(r.total_env_steps for r in results) / seconds


def steps_by_lane(options: SweepOptions) -> dict:
    """The finished trials' agent-steps, by the lane each trial's config trains in."""
    import optuna

    from sweeps.stores.locations import open_optuna_storage
    from sweeps.study.schema import TRIAL_ENV_STEPS, trial_config

    study = optuna.load_study(study_name=options.study_name, storage=open_optuna_storage(options.storage))
    shapes = options.lanes().shapes
    out = dict.fromkeys(shapes, 0)
    for trial in study.get_trials(deepcopy=False):
        if TRIAL_ENV_STEPS in trial.user_attrs:
            lane = shapes[cheapest_fitting(shapes, trial_config(study, trial))]
            out[lane] += trial.user_attrs[TRIAL_ENV_STEPS]
    return out


def lane_rate(shape, base, episodes: int) -> float:
    """Agent-steps/s of 64 agents using everything the lane computes (its network, minibatch, updates per step
    and Double DQN), as one population in the lane's shape; a first run compiles and is discarded."""
    from dqn_core.trainer import train_population

    config = base.replace(
        max_episodes=episodes,
        hidden_sizes=shape.hidden_sizes,
        batch_size=shape.batch_rows,
        updates_per_step=shape.max_updates,
        double_dqn=shape.double_dqn,
        memory_size=shape.memory_size,
    )
    members = [(config, seed) for seed in UNIFORM_SEEDS]
    train_population(members, shape=shape)
    started = time.perf_counter()
    results = train_population(members, shape=shape)
    return sum(r.total_env_steps for r in results) / (time.perf_counter() - started)


def recheck(options: SweepOptions, verdict) -> str:
    """The verdict's winner and the book again, on seeds neither the sweep nor the verdict used."""
    import optuna

    from sweeps.run.verdict import held_out_values
    from sweeps.stores.locations import open_optuna_storage
    from sweeps.study.schema import book_config, trial_config
    from sweeps.study.stats import aggregate, paired_test

    study = optuna.load_study(study_name=options.study_name, storage=open_optuna_storage(options.storage))
    seeds = list(range(RECHECK_START, RECHECK_START + len(verdict.seeds)))
    winner = trial_config(study, study.trials[verdict.winner_trial])
    mine, book = held_out_values([winner, book_config(study)], seeds, shape=options.sweep.stream_shape())
    paired = paired_test(mine, book)
    p = f"{paired.p_value:.2g}" if paired else "n/a"
    return f"winner median {aggregate(list(mine.values())):g} vs book {aggregate(list(book.values())):g}, paired p={p}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=None, help="override the file's n_trials")
    parser.add_argument("--no-baseline", action="store_true", help="skip the uniform population")
    parser.add_argument("--config", default=DEFAULT_SWEEP, help="the sweep file (default: the default sweep)")
    parser.add_argument("--lanes", type=int, default=None, help="cap on the sweep's lanes (1: one covering shape)")
    parser.add_argument("--ideal-episodes", type=int, default=60, help="episodes per agent of each lane's rate")
    args = parser.parse_args()
    if args.lanes is not None:
        lanes.MAX_LANES = args.lanes
    sweep = load_sweep(args.config)
    settings = sweep.study.replace(n_trials=args.n_trials)
    recheck_line = ""
    with tempfile.TemporaryDirectory() as folder:
        options = SweepOptions(
            sweep=sweep,
            study_name="benchmark",
            study=settings,
            storage=f"journal:{Path(folder) / 'optuna-journal.log'}",
            tracking_uri=f"sqlite:///{Path(folder) / 'mlflow.db'}",
            progress=False,
        )
        started = time.perf_counter()
        programs = graph.TRACES["run_ticks"]
        summary = run_sweep(options)
        seconds = time.perf_counter() - started
        compiled = graph.TRACES["run_ticks"] - programs
        lane_steps = steps_by_lane(options)
        if summary.verdict is not None and not summary.verdict.winner_is_book:
            recheck_line = recheck(options, summary.verdict)
    tracked = summary.tracking_seconds
    rate = summary.env_steps / seconds
    plan = options.lanes()
    print(f"{args.config}: {len(plan.shapes)} lanes ({', '.join(describe(s) for s in plan.shapes)})")
    print(f"  compiled programs during the sweep (lane x size, verdict included): {compiled}")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB")
    print(
        f"sweep: {settings.n_trials} trials, up to {settings.max_seeds} seeds each, {settings.slots} slots, "
        f"{settings.sampler} + {settings.pruner} pruner (p < {settings.p_threshold}, after {settings.startup_seeds} "
        f"seeds), verdict on {settings.validate_seeds} unseen seeds"
    )
    print(f"  {describe_counts(summary.counts)}; best trial {summary.best_number}: {summary.best_value}")
    print(f"  wall time {seconds:.1f} s (target <= 180 s), verdict included ({tracked['verdict']:.2f} s logging it)")
    print(f"  (trial, seed) runs: {summary.seed_runs} (target >= 960), {summary.env_steps:,} env steps")
    print(f"  seeds per finished trial (trials x seeds): {describe_seeds(summary.seeds_per_trial)}")
    share = 100 * tracked["trials"] / seconds
    print(f"  MLflow, trials' runs: {tracked['trials']:.2f} s = {share:.1f}% of the sweep (target <= 5%)")
    print(f"  MLflow, creating the store: {tracked['setup']:.2f} s; best agent + GIF: {tracked['best']:.2f} s")
    if summary.verdict is not None:
        print(f"  verdict: {summary.verdict.line}")
    if recheck_line:
        print(f"  the same two on {len(summary.verdict.seeds)} further unseen seeds: {recheck_line}")
    if len(plan.shapes) > 1:
        ideal = sum(steps / lane_rate(shape, sweep.base, args.ideal_episodes) for shape, steps in lane_steps.items())
        share = ideal * summary.env_steps / sum(lane_steps.values()) / seconds
        print(
            f"  ideal (each lane's steps at its own full uniform population's rate): {ideal:.1f} s for the trials' "
            f"steps; the sweep ran at {100 * share:.0f}% of the ideal rate (target >= 60%)"
        )
    if args.no_baseline:
        print(f"  sweep agent-steps/s: {rate:,.0f}")
        return
    uniform = uniform_rate(sweep.stream_shape())
    print(
        f"  sweep agent-steps/s: {rate:,.0f} = {100 * rate / uniform:.0f}% of a uniform population of 64 book "
        f"agents in the same shape ({uniform:,.0f}), whole sweep wall time counted"
    )


if __name__ == "__main__":
    main()
