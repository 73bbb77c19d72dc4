"""The streaming population: refilled slots equal lone runs bit for bit, exact draining, one compilation, bad input,
and the per-slot knobs (replay ratio, Double DQN, network size, target period in steps, linear exploration)."""

import numpy as np
import pytest

from dqn_core import TrainConfig, graph, replay, rng, tail, train
from dqn_core.errors import ConfigError
from dqn_core.quiet_tf import tf
from dqn_core.results import STOP_HOOK
from dqn_core.stream import StreamError, StreamShape, Supply, WorkItem, _Lane, train_stream
from dqn_core.update import UpdateHyper, dqn_update
from tests.dqn_core.same import lone_run

BOOK = TrainConfig()
SHORT = BOOK.replace(max_episodes=3)


def _same(a, b):
    assert a.episodes_to_solve == b.episodes_to_solve
    assert a.stop_reason == b.stop_reason
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.epsilons, b.epsilons)
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)


def _list_source(items):
    pending = iter(items)
    return lambda: next(pending, Supply.DONE)


# Neighbours that differ from the book (and from each other) in every field a slot can vary.
NEIGHBOURS = [
    BOOK.replace(gamma=0.95, batch_size=64, hidden_sizes=(32,), max_episodes=4),
    BOOK.replace(epsilon_decay_rate=0.01, warmup=0, memory_size=5000, updates_per_step=3, max_episodes=6),
    BOOK.replace(learning_rate=3e-3, double_dqn=True, hidden_sizes=(8, 8), max_episodes=2),
    BOOK.replace(target_refresh_steps=50, epsilon_schedule="linear", epsilon_decay_steps=800, max_episodes=5),
    BOOK.replace(batch_size=16, target_refresh_episodes=3, time_limit="bootstrap", max_episodes=3),
    BOOK.replace(reward_mode="env", success_threshold=20, successes_to_solve=2, epsilon_stop=0.2, max_episodes=7),
    BOOK.replace(epsilon_start=0.5, hidden_sizes=(16, 16, 16, 16), max_episodes=2),
    BOOK.replace(warmup=3, gamma=0.9, memory_size=300, batch_size=8, max_episodes=4),
]
TARGET = BOOK.replace(max_episodes=25, updates_per_step=2, double_dqn=True, hidden_sizes=(24, 12))


@pytest.fixture(scope="module")
def mixed_stream():
    """Eight short neighbours fill the slots; the target enters a slot one of them left, then more follow."""
    items = [WorkItem(c, 100 + i, tag=f"n{i}") for i, c in enumerate(NEIGHBOURS)]
    items += [WorkItem(TARGET, 7, tag="target")]
    items += [WorkItem(c, 200 + i, tag=f"m{i}") for i, c in enumerate(NEIGHBOURS[:4])]
    shape = StreamShape.covering([c for c in NEIGHBOURS] + [TARGET])
    delivered, episodes, timeline = [], [], []

    def on_episode(item, stats):
        episodes.append((item.tag, stats.episode))
        timeline.append(("episode", item.tag, stats.episode))

    def on_done(item, result):
        delivered.append((item, result))
        timeline.append(("done", item.tag, result.episodes))

    train_stream(_list_source(items), shape=shape, slots=8, on_episode=on_episode, on_done=on_done, ticks_per_call=64)
    return items, delivered, episodes, timeline


def test_refilled_slot_equals_a_lone_run_bit_for_bit(mixed_stream):
    _, delivered, _, timeline = mixed_stream
    by_tag = {item.tag: result for item, result in delivered}
    entered = timeline.index(("episode", "target", 1))
    assert any(kind == "done" for kind, _, _ in timeline[:entered])  # all 8 slots were taken: it reused one
    _same(by_tag["target"], lone_run(TARGET, 7))
    for i in (1, 3, 6):  # neighbours with other knobs are exact too
        _same(by_tag[f"n{i}"], lone_run(NEIGHBOURS[i], 100 + i))


def test_stream_drains_exactly_in_finishing_order(mixed_stream):
    items, delivered, episodes, _ = mixed_stream
    tags = [item.tag for item, _ in delivered]
    assert sorted(tags) == sorted(item.tag for item in items)  # every item once, none twice
    last_episode = {}
    for position, (tag, _) in enumerate(episodes):
        last_episode[tag] = position
    assert tags == sorted(tags, key=last_episode.__getitem__)  # delivered in the order they finished
    for item, result in delivered:
        assert result.episodes == len([1 for tag, _ in episodes if tag == item.tag])


def test_empty_source_ends_the_stream():
    delivered = []
    count = train_stream(lambda: Supply.DONE, shape=StreamShape(), slots=4, on_done=lambda *a: delivered.append(a))
    assert count == 0 and delivered == []


def test_wait_is_asked_again_and_a_stopped_agent_frees_its_slot():
    answers = iter([Supply.WAIT, Supply.WAIT, WorkItem(BOOK, 0, tag=0), WorkItem(BOOK, 1, tag=1)])
    late = iter([Supply.WAIT, WorkItem(SHORT, 2, tag=2)])
    calls = {"late": 0}

    def source():
        item = next(answers, None)
        if item is not None:
            return item
        calls["late"] += 1
        return next(late, Supply.DONE)

    seen = []

    def hook(item, stats):
        seen.append((item.tag, stats.episode))
        return not (item.tag == 0 and stats.episode == 2)

    delivered = []
    train_stream(
        source, shape=StreamShape(), slots=2, on_episode=hook, on_done=lambda i, r: delivered.append((i.tag, r))
    )
    results = dict(delivered)
    assert results[0].stop_reason == STOP_HOOK and results[0].episodes == 2
    assert seen.index((2, 1)) > seen.index((0, 2))  # item 2 got the slot item 0 left
    assert results[1].episodes == len([t for t, _ in seen if t == 1])
    _same(results[2], train(SHORT, seed=2))
    assert calls["late"] >= 2  # WAIT was answered and asked again


def test_a_stream_compiles_once_per_shape():
    shape = StreamShape(hidden_sizes=(16, 8), batch_rows=48, memory_size=2000)
    configs = [BOOK.replace(hidden_sizes=(16, 8), batch_size=48, memory_size=2000, max_episodes=2)] * 6
    train_stream(_list_source([WorkItem(c, s) for s, c in enumerate(configs)]), shape=shape, slots=4)
    traces, compiled = graph.TRACES["run_ticks"], set(tail.COMPILED)
    other = [BOOK.replace(hidden_sizes=(8,), batch_size=16, memory_size=500, max_episodes=3, gamma=0.9)] * 9
    train_stream(_list_source([WorkItem(c, 50 + s) for s, c in enumerate(other)]), shape=shape, slots=4)
    new_sizes = [slots for _, slots in tail.COMPILED - compiled]
    assert graph.TRACES["run_ticks"] == traces + len(new_sizes)  # refills never compile; a new tail size may
    assert all(slots < 4 for slots in new_sizes)


def test_item_that_does_not_fit_is_one_line_naming_it():
    shape = StreamShape(batch_rows=32, memory_size=1000)
    items = [WorkItem(SHORT.replace(memory_size=1000), 0, tag="ok"), WorkItem(BOOK.replace(batch_size=64), 3, "big")]
    with pytest.raises(ConfigError, match=r"work item \(seed 3, tag 'big'\).*batch_size 64 exceeds.*memory_size"):
        train_stream(_list_source(items), shape=shape, slots=4)
    with pytest.raises(ConfigError, match="double_dqn is on"):
        train_stream(_list_source([WorkItem(BOOK.replace(double_dqn=True), 0)]), shape=StreamShape(), slots=2)
    with pytest.raises(ConfigError, match="hidden_sizes"):
        train_stream(_list_source([WorkItem(BOOK.replace(hidden_sizes=(64,)), 0)]), shape=StreamShape(), slots=2)
    with pytest.raises(ConfigError, match="updates_per_step 2 exceeds the declared maximum 1"):
        train_stream(_list_source([WorkItem(BOOK.replace(updates_per_step=2), 0)]), shape=StreamShape(), slots=2)
    with pytest.raises(ConfigError, match="env_id 'CartPole-v1' is not the stream's 'CartPole-v0'"):
        train_stream(_list_source([WorkItem(BOOK.replace(env_id="CartPole-v1"), 0)]), shape=StreamShape(), slots=2)
    with pytest.raises(StreamError, match=r"work source returned tuple for item #1; expected a WorkItem"):
        train_stream(lambda: (BOOK, 0), shape=StreamShape(), slots=2)
    with pytest.raises(ConfigError, match="slots: must be an integer >= 1"):
        train_stream(_list_source([]), shape=StreamShape(), slots=0)
    with pytest.raises(ConfigError, match=r"seed: must be an integer in \[0, 2\*\*32\)"):
        train_stream(_list_source([WorkItem(BOOK, 2**32)]), shape=StreamShape(), slots=2)


def test_failing_source_or_on_done_keeps_what_was_delivered():
    produced = iter([WorkItem(SHORT, 0, tag="a"), WorkItem(SHORT, 1, tag="b")])

    def source():
        item = next(produced, None)
        if item is None:
            raise OSError("queue went away")
        return item

    delivered = []
    with pytest.raises(StreamError, match=r"work source failed producing item #3: queue went away"):
        train_stream(source, shape=StreamShape(), slots=2, on_done=lambda i, r: delivered.append(i.tag))
    assert sorted(delivered) == ["a", "b"]  # both finished before the source failed at the next refill

    delivered.clear()

    def on_done(item, result):
        if item.tag == "b":
            raise ValueError("disk full")
        delivered.append(item.tag)

    items = [WorkItem(SHORT.replace(max_episodes=1), 0, "a"), WorkItem(SHORT, 1, "b"), WorkItem(SHORT, 2, "c")]
    with pytest.raises(StreamError, match=r"on_done failed for work item \(seed 1, tag 'b'\): disk full"):
        train_stream(_list_source(items), shape=StreamShape(), slots=1, on_done=on_done)
    assert delivered == ["a"]


def test_linear_epsilon_schedule_follows_its_formula():
    config = BOOK.replace(epsilon_schedule="linear", epsilon_decay_steps=1500, epsilon_stop=0.05, max_episodes=60)
    result = train(config, seed=3)
    total = np.cumsum(result.steps)
    expected = np.maximum(1.0 - 0.95 * total / 1500, 0.05)
    np.testing.assert_allclose(result.epsilons, expected, rtol=1e-6, atol=1e-7)
    assert (result.epsilons == np.float32(0.05)).any()  # it reached the floor and stayed there


def _one_tick_at_a_time(config, ticks):
    """Drive one agent through the compiled graph a tick per call, returning its state before every tick (the
    replay as a snapshot: its variables are updated in place)."""
    stream = _Lane(StreamShape.covering([config]), 1, 1)
    stream._place([(0, WorkItem(config, 5))])
    states = []
    for _ in range(ticks):
        states.append(stream.state._replace(memory=replay.read(stream.state.memory)))
        stream.state, _, _ = graph.run_ticks(stream.state, stream.hyper, 1, stream.features)
    states.append(stream.state._replace(memory=replay.read(stream.state.memory)))
    return states


def test_a_call_writes_the_replay_into_the_variables_it_was_given():
    """The buffers live in variables the compiled call updates in place (not a new copy per call)."""
    config = BOOK.replace(warmup=0)
    states = _one_tick_at_a_time(config, 3)
    assert [s.memory.count.numpy()[0] for s in states] == [0, 1, 2, 3]
    stream = _Lane(StreamShape.covering([config]), 1, 1)
    stream._place([(0, WorkItem(config, 5))])
    before = stream.state.memory
    stream.state, _, _ = graph.run_ticks(stream.state, stream.hyper, 3, stream.features)
    assert all(after is variable for after, variable in zip(stream.state.memory, before, strict=True))
    np.testing.assert_array_equal(before.obs.numpy()[0, :3], states[3].memory.obs.numpy()[0, :3])
    assert before.count.numpy()[0] == 3


def test_target_refresh_every_n_steps():
    config = BOOK.replace(target_refresh_steps=7, warmup=0, batch_size=4)
    states = _one_tick_at_a_time(config, 30)
    for tick in range(1, 31):
        refreshed_at = 7 * ((tick - 1) // 7)  # the tick whose start copied the online weights
        for target, online in zip(states[tick].target, states[refreshed_at].params, strict=True):
            np.testing.assert_array_equal(target.numpy()[0], online.numpy()[0])
    assert not np.array_equal(states[6].params[0].numpy()[0], states[0].params[0].numpy()[0])  # it trained


def test_updates_per_step_equals_that_many_sequential_updates():
    """Reference: a tick's three gradient steps are three `dqn_update` calls, each on its own minibatch."""
    config = BOOK.replace(warmup=0, batch_size=4, updates_per_step=3)
    states = _one_tick_at_a_time(config, 12)
    trained = [i for i in range(12) if states[i + 1].adam.t.numpy()[0] > states[i].adam.t.numpy()[0]]
    assert trained and all(states[i + 1].adam.t.numpy()[0] - states[i].adam.t.numpy()[0] == 3 for i in trained)
    stream = _Lane(StreamShape.covering([config]), 1, 1)
    stream._place([(0, WorkItem(config, 5))])
    h = stream.hyper
    hyper = UpdateHyper(h.gamma, h.learning_rate, h.batch_size, h.bootstrap_truncation, h.double_dqn, h.trainable)
    update = tf.function(dqn_update, jit_compile=True)
    for i in trained[:3]:
        before, after = states[i], states[i + 1]
        params, adam = before.params, before.adam
        apply = tf.constant([True, False])
        for u, stream_id in enumerate((rng.STREAM_SAMPLE, rng.STREAM_EXTRA_SAMPLES + 1, rng.STREAM_EXTRA_SAMPLES + 2)):
            batch = replay.sample(after.memory, h.key, after.total_step, 4, stream_id)
            params, adam, _ = update(params, after.target, adam, batch, hyper, apply)
            assert u < 3
        for got, want in zip(after.params, params, strict=True):
            np.testing.assert_allclose(got.numpy()[0], want.numpy()[0], rtol=1e-6, atol=1e-9)
