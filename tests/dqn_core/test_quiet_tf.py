"""TensorFlow as dqn_core imports it: large tensors go back to the operating system when freed (the system
allocator), instead of staying in oneDNN's pool for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ALLOCATE_AND_FREE = """
from dqn_core.quiet_tf import tf

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))

before = rss_mib()
big = tf.zeros([50_000_000]) + 1.0  # 200 MB, written
held = rss_mib()
del big
print(held - before, held - rss_mib())
"""


def _grown_and_returned(env: dict[str, str]) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", ALLOCATE_AND_FREE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    grown, returned = out.stdout.split()
    return int(grown), int(returned)


def test_a_freed_large_tensor_returns_its_memory():
    env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    grown, returned = _grown_and_returned(env)
    assert grown >= 150
    assert returned >= 150


def _onednn_enabled() -> bool:
    """TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 (or AMX) features; without it there is no
    oneDNN pool to keep memory, whatever the variable says (TF's own flag, read in a fresh interpreter)."""
    code = (
        "from dqn_core.quiet_tf import tf; from tensorflow.python.util import _pywrap_util_port as port; "
        "print(port.IsMklEnabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_an_allocator_chosen_by_the_environment_is_left_alone():
    if not _onednn_enabled():
        pytest.skip("TensorFlow runs without oneDNN on this CPU (no AVX-512): there is no oneDNN pool to keep memory")
    grown, returned = _grown_and_returned({**os.environ, "TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "0"})
    assert grown >= 150
    assert returned < 50  # oneDNN's pool keeps it: the setting is the user's


IMPORT_AND_USE_KERAS = """
import os, sys
from dqn_core.quiet_tf import tf

loaded = sorted(m for m in ("keras", "sklearn", "pandas", "matplotlib") if m in sys.modules)
left_set = os.environ.get("TF_USE_LEGACY_KERAS")
layer = tf.keras.layers.Dense(3)  # Keras 3, loaded on first use
print(",".join(loaded) or "-", left_set, type(layer).__module__.split(".")[0])
"""


def _import_and_use_keras(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", IMPORT_AND_USE_KERAS], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_the_trainer_does_not_load_keras_and_its_dependencies_yet_tf_keras_still_works():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    loaded, left_set, layer_package = _import_and_use_keras(env)
    assert loaded == "-"  # not Keras, nor scikit-learn, pandas, matplotlib through it
    assert left_set == "None"  # the variable was only set for the import
    assert layer_package == "keras"


def test_a_keras_choice_made_by_the_environment_is_left_alone():
    loaded, left_set, layer_package = _import_and_use_keras({**os.environ, "TF_USE_LEGACY_KERAS": "0"})
    assert "keras" in loaded.split(",")  # TensorFlow's own eager import of Keras happened
    assert left_set == "0"
    assert layer_package == "keras"


TRAIN_AND_DIGEST = """
import hashlib, os
import numpy as np
from dqn_core import TrainConfig, train_population

results = train_population([(TrainConfig(max_episodes=4), 0), (TrainConfig(max_episodes=4, double_dqn=True), 1)])
digest = hashlib.sha256()
for result in results:
    for array in (result.steps, result.losses, result.epsilons, *result.weights):
        digest.update(np.ascontiguousarray(array).tobytes())
print(os.environ["XLA_FLAGS"].split()[-1], digest.hexdigest())
"""


def _width_and_digest(env: dict[str, str]) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", TRAIN_AND_DIGEST], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    width, digest = out.stdout.split()
    return width, digest


def test_wide_vectors_are_preferred_unless_chosen_and_change_no_result():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    wide = _width_and_digest(env)
    xla_default = _width_and_digest({**env, "XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"})
    assert wide[0] == "--xla_cpu_prefer_vector_width=512"
    assert xla_default[0] == "--xla_cpu_prefer_vector_width=256"  # the environment's choice is kept
    assert wide[1] == xla_default[1]  # the same bits either way
