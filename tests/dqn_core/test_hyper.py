"""`Hyper` is the one declaration of the per-agent settings: its columns, dtypes and host-side rows follow it."""

import dataclasses
from typing import Annotated, NamedTuple

import numpy as np
import pytest

from dqn_core import hyper
from dqn_core.config import TrainConfig
from dqn_core.quiet_tf import tf


def test_every_field_has_a_column_and_the_row_follows_the_fields_in_order():
    source = hyper.Source(TrainConfig(), 7, [True, False])
    assert tuple(hyper.COLUMNS) == tuple(hyper.DTYPES) == tuple(hyper.row(source)) == hyper.Hyper._fields


def test_fields_read_by_name_exist_in_the_config():
    config_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    by_name = [name for name, column in hyper.COLUMNS.items() if column.read is None]
    assert by_name and set(by_name) <= config_fields


def test_a_row_reads_the_config_seed_and_layers():
    config = TrainConfig(
        gamma=0.9, reward_mode="env", time_limit="bootstrap", epsilon_schedule="linear", double_dqn=True
    )
    row = hyper.row(hyper.Source(config, 3, [False, True]))
    assert row["gamma"] == 0.9 and row["batch_size"] == config.batch_size
    assert row["env_reward"] and row["bootstrap_truncation"] and row["linear_epsilon"] and row["double_dqn"]
    assert row["key"] == hyper.row(hyper.Source(TrainConfig(), 3, [True]))["key"]
    assert row["key"] != hyper.row(hyper.Source(config, 4, [False, True]))["key"]
    np.testing.assert_array_equal(row["trainable"], [False, True])
    book = hyper.row(hyper.Source(TrainConfig(), 3, [True]))
    assert not (book["env_reward"] or book["bootstrap_truncation"] or book["linear_epsilon"] or book["double_dqn"])


def test_columns_become_tensors_of_the_declared_dtypes():
    row = hyper.row(hyper.Source(TrainConfig(), 0, [True, True]))
    h = hyper.Hyper(**{name: tf.constant(np.asarray([value] * 2, hyper.DTYPES[name])) for name, value in row.items()})
    assert h.key.dtype == tf.uint32 and h.gamma.dtype == tf.float32 and h.batch_size.dtype == tf.int32
    assert h.double_dqn.dtype == tf.bool and h.trainable.shape == (2, 2)


class _Undeclared(NamedTuple):
    gamma: Annotated[tf.Tensor, hyper.F32]
    warmup: tf.Tensor


def test_a_field_without_a_column_is_refused():
    with pytest.raises(TypeError, match=r"\['warmup'\]"):
        hyper.columns_of(_Undeclared)
