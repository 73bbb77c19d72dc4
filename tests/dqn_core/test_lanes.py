"""Lanes: a stream of mixed configurations trains each in the cheapest compiled population it fits, bit for bit as
alone, and each lane's population follows the work it has within the slot budget."""

import pytest

from dqn_core import TrainConfig, train
from dqn_core.errors import ConfigError
from dqn_core.lanes import MAX_LANES, cheapest_fitting, describe, plan_lanes
from dqn_core.stream import StreamShape, Supply, WorkItem, _Lane, train_stream
from tests.dqn_core.same import lone_run
from tests.dqn_core.test_stream import NEIGHBOURS, TARGET, _same

BOOK = TrainConfig()
WIDE = BOOK.replace(hidden_sizes=(64, 64), batch_size=64)
SMALL = BOOK.replace(hidden_sizes=(8, 8), batch_size=16)


def _list_source(items):
    pending = iter(items)
    return lambda: next(pending, Supply.DONE)


def test_one_lane_per_compute_shape_cheapest_first_with_the_largest_replay():
    configs = [WIDE, BOOK.replace(gamma=0.9), BOOK.replace(memory_size=20_000), WIDE.replace(memory_size=500)]
    plan = plan_lanes(configs)
    assert [describe(s) for s in plan.shapes] == ["16-16-16/b32/u1", "64-64/b64/u1"] and plan.merges == ()
    assert [s.memory_size for s in plan.shapes] == [20_000, 10_000]
    assert plan.shapes[0].step_cost() < plan.shapes[1].step_cost()


def test_past_the_cap_the_merge_that_adds_the_least_work_is_made_and_named():
    small = [BOOK.replace(batch_size=b) for b in (16, 32)]
    configs = [*small, WIDE, WIDE.replace(double_dqn=True, updates_per_step=2)]
    plan = plan_lanes(configs, cap=3, overpay_below=1)  # the cap alone (nothing merges beyond it)
    assert len(plan.shapes) == 3
    assert plan.merges == ("16-16-16/b16/u1 + 16-16-16/b32/u1 -> 16-16-16/b32/u1",)
    assert plan_lanes(configs, cap=1).shapes == (StreamShape.covering(configs),)
    many = [BOOK.replace(batch_size=b) for b in (8, 16, 24, 32, 40, 48)]
    assert len(plan_lanes(many, overpay_below=1).shapes) == MAX_LANES
    # Alone, b16 and b20 are the closest pair; when b16 carries the work, widening it to b20 would cost the most.
    three = [BOOK.replace(batch_size=b) for b in (8, 16, 20)]
    pairs = plan_lanes(three, cap=2, overpay_below=1)
    assert [describe(s) for s in pairs.shapes] == ["16-16-16/b8/u1", "16-16-16/b20/u1"]
    weighted = plan_lanes(three, weights=[1, 100, 1], cap=2, overpay_below=1)
    assert [describe(s) for s in weighted.shapes] == ["16-16-16/b16/u1", "16-16-16/b20/u1"]


def test_under_the_cap_close_shapes_share_a_lane_and_far_ones_do_not():
    """A split costs a compiled call per lane: b8 and b16 agents (~2x apart) share one, b64 (~8x) stays apart."""
    plan = plan_lanes([BOOK.replace(batch_size=b) for b in (8, 16, 64)])
    assert [describe(s) for s in plan.shapes] == ["16-16-16/b16/u1", "16-16-16/b64/u1"]
    assert len(plan_lanes([BOOK, BOOK.replace(batch_size=16)]).shapes) == 1  # the default sweep's two batch sizes
    assert len(plan_lanes([BOOK, WIDE]).shapes) == 2


def test_bad_lane_plans_are_one_line():
    with pytest.raises(ConfigError, match="share env_id"):
        plan_lanes([BOOK, BOOK.replace(env_id="CartPole-v1", success_threshold=475)])
    with pytest.raises(ConfigError, match="cap must be an integer >= 1, got 0"):
        plan_lanes([BOOK], cap=0)
    with pytest.raises(ConfigError, match="at least one config"):
        plan_lanes([])


def test_an_item_goes_to_the_cheapest_lane_it_fits():
    shapes = plan_lanes([BOOK, WIDE, BOOK.replace(hidden_sizes=(32,))]).shapes
    assert describe(shapes[cheapest_fitting(shapes, BOOK.replace(hidden_sizes=(8, 8)))]) == "16-16-16/b32/u1"
    assert describe(shapes[cheapest_fitting(shapes, BOOK.replace(hidden_sizes=(20,)))]) == "32/b32/u1"
    assert describe(shapes[cheapest_fitting(shapes, BOOK.replace(batch_size=48, hidden_sizes=(40,)))]) == "64-64/b64/u1"
    assert cheapest_fitting(shapes, BOOK.replace(batch_size=128)) is None


def _run(items, shape, slots, **kwargs):
    """Train items; returns the (tag, episode) sequence the hook saw and the (tag, result) sequence delivered."""
    episodes, delivered = [], []
    train_stream(
        _list_source(items),
        shape=shape,
        slots=slots,
        on_episode=lambda item, stats: episodes.append((item.tag, stats.episode)),
        on_done=lambda item, result: delivered.append((item.tag, result)),
        **kwargs,
    )
    return episodes, delivered


@pytest.fixture(scope="module")
def lane_run():
    """The neighbours (every knob a slot can vary) and a target in two lanes and four slots: lanes are refilled
    while the other runs. Seeds as in `test_stream`, so both compare with the same lone runs."""
    items = [WorkItem(c, 100 + i, tag=f"n{i}") for i, c in enumerate(NEIGHBOURS)] + [WorkItem(TARGET, 7, tag="target")]
    lanes = plan_lanes([item.config for item in items], cap=2).shapes
    visits = []
    advance = _Lane.advance

    def recording_advance(lane):
        visits.append((describe(lane.shape), lane.live_count()))
        return advance(lane)

    _Lane.advance = recording_advance
    try:
        episodes, delivered = _run(items, lanes, 4)
    finally:
        _Lane.advance = advance
    return items, lanes, episodes, delivered, visits


def test_lanes_or_one_covering_shape_train_and_deliver_the_same_bit_for_bit(lane_run):
    """The same stream in one wider shape sees the same episodes in the same order and delivers the same results
    in the same order; a few of them also equal their lone runs."""
    items, lanes, episodes, delivered, _ = lane_run
    assert len(lanes) == 2 and sorted(tag for tag, _ in delivered) == sorted(item.tag for item in items)
    covering_episodes, covering_delivered = _run(items, StreamShape.covering([item.config for item in items]), 4)
    assert episodes == covering_episodes
    assert [tag for tag, _ in delivered] == [tag for tag, _ in covering_delivered]
    for (_, ours), (_, theirs) in zip(delivered, covering_delivered, strict=True):
        _same(ours, theirs)
    by_tag = dict(delivered)
    _same(by_tag["target"], lone_run(TARGET, 7))
    for i in (1, 3, 6):
        _same(by_tag[f"n{i}"], lone_run(NEIGHBOURS[i], 100 + i))


def test_lanes_never_hold_more_agents_than_slots(lane_run):
    _, lanes, _, _, visits = lane_run
    assert {name for name, _ in visits} == {describe(s) for s in lanes}  # both lanes ran
    rounds, live = [], {}
    for name, count in visits:
        if name in live:  # a lane visited again starts the next round of host visits
            rounds.append(sum(live.values()))
            live.clear()
        live[name] = count
    assert rounds and max(rounds) <= 4


def test_a_lane_grows_into_waiting_work_then_shrinks_back_and_results_stay_the_same():
    """A small agent trains alone in its lane's two slots; once the book agents end, three more small ones come:
    its lane grows to four with the first still training, and shrinks back to the two it compiled as they end."""
    long_small = WorkItem(SMALL.replace(max_episodes=6), 10, tag="w0")
    items = [long_small, *[WorkItem(BOOK.replace(max_episodes=1), s, tag=f"b{s}") for s in (1, 2, 3)]]
    items += [WorkItem(SMALL.replace(max_episodes=2), 11 + i, tag=f"w{1 + i}") for i in range(3)]
    lanes = plan_lanes([item.config for item in items]).shapes
    moves = []
    resize = _Lane._resize
    _Lane._resize = lambda lane, size: (moves.append((describe(lane.shape), size)), resize(lane, size))
    try:
        results = {}
        train_stream(
            _list_source(items),
            shape=lanes,
            slots=4,
            on_done=lambda i, r: results.__setitem__(i.tag, r),
            ticks_per_call=16,
        )
    finally:
        _Lane._resize = resize
    assert sorted(results) == sorted(item.tag for item in items)
    assert moves[0] == ("8-8/b16/u1", 4) and ("8-8/b16/u1", 2) in moves[1:]
    _same(results["w0"], train(long_small.config, seed=10))
    _same(results["w2"], train(SMALL.replace(max_episodes=2), seed=12))


def test_the_same_mixed_stream_twice_delivers_the_same_order():
    configs = [BOOK.replace(max_episodes=n) for n in (3, 1, 2)] + [WIDE.replace(max_episodes=n) for n in (2, 1)]
    lanes = plan_lanes(configs).shapes
    orders = [[], []]
    for order in orders:
        items = [WorkItem(c, 70 + i, tag=i) for i, c in enumerate(configs)]
        deliver = order.append
        train_stream(_list_source(items), shape=lanes, slots=3, on_done=lambda i, r, d=deliver: d((i.tag, r.episodes)))
    assert orders[0] == orders[1] and len(orders[0]) == len(configs)


def test_too_few_slots_for_the_lanes_or_an_item_that_fits_none_is_one_line():
    lanes = plan_lanes([BOOK, WIDE]).shapes
    with pytest.raises(ConfigError, match=r"^slots: must be at least the number of lanes \(2\), got 1$"):
        train_stream(_list_source([]), shape=lanes, slots=1)
    with pytest.raises(ConfigError, match=r"seed 5, tag 'x'\) fits none of the stream's 2 lanes \(the nearest: "):
        train_stream(_list_source([WorkItem(BOOK.replace(batch_size=100), 5, tag="x")]), shape=lanes, slots=2)
    with pytest.raises(ConfigError, match="share env_id and in_graph"):
        train_stream(_list_source([]), shape=[lanes[0], StreamShape(env_id="CartPole-v1")], slots=2)
