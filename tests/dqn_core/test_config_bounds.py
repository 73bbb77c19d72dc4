"""Bounds on what the graph can hold: at most 8 hidden layers (300 one-unit layers took 378 s and 17.8 GB for five
episodes), no empty entry in a layer list, and float values that survive the graph's float32, each refused in one
line before NumPy could warn about it."""

import re
import warnings

import pytest

from dqn_core.config import MAX_HIDDEN_LAYERS, TrainConfig, coerce_value
from dqn_core.errors import ConfigError


def test_depth_is_bounded_and_the_bound_is_in_the_error():
    assert len(TrainConfig(hidden_sizes=(4,) * MAX_HIDDEN_LAYERS).hidden_sizes) == MAX_HIDDEN_LAYERS
    with pytest.raises(ConfigError, match=r"^hidden_sizes: 300 layers, at most 8 are allowed \(the book has 3\)$"):
        TrainConfig(hidden_sizes=(1,) * 300)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("16,,16", "hidden_sizes: entry 2 of 3 in '16,,16' is empty (one number per layer)"),
        ("16,16,", "hidden_sizes: entry 3 of 3 in '16,16,' is empty (one number per layer)"),
        (",16", "hidden_sizes: entry 1 of 2 in ',16' is empty (one number per layer)"),
    ],
)
def test_an_empty_layer_entry_is_an_error_not_a_layer_fewer(text, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_mapping({"hidden_sizes": text}, source="--set")
    assert str(caught.value) == f"--set: {message}"
    assert coerce_value("hidden_sizes", " 16, 32 ") == (16, 32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epsilon_decay_rate": 1e300}, "epsilon_decay_rate: 1e+300 overflows float32, the graph's dtype"),
        ({"epsilon_decay_rate": "1e300"}, "epsilon_decay_rate: 1e+300 overflows float32, the graph's dtype"),
        ({"learning_rate": 1e-50}, "learning_rate: 1e-50 underflows float32, the graph's dtype, to 0"),
    ],
)
def test_floats_that_float32_cannot_hold_are_one_line(changes, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warning on the way
        with pytest.raises(ConfigError, match=re.escape(message)):
            TrainConfig.from_mapping(changes)


def test_floats_yaml_reads_as_strings_are_numbers():
    """YAML 1.1 reads `1e-3` (no dot) as a string; for a float field it is the number it looks like."""
    assert TrainConfig.from_mapping({"learning_rate": "1e-3", "epsilon_decay_rate": "3e38"}).learning_rate == 1e-3
