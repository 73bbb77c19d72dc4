"""Our batched update equals the book's formulation: Keras Huber + Adam(1e-3) + one `fit` on the batch.

The reference (book style: targets from the online network's predictions with the taken action's entry replaced)
lives only here.
"""

import keras
import numpy as np
import pytest

from dqn_core.network import init_params, pad_params, unpad_params
from dqn_core.quiet_tf import tf
from dqn_core.update import AdamState, Batch, UpdateHyper, dqn_update

SIZES = [4, 16, 16, 16, 2]
GAMMA = 0.99


def _book_model(weights):
    model = keras.Sequential(
        [keras.Input((4,))]
        + [keras.layers.Dense(16, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(2, activation="linear")]
    )
    model.compile(loss=keras.losses.Huber(), optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    model.set_weights(weights)
    return model


def _book_update(online_weights, target_weights, s, a, r, s2, ends, double=False):
    """The book's loop body, vectorised only in its predictions (same numbers, fewer calls).

    `double`: van Hasselt et al.'s Double DQN target, the online network's argmax valued by the target network.
    """
    main, target = _book_model(online_weights), _book_model(target_weights)
    targets = main.predict(s, verbose=0)
    next_values = target.predict(s2, verbose=0)
    if double:
        chosen = np.argmax(main.predict(s2, verbose=0), axis=1)
        bootstrap = r + GAMMA * next_values[np.arange(len(a)), chosen]
    else:
        bootstrap = r + GAMMA * np.max(next_values, axis=1)
    targets[np.arange(len(a)), a] = np.where(ends, r, bootstrap)
    main.fit(s, targets, batch_size=len(s), epochs=1, verbose=0, shuffle=False)
    return main.get_weights()


def _minibatch(batch_size, seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 0.5, (batch_size, 4)).astype(np.float32)
    s2 = rng.normal(0, 0.5, (batch_size, 4)).astype(np.float32)
    a = rng.integers(0, 2, batch_size).astype(np.int32)
    r = rng.integers(0, 2, batch_size).astype(np.float32)
    terminated = rng.random(batch_size) < 0.3
    truncated = ~terminated & (rng.random(batch_size) < 0.2)
    return s, a, r, s2, terminated, truncated


def _ours(
    online, target, s, a, r, s2, terminated, truncated, bootstrap_truncation, rows=None, double=False, trainable=None
):
    """One update through the population code path, with a second (different) agent beside ours."""
    rows = rows or len(s)
    pad = rows - len(s)

    def stack(x, other):
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
        return tf.constant(np.stack([x, other(x)]))

    batch = Batch(
        stack(s, lambda x: x[::-1]),
        stack(a, lambda x: 1 - x),
        stack(r, lambda x: x),
        stack(s2, lambda x: x * 2),
        stack(terminated, lambda x: ~x),
        stack(truncated, lambda x: x),
    )
    other = init_params([w.shape[0] for w in online[::2]] + [2], 99)
    params = [tf.constant(np.stack([w, o])) for w, o in zip(online, other, strict=True)]
    target_params = [tf.constant(np.stack([w, o])) for w, o in zip(target, other, strict=True)]
    hyper = UpdateHyper(
        gamma=tf.constant([GAMMA, 0.5]),
        learning_rate=tf.constant([1e-3, 1e-2]),
        batch_size=tf.constant([len(s), rows]),
        bootstrap_truncation=tf.constant([bootstrap_truncation, False]),
        double_dqn=tf.constant([double, not double]),
        trainable=tf.constant([trainable or [True] * (len(online) // 2)] * 2),
    )
    adam = AdamState([tf.zeros_like(p) for p in params], [tf.zeros_like(p) for p in params], tf.zeros([2], tf.int32))
    update = tf.function(dqn_update, jit_compile=True)
    apply = tf.constant([True, True])
    new_params, new_adam, loss = update(params, target_params, adam, batch, hyper, apply, double=True)
    assert new_adam.t.numpy().tolist() == [1, 1]
    return [p.numpy()[0] for p in new_params], float(loss.numpy()[0])


@pytest.mark.parametrize("batch_size", [32, 7])
def test_one_update_matches_keras_book_formulation(batch_size):
    online, target = init_params(SIZES, 1), init_params(SIZES, 2)
    s, a, r, s2, terminated, truncated = _minibatch(batch_size, seed=batch_size)
    expected = _book_update(online, target, s, a, r, s2, terminated | truncated)
    ours, _ = _ours(online, target, s, a, r, s2, terminated, truncated, bootstrap_truncation=False)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert any(np.abs(got - w).max() > 1e-4 for got, w in zip(ours, online, strict=True))  # it did move


def test_double_dqn_matches_keras_formulation():
    online, target = init_params(SIZES, 21), init_params(SIZES, 22)
    s, a, r, s2, terminated, truncated = _minibatch(32, seed=23)
    expected = _book_update(online, target, s, a, r, s2, terminated | truncated, double=True)
    plain = _book_update(online, target, s, a, r, s2, terminated | truncated, double=False)
    ours, _ = _ours(online, target, s, a, r, s2, terminated, truncated, bootstrap_truncation=False, double=True)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert any(np.abs(x - y).max() > 1e-5 for x, y in zip(expected, plain, strict=True))  # the targets differ


def test_wider_and_deeper_padding_changes_no_bit():
    """An agent embedded in a larger network (zero units, frozen identity layers) updates exactly as alone."""
    online, target = init_params(SIZES, 31), init_params(SIZES, 32)
    args = _minibatch(32, seed=33)
    exact, exact_loss = _ours(online, target, *args, bootstrap_truncation=False)
    wide_sizes = [4, 24, 32, 16, 16, 2]
    wide_online, trainable = pad_params(online, wide_sizes)
    wide_target, _ = pad_params(target, wide_sizes)
    assert trainable == [True, True, True, False, True]
    padded, padded_loss = _ours(wide_online, wide_target, *args, bootstrap_truncation=False, trainable=trainable)
    for x, y in zip(exact, unpad_params(padded, SIZES), strict=True):
        np.testing.assert_array_equal(x, y)
    assert exact_loss == padded_loss
    identity = padded[6]
    np.testing.assert_array_equal(identity, wide_online[6])  # the frozen layer did not train


def test_bootstrap_mode_bootstraps_through_truncation_only():
    online, target = init_params(SIZES, 3), init_params(SIZES, 4)
    s, a, r, s2, terminated, truncated = _minibatch(32, seed=5)
    assert truncated.any()
    expected = _book_update(online, target, s, a, r, s2, terminated)
    ours, _ = _ours(online, target, s, a, r, s2, terminated, truncated, bootstrap_truncation=True)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("batch_size", "rows"), [(20, 64), (32, 128), (48, 128), (7, 32)])
def test_padded_rows_change_nothing(batch_size, rows):
    """Up to 32 rows are summed in one chunk; more in chunks of 32 and a tree: padding must not show in either."""
    online, target = init_params(SIZES, 5), init_params(SIZES, 6)
    args = _minibatch(batch_size, seed=7)
    exact, exact_loss = _ours(online, target, *args, bootstrap_truncation=False)
    padded, padded_loss = _ours(online, target, *args, bootstrap_truncation=False, rows=rows)
    for x, y in zip(exact, padded, strict=True):
        np.testing.assert_array_equal(x, y)
    assert exact_loss == padded_loss


@pytest.mark.parametrize(("n_agents", "rows"), [(16, 128), (64, 32), (64, 128)])
def test_update_bits_do_not_depend_on_population_size(n_agents, rows):
    """Large populations once made XLA pick another dot kernel; the fixed-order layers must not care."""
    online, target = init_params(SIZES, 8), init_params(SIZES, 9)
    s, a, r, s2, terminated, truncated = _minibatch(rows, seed=11)

    def update(k):
        def stack(x):
            return tf.constant(np.stack([x] * k))

        batch = Batch(stack(s), stack(a), stack(r), stack(s2), stack(terminated), stack(truncated))
        params = [stack(w) for w in online]
        no = tf.zeros([k], tf.bool)
        hyper = UpdateHyper(tf.fill([k], GAMMA), tf.fill([k], 1e-3), tf.fill([k], 32), no, no, tf.ones([k, 4], tf.bool))
        adam = AdamState(
            [tf.zeros_like(p) for p in params], [tf.zeros_like(p) for p in params], tf.zeros([k], tf.int32)
        )
        step = tf.function(dqn_update, jit_compile=True)
        for _ in range(3):
            params, adam, loss = step(params, [stack(w) for w in target], adam, batch, hyper, tf.ones([k], tf.bool))
        return [p.numpy()[0] for p in params], loss.numpy()[0]

    small, small_loss = update(2)
    large, large_loss = update(n_agents)
    for x, y in zip(small, large, strict=True):
        np.testing.assert_array_equal(x, y)
    assert small_loss == large_loss
