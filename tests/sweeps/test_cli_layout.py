"""The CLI package: one module per command, heavy imports only inside handlers, and one home for each check."""

import ast
import subprocess
import sys

import pytest

from dqn_core.errors import ConfigError
from dqn_core.shape import SEED_LIMIT
from sweeps.stores.preflight import GRACE_PERIOD_MAX_S, HEARTBEAT_MAX_S, bounded, check_liveness


def test_importing_the_cli_loads_no_heavy_library():
    code = (
        "import sys, sweeps.cli; sweeps.cli.build_parser();"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'optuna', 'mlflow', 'tensorflow', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_has_a_handler():
    from sweeps.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert list(commands) == ["train", "run", "worker", "repair", "sync", "best", "replay", "validate", "report"]
    for name, parser in commands.items():
        assert callable(parser.get_default("handler")), name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "--seed: must be >= 0, got -1"),
        (SEED_LIMIT, f"--seed: must be in [0, {SEED_LIMIT - 1}], got {SEED_LIMIT}"),
        ("3", "--seed: must be an integer, got '3'"),
    ],
)
def test_bounded_names_the_side_that_failed(value, message):
    with pytest.raises(ConfigError) as info:
        bounded("--seed", value, 0, SEED_LIMIT - 1)
    assert str(info.value) == message


def test_bounded_passes_the_ends_and_none():
    assert bounded("--top", 1, 1, 5) == 1 and bounded("--top", 5, 1, 5) == 5 and bounded("--top", None, 1, 5) is None


@pytest.mark.parametrize(
    ("heartbeat", "grace", "message"),
    [
        (0, 60, "--heartbeat-interval: must be >= 1, got 0"),
        (HEARTBEAT_MAX_S + 1, 10**9, f"--heartbeat-interval: must be in [1, {HEARTBEAT_MAX_S}]"),
        (5, GRACE_PERIOD_MAX_S + 1, f"--grace-period: must be in [1, {GRACE_PERIOD_MAX_S}]"),
        (9, 5, "--grace-period: must exceed --heartbeat-interval, got 5 <= 9"),
        (5, 5, "--grace-period: must exceed --heartbeat-interval, got 5 <= 5"),
    ],
)
def test_liveness_has_one_check(heartbeat, grace, message):
    with pytest.raises(ConfigError) as info:
        check_liveness(heartbeat, grace)
    assert str(info.value).startswith(message)


def test_no_cli_function_is_long():
    from pathlib import Path

    import sweeps.cli

    for path in Path(sweeps.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno < 120, f"{path.name}:{node.name}"
