"""The book's DQN (textbook ch. 4-4) as a fast population trainer. Knows nothing of Optuna or MLflow.

Names are imported lazily: configs validate and the CLI answers `--help` without loading TensorFlow.
"""

import importlib
import os
from typing import Any

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "3"
)  # TensorFlow's C++ start-up logging is noise in a CLI; errors still raise

_EXPORTS = {
    "ConfigError": "dqn_core.errors",
    "TrainConfig": "dqn_core.config",
    "load_config": "dqn_core.config",
    "TrainedAgent": "dqn_core.agent",
    "EpisodeStats": "dqn_core.results",
    "TrainResult": "dqn_core.results",
    "train": "dqn_core.trainer",
    "train_population": "dqn_core.trainer",
    "StreamShape": "dqn_core.shape",
    "StreamError": "dqn_core.stream",
    "Supply": "dqn_core.stream",
    "WorkItem": "dqn_core.shape",
    "train_stream": "dqn_core.stream",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dqn_core' has no attribute {name!r}")
