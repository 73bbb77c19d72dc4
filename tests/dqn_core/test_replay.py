"""Ring-buffer replay: wrap-around, capped count, idle agents lose nothing, samples come from valid slots."""

import numpy as np

from dqn_core import replay
from dqn_core.quiet_tf import tf
from dqn_core.update import Batch


def _transition(values, n_agents=2):
    v = np.asarray(values, np.float32)
    return Batch(
        obs=tf.constant(np.repeat(v[:, None], 4, axis=1)),
        action=tf.constant(v.astype(np.int32)),
        reward=tf.constant(v),
        next_obs=tf.constant(np.repeat(v[:, None], 4, axis=1) + 0.5),
        terminated=tf.constant(v > 100),
        truncated=tf.constant(np.zeros(n_agents, bool)),
    )


def test_ring_buffer_wraps_and_caps_count():
    memory = replay.empty_replay(2, 4, 4)
    capacity = tf.constant([4, 3])
    for i in range(1, 7):
        memory = replay.add(memory, _transition([i, 10 * i]), tf.constant([True, True]), capacity)
    assert memory.count.numpy().tolist() == [4, 3]
    assert memory.index.numpy().tolist() == [6 % 4, 6 % 3]
    assert sorted(memory.reward.numpy()[0].tolist()) == [3, 4, 5, 6]  # oldest two overwritten
    assert sorted(memory.reward.numpy()[1, :3].tolist()) == [40, 50, 60]


def test_agents_that_do_not_store_keep_their_buffer():
    memory = replay.empty_replay(2, 2, 4)
    capacity = tf.constant([2, 2])
    for i in (1, 2):
        memory = replay.add(memory, _transition([i, i]), tf.constant([True, True]), capacity)
    before = memory.reward.numpy().copy()
    memory = replay.add(memory, _transition([9, 9]), tf.constant([False, True]), capacity)
    assert memory.reward.numpy()[0].tolist() == before[0].tolist()
    assert memory.count.numpy().tolist() == [2, 2] and memory.index.numpy().tolist() == [0, 1]
    assert 9 in memory.reward.numpy()[1]


def test_sample_draws_only_valid_transitions_and_is_deterministic():
    memory = replay.empty_replay(2, 100, 4)
    capacity = tf.constant([100, 100])
    for i in range(1, 8):
        memory = replay.add(memory, _transition([i, i]), tf.constant([True, i <= 3]), capacity)
    key, counter = tf.constant([1, 2], tf.uint32), tf.constant([5, 5])
    batch = replay.sample(memory, key, counter, 64)
    assert set(batch.reward.numpy()[0].tolist()) <= set(range(1, 8))
    assert set(batch.reward.numpy()[1].tolist()) <= {1, 2, 3}
    np.testing.assert_array_equal(batch.next_obs.numpy()[..., 0], batch.obs.numpy()[..., 0] + 0.5)
    again = replay.sample(memory, key, counter, 64)
    np.testing.assert_array_equal(batch.reward.numpy(), again.reward.numpy())
    assert len(set(batch.reward.numpy()[0].tolist())) > 3  # not stuck on one slot
