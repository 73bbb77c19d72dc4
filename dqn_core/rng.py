"""Per-agent counter-based random numbers inside the compiled graph.

Each agent draws from hash(agent key, its own step counter, stream, lane), so its numbers do not depend on which
other agents share the population or on how the run is chunked: the basis of the alone-vs-population identity.
TensorFlow's stateless ops take one seed per call, not one per row, hence this small hash (murmur3's finalizer).
"""

from __future__ import annotations

import numpy as np

from dqn_core import xla
from dqn_core.quiet_tf import tf

# Stream ids keep the draws for different purposes apart.
STREAM_RESET = 1
STREAM_EXPLORE = 2
STREAM_SAMPLE = 3
STREAM_EXTRA_SAMPLES = 100  # + u for the u-th extra gradient step of a tick (updates_per_step > 1)

_GOLDEN = 0x9E3779B9


def _fmix32(x: tf.Tensor) -> tf.Tensor:
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))
    x = x * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(13, tf.uint32)))
    x = x * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def bits(key: tf.Tensor, counter: tf.Tensor, stream: int | tf.Tensor, lanes: int) -> tf.Tensor:
    """Hashed uint32 words of shape [K, lanes]: key [K] uint32, counter [K] int32 (the agent's own clock)."""
    counter32 = tf.cast(counter, tf.uint32)
    base = _fmix32(key ^ _fmix32(counter32 * tf.constant(_GOLDEN, tf.uint32) + tf.cast(stream, tf.uint32)))
    lane = tf.cast(tf.range(lanes), tf.uint32)[None, :]
    return _fmix32(_fmix32(base[:, None] + lane * tf.constant(_GOLDEN, tf.uint32)) ^ key[:, None])


def uniform(key: tf.Tensor, counter: tf.Tensor, stream: int | tf.Tensor, lanes: int) -> tf.Tensor:
    """Floats in [0, 1) of shape [K, lanes], from the top 24 bits of `bits`."""
    words = bits(key, counter, stream, lanes)
    return tf.cast(tf.bitwise.right_shift(words, tf.constant(8, tf.uint32)), tf.float32) * (1.0 / (1 << 24))


def agent_key(seed: int) -> np.uint32:
    """A well-mixed 32-bit key for a user seed (any Python int)."""
    mixed = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint32)[0]
    return np.uint32(mixed)


def _reset_words(key: tf.Tensor, episode: tf.Tensor) -> tf.Tensor:
    return bits(key, episode, STREAM_RESET, 1)[:, 0]


_compiled_reset_words = xla.compiled(_reset_words)  # one call; run eagerly, the hash was ~25 ops


def reset_seeds(key: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Seeds for a host env's `reset(seed=...)`: [K] uint32 from the agent's key and its episode index alone (the
    first word of `bits` on STREAM_RESET), so a host-stepped agent's episodes do not depend on its slot, its
    neighbours or when it entered."""
    key32 = tf.constant(np.asarray(key, np.uint32))
    return _compiled_reset_words(key32, tf.constant(np.asarray(episode, np.int32))).numpy()
