"""Import boundaries, checked in fresh interpreters.

dqn_core must not pull in the tracking stack: data flows one way, config -> trainer -> result -> tracker. Analysis
must not pull in training or store-writing code: it only reads what sweeps recorded.
"""

import ast
import subprocess
import sys

import pytest


def test_dqn_core_imports_neither_optuna_nor_mlflow():
    code = (
        "import sys, dqn_core, dqn_core.trainer, dqn_core.agent;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('optuna', 'mlflow')];"
        "assert 'tensorflow' in sys.modules; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


TRAINING_OR_WRITING = (
    "dqn_core.trainer",
    "dqn_core.stream",
    "dqn_core.graph",
    "tensorflow",
    "sweeps.run.worker",
    "sweeps.run.sweep",
    "sweeps.run.verdict",
    "sweeps.run.validation",
    "sweeps.tracking.report_log",
)


def _loaded(module: str) -> list[str]:
    """The training and store-writing modules that importing `module` pulls in, in a fresh interpreter."""
    code = f"import sys, {module}; print([m for m in {TRAINING_OR_WRITING!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip())


@pytest.mark.parametrize(
    "module", ["analysis", "analysis.load", "analysis.compare", "analysis.plots", "analysis.verdict"]
)
def test_analysis_reads_without_training_or_writing(module):
    """Analysis reads stores: opening a report or notebook must not load TensorFlow or a code path that writes."""
    assert _loaded(module) == []


def test_the_report_reads_without_training_or_writing():
    assert _loaded("analysis.report") == []


ROOMS = ("stores", "study", "tracking", "run", "cli")  # each may import only the rooms before it


def test_the_rooms_of_sweeps_import_one_way():
    """A room importing a later one (even inside a function) would tie the floors together again."""
    from pathlib import Path

    root = Path(__file__).parents[1] / "sweeps"
    wrong = []
    for path in root.rglob("*.py"):
        room = path.relative_to(root).parts[0]
        if room not in ROOMS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sweeps."):
                target = node.module.split(".")[1]
                if target in ROOMS and ROOMS.index(target) > ROOMS.index(room):
                    wrong.append(f"{path.relative_to(root)} imports {node.module}")
    assert wrong == []
