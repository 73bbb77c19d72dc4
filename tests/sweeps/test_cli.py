"""The CLI in-process: the book-style log, saving, and one-line errors with exit code 2."""

import pytest

from dqn_core import TrainedAgent
from sweeps.cli import main


def test_train_prints_book_style_log_and_summary(capsys, tmp_path):
    code = main(["train", "--seed", "0", "--set", "max_episodes=3", "--save", str(tmp_path / "a.npz")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("Episode: 1, Steps: ") and ", Epsilon: 0.9" in out[0]
    assert out[2].startswith("Episode: 3, ")
    assert "not solved within 3 episodes" in out[3]
    assert TrainedAgent.load(tmp_path / "a.npz").config.max_episodes == 3


def test_train_reads_yaml_config(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_episodes: 2\nwarmup: 0\n")
    assert main(["train", "--config", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Episode:" not in out and "not solved within 2 episodes" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--set", "gamma=1.5"], "gamma: must be in (0, 1]"),
        (["train", "--set", "batch_size=abc"], "batch_size: must be an integer"),
        (["train", "--set", "gama=0.9"], "did you mean 'gamma'"),
        (["train", "--set", "env_id=Nope-v0"], "unknown env_id"),
        (["train", "--set", "batch_size=20000"], "batch_size: must be in [1, memory_size=10000]"),
        (["train", "--config", "/does/not/exist.yaml"], "config file not found"),
        (["train", "--seed", "-3"], "--seed: must be >= 0"),
        (["train", "--seed", "x"], "invalid int value"),
        (["train", "--bogus"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["train", "--seed", "x"], "error: --seed: invalid int value: 'x' (see dqn-sweep train --help)"),
        (["train", "--seed", "-1"], "error: --seed: must be >= 0, got -1"),
        (["train", "--set", "gamma=abc"], "error: --set: gamma: must be a number, got 'abc'"),
        (["train", "--set", "gamma=2"], "error: --set: gamma: must be in (0, 1], got 2.0"),
        (["train", "--set", "gamma"], "error: --set: expects key=value, got 'gamma'"),
        (["run", "--n-trials", "0"], "error: --n-trials: must be in [1, 100000], got 0"),
        (["run", "--sampler", "x"], "error: --sampler: unknown value 'x' (choose from tpe, random, cmaes, qmc, grid)"),
        (
            ["best", "--format", "x"],
            "error: --format: invalid choice: 'x' (choose from 'table', 'yaml', 'json') (see dqn-sweep best --help)",
        ),
        (["validate", "--top", "0"], "error: --top: must be >= 1, got 0"),
        (["worker"], "error: the following arguments are required: --study-name/--study (see dqn-sweep worker --help)"),
    ],
)
def test_every_command_words_an_error_the_same_way(capsys, argv, line):
    """One format across commands: `error: <flag or key>: <what is wrong>` (argparse's own errors used to read
    `dqn-sweep train: argument --seed: ...`, `--set gamma=abc` lacked its `--set:`)."""
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == line


def test_help_lists_config_keys(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for key in ("gamma", "epsilon_decay_rate", "batch_size", "warmup", "reward_mode", "time_limit"):
        assert key in out


def test_help_shows_every_config_key_with_its_default(capsys):
    """Each key's line shows a default that `--set` would parse back to the dataclass's own default."""
    from dataclasses import fields

    from dqn_core.config import TrainConfig, coerce_value

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    book = TrainConfig()
    for spec in fields(TrainConfig):
        line = next(line for line in lines if line.startswith(f"  {spec.name} "))
        shown = line.split()[1]
        assert coerce_value(spec.name, shown) == getattr(book, spec.name), line
    assert any(line.split()[:2] == ["hidden_sizes", "16,16,16"] for line in lines)


@pytest.mark.parametrize(("key", "named"), [("gama", "did you mean 'gamma'?"), ("foo", "allowed: env_id, ")])
def test_unknown_key_is_named_alike_by_set_and_yaml(capsys, tmp_path, key, named):
    """`--set` and a YAML file go through one check: one line, exit 2, the near miss or else every allowed key."""
    assert main(["train", "--set", f"{key}=1"]) == 2
    from_set = capsys.readouterr().err
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}: 1\n")
    assert main(["train", "--config", str(path)]) == 2
    from_yaml = capsys.readouterr().err
    for err, source in ((from_set, "--set"), (from_yaml, str(path))):
        assert err.startswith(f"error: {source}: unknown config key '{key}' ({named}")
        assert len(err.strip().splitlines()) == 1
    assert from_set.split(": ", 2)[2] == from_yaml.split(": ", 2)[2]


def test_no_help_shows_a_doubled_percent_sign(capsys):
    """argparse turns `%%` into `%` only in strings it %-formats (option help, or text with `%(prog)`); a literal
    `%%` elsewhere reaches the user as is."""
    from sweeps.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    shown = {}
    for argv in ([], *([name] for name in commands)):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        shown[" ".join(argv)] = " ".join(capsys.readouterr().out.split())
    for command, out in shown.items():
        assert "%%" not in out and "%(" not in out, command
    assert "bootstrap 95% CIs" in shown["validate"]
