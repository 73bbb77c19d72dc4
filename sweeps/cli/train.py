"""`dqn-sweep train`: train one agent and print the book-style episode log."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweeps.cli.common import Commands


def add_parser(commands: Commands) -> None:
    train = commands.add_parser(
        "train",
        help="train one agent and print the book-style episode log",
        description="Train one DQN agent (the book's configuration unless told otherwise) and print one line per "
        "episode, then a summary. Stops at the configured number of consecutive successes.",
        epilog=_config_help,  # called only when help is shown
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--config", metavar="FILE.yaml", help="YAML file of config keys (or with a `trainer:` section)")
    train.add_argument("--seed", type=int, default=0, help="random seed; same seed and config give the same run (0)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, repeatable, e.g. --set gamma=0.95 --set hidden_sizes=32,32",
    )
    train.add_argument("--save", metavar="AGENT.npz", help="save the trained agent (weights + config) here")
    train.add_argument("--quiet", action="store_true", help="print only the summary")
    train.set_defaults(handler=handle)


def _config_help() -> str:
    from dqn_core.config import field_default, field_doc, field_names

    header = f"config keys for --set and YAML files:\n  {'key':<24} {'default':<12} (defaults are the book's)\n"
    return header + "\n".join(f"  {name:<24} {field_default(name):<12} {field_doc(name)}" for name in field_names())


def handle(args: argparse.Namespace) -> int:
    from dqn_core.config import TrainConfig, load_config, parse_assignment
    from dqn_core.errors import shown
    from dqn_core.memory import check_this_process
    from dqn_core.shape import SEED_LIMIT, StreamShape
    from sweeps.stores.locations import storage_url, tracking_uri
    from sweeps.stores.output_paths import StoreFiles, refuse_store, write_output
    from sweeps.stores.preflight import bounded, check_output_file

    overrides = dict(parse_assignment(item) for item in args.overrides)
    config = load_config(args.config, overrides) if args.config else TrainConfig.from_mapping(overrides, source="--set")
    bounded("--seed", args.seed, 0, SEED_LIMIT - 1)
    check_this_process(StreamShape.covering([config]), 1, slots_flag=None, what="one agent (a population of 2 slots)")
    uri = tracking_uri(None)  # train opens no store, but --save must not land on the default ones either
    stores = StoreFiles.of(storage=storage_url(None, uri), tracking=uri, configs=[args.config] if args.config else [])
    if args.save:
        refuse_store(check_output_file(Path(args.save), "--save", (".npz",)), "--save", stores)

    from dqn_core.trainer import EpisodeStats, train  # TensorFlow loads only once the input is known to be good

    def log_episode(_agent: int, stats: EpisodeStats) -> None:
        if not args.quiet:
            print(f"Episode: {stats.episode}, Steps: {stats.steps}, Epsilon: {stats.epsilon:.4f}", flush=True)

    result = train(config, seed=args.seed, on_episode=log_episode)
    rate = result.total_env_steps / max(result.wall_time_s, 1e-9)
    if result.solved:
        outcome = f"solved in {result.episodes_to_solve} episodes ({config.successes_to_solve} consecutive successes)"
    else:
        outcome = f"not solved within {config.max_episodes} episodes"
    print(
        f"{config.env_id} seed {args.seed}: {outcome}; {result.total_env_steps} env steps in "
        f"{result.wall_time_s:.2f} s ({rate:,.0f} steps/s, compilation included)"
    )
    if args.save:
        write_output(Path(args.save), result.agent().save, option="--save", stores=stores)
        print(f"saved agent to {shown(args.save)}")
    return 0
