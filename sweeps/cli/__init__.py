"""`dqn-sweep`: the command line. `main(argv) -> int` so tests drive it in-process.

Heavy imports (TensorFlow, Optuna, MLflow) happen inside the commands, so `--help` and argument errors are instant.
Every user error ends as one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sweeps.stores.locations import DEFAULT_TRACKING_URI, JOURNAL_NAME
from sweeps.study.schema import PRUNERS, SAMPLERS, StudyOptions, option_help, option_names, option_type

EXIT_USAGE = 2
DEFAULT_SWEEP = Path(__file__).parents[1] / "configs" / "default.yaml"


class UsageError(Exception):
    """Raised by argument parsing; becomes one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dqn-sweep")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _config_help() -> str:
    from dqn_core.config import field_default, field_doc, field_names

    header = f"config keys for --set and YAML files:\n  {'key':<24} {'default':<12} (defaults are the book's)\n"
    return header + "\n".join(f"  {name:<24} {field_default(name):<12} {field_doc(name)}" for name in field_names())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dqn-sweep",
        description="Hyperparameter sweeps and experiment tracking for the book's CartPole DQN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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

    run = commands.add_parser(
        "run",
        help="run (or resume) an Optuna sweep tracked in MLflow, then the verdict against the book",
        description="Run a hyperparameter sweep. Seeds are the budget: every trial trains seeds 0, 1, 2, ... in one "
        "streaming population, each finished seed is reported to Optuna, the WilcoxonPruner stops trials that are "
        "worse than the best over common seeds, and a surviving trial trains up to --max-seeds seeds; its value is "
        "the median episodes to five consecutive successes (lower is better). At the end the winner and the book "
        "train on --validate-seeds unseen seeds and a paired test gives the verdict. Running the same command again "
        "resumes the study: --n-trials is the total number of finished (complete + pruned) trials, not an "
        "increment. Options given here override the sweep file's `study:` section.",
        epilog=f"samplers: {', '.join(SAMPLERS)}\npruners: {', '.join(PRUNERS)}\n"
        f"defaults: MLflow store {DEFAULT_TRACKING_URI} (or $MLFLOW_TRACKING_URI), Optuna journal file "
        f"'{JOURNAL_NAME}' beside it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", default=str(DEFAULT_SWEEP), metavar="SWEEP.yaml", help="sweep file (%(default)s)")
    run.add_argument(
        "--study-name", "--study", dest="study_name", help="Optuna study and MLflow experiment name (the file's stem)"
    )
    _add_store_options(run)
    _add_study_options(run, option_names())
    run.add_argument("--no-validate", action="store_true", help="skip the verdict at the end")
    warm = run.add_argument_group("warm start (the queued configurations are the first trials after the book)")
    warm.add_argument(
        "--base-config",
        metavar="FILE.yaml",
        help="trainer config the search space is applied to, instead of the sweep file's `trainer:` section "
        "(e.g. what `best --format yaml` wrote)",
    )
    warm.add_argument(
        "--enqueue",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE.yaml",
        help="trainer configs to try first, their searched values as they are (each must lie in the search space)",
    )
    warm.add_argument(
        "--from-study",
        metavar="NAME",
        help="try the best trials of another study in the same storage first (any search space: values outside "
        "this one are left to the sampler)",
    )
    warm.add_argument(
        "--from-top", type=int, default=3, metavar="K", help="how many of --from-study's best trials (%(default)s)"
    )
    _add_timeout_option(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar (it goes to stderr)")
    _add_liveness_options(run)
    run.set_defaults(handler=_cmd_run)

    worker = commands.add_parser(
        "worker",
        help="join an existing study and run its trials until its budget is reached (start any number)",
        description="Join a study that `dqn-sweep run` created: the sweep, seeds, sampler, pruner and budget come "
        "from the study itself, so a worker on another machine needs only the stores. Workers share the budget "
        "exactly, beat heartbeats for their trials, and redo the trials of workers that died.",
        epilog="example: dqn-sweep worker --study-name S --storage postgresql://user@db/optuna "
        "--tracking-uri http://mlflow-host:5000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("--study-name", "--study", dest="study_name", required=True, help="the study to join")
    _add_store_options(worker)
    _add_study_options(worker, ("n_trials", "slots"), recorded=True)
    _add_timeout_option(worker)
    worker.add_argument("--no-progress", action="store_true", help="no progress bar (it goes to stderr)")
    _add_liveness_options(worker)
    worker.set_defaults(handler=_cmd_worker)

    for name, help_text, description in (
        (
            "repair",
            "fail the trials of dead workers (they are retried) and close the MLflow runs they left RUNNING",
            "Fail RUNNING trials whose heartbeat is older than the grace period (their parameters are queued again) "
            "and close every MLflow run whose Optuna trial is no longer running, as FAILED or FINISHED. Workers do "
            "this when they start; run it by hand when none will start again.",
        ),
        (
            "sync",
            "re-create MLflow runs missing after a tracking outage, from the Optuna storage",
            "Everything `repair` does, then re-create the MLflow run of every finished trial that has none, with "
            "its parameters, tags, value and per-seed results (per-episode curves exist only during a trial, so "
            "re-created runs have none).",
        ),
    ):
        command = commands.add_parser(name, help=help_text, description=description)
        command.add_argument("--study-name", "--study", dest="study_name", help="study (optional if only one)")
        _add_store_options(command)
        _add_liveness_options(command)
        command.set_defaults(handler=_cmd_reconcile)
        if name == "repair":
            command.add_argument(
                "--journal",
                metavar="PATH",
                help="only repair this Optuna journal file: keep a backup, then cut off a partial last line left by "
                "a crash or a full disk (stop its workers first); touches no study and no MLflow run",
            )

    best = commands.add_parser(
        "best",
        help="show the best trial of a study",
        description="Print the best complete trial's value, per-seed values and parameters as a table.",
    )
    best.add_argument(
        "--study-name", "--study", dest="study_name", help="study to read (optional if the storage holds only one)"
    )
    _add_store_options(best)
    best.add_argument(
        "--format",
        choices=("table", "yaml"),
        default="table",
        help="table (default), or yaml: the best trial's full trainer config, for `train --config`, "
        "`run --base-config` and `run --enqueue` (e.g. `dqn-sweep best --format yaml > best.yaml`)",
    )
    best.set_defaults(handler=_cmd_best)

    replay = commands.add_parser(
        "replay",
        help="re-train a trial's agent and write a GIF of one greedy episode",
        description="Re-train the trial's median seed alone (bit-identical to its run in the sweep), render one "
        "greedy episode headless to a GIF, and log the GIF to the trial's MLflow run.",
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="trial number")
    which.add_argument("--run-id", metavar="ID", help="MLflow run id of the trial")
    replay.add_argument(
        "--study-name", "--study", dest="study_name", help="study to read (optional if the storage holds only one)"
    )
    replay.add_argument("--out", default=None, metavar="FILE.gif", help="where to write the GIF (replay-<N>.gif)")
    _add_store_options(replay)
    replay.set_defaults(handler=_cmd_replay)

    validate = commands.add_parser(
        "validate",
        help="re-train the top configurations and the book on held-out seeds",
        description="Re-train the study's top complete trials and the book default on seeds no trial used "
        "(10000, 10001, ...), all as one population; log one MLflow run per configuration and print the held-out "
        "medians with bootstrap 95% CIs beside the in-sweep values.",
    )
    validate.add_argument("--study-name", "--study", dest="study_name", help="study (optional if only one)")
    validate.add_argument("--top", type=int, default=3, help="how many of the best trials (%(default)s)")
    validate.add_argument("--seeds", type=int, default=10, help="held-out seeds per configuration (%(default)s)")
    _add_store_options(validate)
    validate.set_defaults(handler=_cmd_validate)

    report = commands.add_parser(
        "report",
        help="write a self-contained HTML report of a study",
        description="Write one HTML file (plots inline, no external resources): optimization history, parameter "
        "importances, parallel coordinates, parameter effects, top configurations with bootstrap CIs beside the "
        "book, learning curves, held-out validation and the best agent's GIF. Also logged to the study's MLflow "
        "parent run.",
    )
    report.add_argument("--study-name", "--study", dest="study_name", help="study (optional if only one)")
    report.add_argument(
        "--out",
        metavar="FILE.html",
        help="output file (reports/<study>.html beside a local mlflow.db, else in the working directory)",
    )
    report.add_argument("--top", type=int, default=5, help="configurations in the comparison table (%(default)s)")
    _add_store_options(report)
    report.set_defaults(handler=_cmd_report)
    return parser


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage: a journal file (PATH or journal:PATH) or an RDB URL such as postgresql://...",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})",
    )


def _add_study_options(parser: argparse.ArgumentParser, names: Sequence[str], *, recorded: bool = False) -> None:
    """One flag per `StudyOptions` field, with its help and default, so flags, sweep files and the study record
    cannot drift apart."""
    from dataclasses import fields

    defaults = {spec.name: spec.default for spec in fields(StudyOptions)}
    for name in names:
        default = "the study's value" if recorded else f"file, else {defaults[name]}"
        parser.add_argument(
            "--" + name.replace("_", "-"), type=option_type(name), help=f"{option_help(name)} ({default})"
        )


def _add_liveness_options(parser: argparse.ArgumentParser) -> None:
    from sweeps.stores.locations import GRACE_PERIOD, HEARTBEAT_INTERVAL

    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=HEARTBEAT_INTERVAL,
        metavar="S",
        help="seconds between heartbeats of a running trial (%(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=GRACE_PERIOD,
        metavar="S",
        help="a running trial silent this long is failed and retried (%(default)s)",
    )


def _add_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="MINUTES",
        help="ask no new trial after this many minutes; the running trials finish, then the run ends normally "
        "(run the command again to go on)",
    )


def _check_liveness(args: argparse.Namespace) -> None:
    from sweeps.stores.preflight import GRACE_PERIOD_MAX_S, HEARTBEAT_MAX_S, bounded

    if args.heartbeat_interval < 1:
        raise UsageError(f"dqn-sweep {args.command}: --heartbeat-interval must be >= 1, got {args.heartbeat_interval}")
    bounded("--heartbeat-interval", args.heartbeat_interval, 1, HEARTBEAT_MAX_S)
    bounded("--grace-period", args.grace_period, 1, GRACE_PERIOD_MAX_S)
    if args.grace_period <= args.heartbeat_interval:
        raise UsageError(
            f"dqn-sweep {args.command}: --grace-period ({args.grace_period}) must exceed --heartbeat-interval "
            f"({args.heartbeat_interval})"
        )


def _command_line(args: argparse.Namespace) -> str:
    """The command as given to `main`, passwords hidden (the same `redact` as every message): stored in the study."""
    from sweeps.stores.locations import redact

    return redact(" ".join(["dqn-sweep", *args.argv]))


def _cmd_run(args: argparse.Namespace) -> int:
    from sweeps.run.options import SweepOptions
    from sweeps.run.sweep import run_sweep
    from sweeps.stores.locations import check_tracking_uri, storage_url, tracking_uri
    from sweeps.stores.preflight import check_study_name
    from sweeps.study import warmstart
    from sweeps.study.space import load_sweep

    _check_liveness(args)
    sweep = load_sweep(args.config)
    if args.base_config:
        sweep = warmstart.with_base_config(sweep, args.base_config)
    uri = tracking_uri(args.tracking_uri)
    check_tracking_uri(uri)
    study_name = check_study_name(args.study_name or sweep.study_name or Path(args.config).stem)
    options = SweepOptions(
        sweep=sweep,
        study_name=study_name,
        study=sweep.study.replace(as_flags=True, **{name: getattr(args, name) for name in option_names()}),
        storage=storage_url(args.storage, uri),
        tracking_uri=uri,
        progress=not args.no_progress,
        command_line=_command_line(args),
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        verdict=not args.no_validate,
        timeout_s=_timeout_s(args),
        queued=tuple(_queued(args, sweep, study_name)),
    )
    return _report(run_sweep(options), uri, options.storage)


def _timeout_s(args: argparse.Namespace) -> float | None:
    """--timeout in seconds; `SweepOptions` checks it."""
    return None if args.timeout is None else args.timeout * 60


def _queued(args: argparse.Namespace, sweep: Any, study_name: str) -> list[Any]:
    """The configurations `--enqueue` and `--from-study` ask to try first, read and checked before any store is
    written."""
    from sweeps.stores.preflight import bounded
    from sweeps.study import warmstart
    from sweeps.study.existing import load_existing_study

    queued = warmstart.from_files(args.enqueue, sweep)
    if args.from_study:
        bounded("--from-top", args.from_top, 1, warmstart.FROM_STUDY_TOP_MAX)
        if args.from_study == study_name:
            raise UsageError(f"dqn-sweep run: --from-study names the study being run ('{study_name}')")
        source = load_existing_study(args.from_study, args.storage, args.tracking_uri)
        queued += warmstart.from_study(source, args.from_top, sweep)
    return queued


def _cmd_worker(args: argparse.Namespace) -> int:
    from sweeps.run.options import worker_options
    from sweeps.run.sweep import run_sweep
    from sweeps.stores.locations import storage_url

    study, uri = _join_study(args)
    options = worker_options(
        study,
        storage=storage_url(args.storage, uri),
        tracking_uri=uri,
        n_trials=args.n_trials,
        slots=args.slots,
        progress=not args.no_progress,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        timeout_s=_timeout_s(args),
    )
    return _report(run_sweep(options), uri, options.storage)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from sweeps.tracking.recovery import repair, sync
    from sweeps.tracking.tracker import StudyTracker

    if getattr(args, "journal", None):
        if args.study_name or args.storage or args.tracking_uri:
            raise UsageError("dqn-sweep repair: --journal repairs the file alone; give no study or store options")
        return _repair_journal(Path(args.journal))
    study, uri = _join_study(args)
    tracker = StudyTracker(uri, study.study_name, tags={})
    done = (sync if args.command == "sync" else repair)(study, tracker)
    print(f"study '{study.study_name}': {done.describe()}")
    return 0


def _repair_journal(path: Path) -> int:
    from sweeps.stores.journal import repair_journal

    backup, cut = repair_journal(path)
    if backup is None:
        print(f"Optuna journal {path} ends cleanly; nothing to repair")
    else:
        print(f"Optuna journal {path}: cut a partial last line of {cut} bytes; the full file was kept as {backup}")
    return 0


def _join_study(args: argparse.Namespace) -> tuple[Any, str]:
    """The existing study named by `worker`, `repair` or `sync`, opened for writing, and the tracking URI."""
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import probe_tracking_store
    from sweeps.study.existing import load_existing_study

    _check_liveness(args)
    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=args.study_name, must_exist=False)
    study = load_existing_study(
        args.study_name,
        args.storage,
        args.tracking_uri,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        writable=True,
    )
    return study, uri


def _report(summary: Any, uri: str, storage: str) -> int:
    from sweeps.run.summary import describe_counts, describe_seeds, trials_per_minute
    from sweeps.tracking.browse import browse_lines

    rate = trials_per_minute(summary.new_trials, summary.seconds)
    tracked = summary.tracking_seconds
    if summary.verdict is not None:
        print(summary.verdict.line)
    print(
        f"study '{summary.study_name}': {describe_counts(summary.counts)}; this run finished {summary.new_trials} "
        f"trials in {summary.seconds:.1f} s ({rate:.1f} trials/min)"
    )
    if summary.seed_runs:
        print(
            f"seeds: {summary.seed_runs} (trial, seed) runs, {summary.env_steps / summary.seconds:,.0f} agent-steps/s; "
            f"seeds per finished trial: {describe_seeds(summary.seeds_per_trial)}"
        )
    share = _share(tracked["trials"], summary.seconds)
    print(
        f"MLflow tracking: {tracked['trials']:.2f} s for the trials' runs ({share} of the sweep), "
        f"{tracked['setup']:.2f} s opening the store, {tracked['best']:.2f} s for the best agent"
    )
    if summary.best_number is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in summary.best_params.items())
        print(f"best trial {summary.best_number}: {summary.best_value:g} episodes to solve ({params})")
    for note in summary.notes:
        print(note)
    for line in browse_lines(uri, storage, summary.experiment_id):
        print(line)
    if summary.interrupted:
        print(
            "interrupted: finished trials were kept; running ones are FAIL in Optuna, KILLED in MLflow", file=sys.stderr
        )
        return 128 + int(summary.interrupted)  # 130 after Ctrl-C (SIGINT), 143 after SIGTERM
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from sweeps.study.existing import best_table, load_existing_study
    from sweeps.study.warmstart import best_config_yaml

    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    if args.format == "yaml":
        sys.stdout.write(best_config_yaml(study))
    else:
        print(best_table(study))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from sweeps.run.replay import write_replay
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import check_output_file, probe_tracking_store
    from sweeps.study.existing import find_trial, load_existing_study
    from sweeps.study.schema import trial_config
    from sweeps.tracking.tracker import StudyTracker

    if args.out is not None:
        check_output_file(Path(args.out), "replay --out", (".gif",))
    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    trial = find_trial(study, number=args.trial, run_id=args.run_id)
    config = trial_config(study, trial)
    if not config.env.renders:
        raise UsageError(f"dqn-sweep replay: {config.env_id} draws no rgb_array frames, so there is no GIF to write")
    out = check_output_file(Path(args.out or f"replay-{trial.number}.gif"), "replay --out", (".gif",))
    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=study.study_name, must_exist=True)
    tracker = StudyTracker(uri, study.study_name, tags={})
    path, steps, note = write_replay(study, tracker, trial, out, log_agent=False)
    print(f"trial {trial.number}: wrote {path} ({steps}-step greedy episode) and logged it to its MLflow run")
    if note:
        print(note, file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    import pandas as pd

    from sweeps.run.validation import validate
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import HOLDOUT_SEEDS_MAX, TOP_MAX, bounded, probe_tracking_store
    from sweeps.study.existing import load_existing_study
    from sweeps.tracking.tracker import StudyTracker

    bounded("--top", args.top, 1, TOP_MAX)
    bounded("--seeds", args.seeds, 1, HOLDOUT_SEEDS_MAX)
    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=study.study_name, must_exist=True)
    tracker = StudyTracker(uri, study.study_name, tags={})
    print(
        f"validating the top {args.top} trials of '{study.study_name}' and the book on {args.seeds} held-out seeds ..."
    )
    table = pd.DataFrame(validate(study, tracker, top=args.top, seeds=args.seeds))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.load import StudyData
    from analysis.report import build_report
    from sweeps.stores.locations import default_report
    from sweeps.stores.preflight import TOP_MAX, bounded, check_output_file
    from sweeps.tracking.report_log import log_report

    html_suffixes = (".html", ".htm")

    if args.top < 1:
        raise UsageError(f"dqn-sweep report: --top must be >= 1, got {args.top}")
    bounded("--top", args.top, 1, TOP_MAX)
    if args.out is not None:
        check_output_file(Path(args.out), "report --out", html_suffixes)
    data = StudyData.open(args.study_name, storage=args.storage, tracking=args.tracking_uri)
    out = Path(args.out) if args.out else default_report(data.tracking_uri, data.name)
    out = check_output_file(out, "report --out", html_suffixes)
    path = build_report(data, out, top=args.top)
    logged = log_report(data.tracking_uri, data.name, path)
    where = "; also logged to the study's MLflow parent run" if logged else " (the study has no MLflow parent run)"
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB){where}")
    return 0


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "n/a"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cmd_train(args: argparse.Namespace) -> int:
    from dqn_core.config import TrainConfig, load_config, parse_assignment
    from sweeps.stores.preflight import SEED_MAX, bounded, check_output_file

    overrides = dict(parse_assignment(item) for item in args.overrides)
    config = load_config(args.config, overrides) if args.config else TrainConfig.from_mapping(overrides, source="--set")
    if args.seed < 0:
        raise UsageError(f"dqn-sweep train: --seed must be >= 0, got {args.seed}")
    bounded("--seed", args.seed, 0, SEED_MAX)
    if args.save:
        check_output_file(Path(args.save), "train --save", (".npz",))

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


def _relocate_store(args: argparse.Namespace) -> None:
    """Before any command opens a local tracking store: if its folder was moved or copied, re-point the
    artifact locations MLflow recorded (see `relocation.py`)."""
    if not hasattr(args, "tracking_uri") or getattr(args, "journal", None):
        return
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.relocation import relocate_or_warn

    line = relocate_or_warn(tracking_uri(args.tracking_uri))
    if line:
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from dqn_core.errors import ConfigError

    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv
        _relocate_store(args)
        return int(args.handler(args))
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}" if isinstance(exc, ConfigError) else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        from sweeps.stores.locations import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"error: {disk_full_message(exc)}", file=sys.stderr)  # before the sweep loop: nothing to close
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
