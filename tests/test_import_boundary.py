"""dqn_core must not pull in the tracking stack: data flows one way, config -> trainer -> result -> tracker."""

import subprocess
import sys


def test_dqn_core_imports_neither_optuna_nor_mlflow():
    code = (
        "import sys, dqn_core, dqn_core.trainer, dqn_core.agent;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('optuna', 'mlflow')];"
        "assert 'tensorflow' in sys.modules; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
