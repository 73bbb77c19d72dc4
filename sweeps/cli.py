"""`dqn-sweep`: the command line. `main(argv) -> int` so tests drive it in-process.

Heavy imports (TensorFlow, Optuna, MLflow) happen inside the commands, so `--help` and argument errors are instant.
Every user error ends as one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_USAGE = 2


class UsageError(Exception):
    """Raised by argument parsing; becomes one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _config_help() -> str:
    from dqn_core.config import field_doc, field_names

    from_book = "config keys for --set and YAML files (defaults are the book's):\n"
    return from_book + "\n".join(f"  {name:<24} {field_doc(name)}" for name in field_names())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dqn-sweep",
        description="Hyperparameter sweeps and experiment tracking for the book's CartPole DQN.",
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train",
        help="train one agent and print the book-style episode log",
        description="Train one DQN agent (the book's configuration unless told otherwise) and print one line per "
        "episode, then a summary. Stops at the configured number of consecutive successes.",
        epilog=_config_help(),
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
    train.set_defaults(handler=_cmd_train)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from dqn_core.config import TrainConfig, load_config, parse_assignment

    overrides = dict(parse_assignment(item) for item in args.overrides)
    config = load_config(args.config, overrides) if args.config else TrainConfig.from_mapping(overrides)
    if args.seed < 0:
        raise UsageError(f"dqn-sweep train: --seed must be >= 0, got {args.seed}")

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
        path = result.agent().save(args.save)
        print(f"saved agent to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from dqn_core.errors import ConfigError

    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}" if isinstance(exc, ConfigError) else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
