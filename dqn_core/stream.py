"""A streaming population: K slots that train continuously, each refilled with new (config, seed) work the moment
its agent finishes, so the compiled graph stays full instead of waiting for a batch's slowest agent.

The compiled shape depends only on the slot count and a `StreamShape` declared up front (network, replay
capacity, minibatch rows, feature switches), so a process compiles a stream once. Refilling a slot is a host-side
write of a few small arrays; the replay buffers are reused as they are (an emptied buffer is a zero fill count).
An agent's numbers come from its own seed and counters only, so its result does not depend on its slot, its
neighbours, the slot count or when it entered: a run inside a stream equals the same (config, seed) alone.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from dqn_core import graph, hyper, replay
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.host import HOST, HostEnvs
from dqn_core.lanes import cheapest_fitting
from dqn_core.network import init_params, layer_sizes, pad_params, unpad_params
from dqn_core.quiet_tf import tf
from dqn_core.results import STOP_HOOK, STOP_MAX_EPISODES, STOP_SOLVED, EpisodeStats, TrainResult
from dqn_core.shape import MIN_SLOTS, StreamShape, WorkItem, check_item, physical_slots
from dqn_core.tail import TailRental
from dqn_core.update import AdamState

DEFAULT_TICKS_PER_CALL = 256
WAIT_PAUSE_S = 0.05
"""How long an idle stream sleeps before asking a source that answered WAIT again."""
TAIL_SHRINK = 2
"""Once the source is dry and at most half the slots still train, the survivors may move into a population half
the size (when, see `dqn_core.tail`). A larger factor compiles fewer sizes but leaves the tail running at low
occupancy, which cost more throughput than the compilations it saved."""


class Supply(enum.Enum):
    """What a work source answers instead of a work item."""

    WAIT = "wait"
    """Nothing to hand out right now (e.g. waiting on other workers); ask again at the next host visit."""
    DONE = "done"
    """No more work, ever: the stream ends once its running agents finish."""


WorkSource = Callable[[], "WorkItem | Supply"]
StreamEpisodeHook = Callable[[WorkItem, EpisodeStats], "bool | None"]
"""on_episode(item, stats) after each finished episode; return False to stop that agent (its slot frees)."""
DoneHook = Callable[[WorkItem, TrainResult], None]


class StreamError(RuntimeError):
    """A work source or an `on_done` callback failed; the message names the item. Results delivered before it
    stay delivered."""


def train_stream(
    source: WorkSource,
    *,
    shape: StreamShape | Sequence[StreamShape],
    slots: int,
    on_episode: StreamEpisodeHook | None = None,
    on_done: DoneHook | None = None,
    ticks_per_call: int = DEFAULT_TICKS_PER_CALL,
) -> int:
    """Train work items from `source` in `slots` slots until it answers DONE and every agent has finished.

    `shape` is one compiled shape, or several lanes (`dqn_core.lanes`): each item then trains in the cheapest lane
    it fits, and each lane's population grows and shrinks with the work it has, `slots` agents at most in all.
    `source()` is asked for an item whenever fewer than `slots` agents train at a host visit (every
    `ticks_per_call` steps); `on_done(item, result)` receives each agent's result as soon as the host sees it
    finish (lane by lane, in the order agents finished in each). Returns the number of items trained.
    """
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ConfigError(f"slots: must be an integer >= 1, got {slots!r}")
    if isinstance(ticks_per_call, bool) or not isinstance(ticks_per_call, int) or ticks_per_call < 1:
        raise ConfigError(f"ticks_per_call: must be an integer >= 1, got {ticks_per_call!r}")
    shapes = [shape] if isinstance(shape, StreamShape) else list(shape)
    if not shapes or not all(isinstance(s, StreamShape) for s in shapes):
        raise ConfigError("shape: must be a StreamShape or a non-empty list of them (lanes)")
    if len({(s.env_id, s.in_graph) for s in shapes}) > 1:
        raise ConfigError("shape: all lanes of a stream must share env_id and in_graph")
    if slots < len(shapes):
        raise ConfigError(f"slots: must be at least the number of lanes ({len(shapes)}), got {slots}")
    stream = _Stream(shapes, slots, ticks_per_call)
    return stream.run(source, on_episode, on_done)


class _Ended(NamedTuple):
    """A call's `graph.Events` as NumPy arrays ([ticks, slots] each)."""

    ended: np.ndarray
    steps: np.ndarray
    epsilon: np.ndarray
    mean_loss: np.ndarray
    success: np.ndarray
    consecutive: np.ndarray


@dataclass
class _Record:
    """One agent's progress, kept on the host."""

    item: WorkItem
    entered: float
    order: int = 0
    """The agent's place in the order items entered the stream: ties between lanes go by it."""
    steps: list[int] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    episodes_to_solve: int | None = None
    stop_reason: str | None = None
    wall_time_s: float = 0.0


class _Stream:
    """The host side of a stream: asks the source for work within the slot budget, routes each item to the cheapest
    lane it fits, grows a lane that has work waiting, and visits the lanes in turn (one compiled call each)."""

    def __init__(self, shapes: list[StreamShape], slots: int, ticks: int) -> None:
        self.shapes = shapes
        self.budget = slots
        self.ticks = ticks
        self.lanes: list[_Lane | None] = [None] * len(shapes)
        if len(shapes) == 1:  # one lane takes the whole budget from the start: nothing to grow into
            self.lanes[0] = _Lane(shapes[0], slots, ticks)
        self.queues: list[list[tuple[int, WorkItem]]] = [[] for _ in shapes]  # (entry order, item)
        self.source_done = False
        self.items_started = 0

    def run(self, source: WorkSource, on_episode: StreamEpisodeHook | None, on_done: DoneHook | None) -> int:
        try:
            return self._run(source, on_episode, on_done)
        finally:
            for lane in self.lanes:
                if lane is not None:
                    lane.close()

    def _run(self, source: WorkSource, on_episode: StreamEpisodeHook | None, on_done: DoneHook | None) -> int:
        self._fill(source)
        while True:
            running = [lane for lane in self.lanes if lane is not None and lane.live_count()]
            if not running:
                if self.source_done:
                    return self.items_started
                time.sleep(WAIT_PAUSE_S)
                self._fill(source)
                continue
            self._round(running, on_episode, on_done)
            if not self.source_done:
                self._fill(source)
                if len(self.lanes) > 1:  # a lane whose work went elsewhere shrinks while the others go on
                    self._shrink_lanes()
            else:
                self._shrink_lanes()

    def _round(self, running: list[_Lane], on_episode: StreamEpisodeHook | None, on_done: DoneHook | None) -> None:
        """One compiled call per lane, then every episode that ended, in tick order across lanes (ties in the order
        the agents entered), then each finished agent's delivery in the order they finished. The order does not
        depend on lanes or slots, so a stream delivers the same sequence however its lanes are cut."""
        calls = [(lane, lane.advance()) for lane in running]
        ended = sorted(
            (int(t), lane.records[slot].order, k, int(slot))
            for k, (lane, events) in enumerate(calls)
            for t, slot in zip(*np.nonzero(events.ended), strict=True)
            if lane.records[slot] is not None
        )
        finished: list[tuple[int, int]] = []
        stopped: list[list[int]] = [[] for _ in calls]
        for t, _, k, slot in ended:
            lane, events = calls[k]
            reason = lane.episode(events, t, slot, on_episode)
            if reason is not None:
                finished.append((k, slot))
                if reason == STOP_HOOK:
                    stopped[k].append(slot)
        for (lane, _), slots in zip(calls, stopped, strict=True):
            if slots:
                lane.deactivate(slots)
        if not finished:
            return
        results = {}
        for k, (lane, _) in enumerate(calls):
            mine = lane.collect([slot for kk, slot in finished if kk == k])
            results.update({(k, slot): result for slot, result in mine.items()})
        for key in finished:
            item, result = results[key]
            if on_done is None:
                continue
            try:
                on_done(item, result)
            except Exception as exc:
                raise StreamError(f"on_done failed for {item.describe()}: {exc}") from exc

    def _live_count(self) -> int:
        return sum(lane.live_count() for lane in self.lanes if lane is not None)

    def _fill(self, source: WorkSource) -> None:
        """Ask the source for items while fewer than `slots` agents train; place them, growing lanes as needed."""
        asked = self._live_count()
        while asked < self.budget:
            try:
                item = source()
            except Exception as exc:
                raise StreamError(f"work source failed producing item #{self.items_started + 1}: {exc}") from exc
            if item is Supply.DONE:
                self.source_done = True
                break
            if item is Supply.WAIT:
                break
            if not isinstance(item, WorkItem):
                raise StreamError(
                    f"work source returned {type(item).__name__} for item #{self.items_started + 1}; "
                    "expected a WorkItem, Supply.WAIT or Supply.DONE"
                )
            self.queues[self._lane_for(item)].append((self.items_started, item))
            self.items_started += 1
            asked += 1
        for index, queue in enumerate(self.queues):
            if queue:
                self._place(index, queue)
                self.queues[index] = []

    def _lane_for(self, item: WorkItem) -> int:
        """The cheapest lane the item fits; ConfigError naming the item when none does."""
        if len(self.shapes) == 1:
            self.shapes[0].check(item)
            return 0
        check_item(item)
        lane = cheapest_fitting(self.shapes, item.config)
        if lane is None:
            nearest = min((shape.misfits(item.config) for shape in self.shapes), key=len)
            raise ConfigError(
                f"{item.describe()} fits none of the stream's {len(self.shapes)} lanes "
                f"(the nearest: {'; '.join(nearest)})"
            )
        return lane

    def _place(self, index: int, items: list[tuple[int, WorkItem]]) -> None:
        lane = self.lanes[index]
        if lane is None:
            lane = self.lanes[index] = _Lane(self.shapes[index], len(items), self.ticks)
        elif len(items) > lane.free_count():
            lane.grow(physical_slots(lane.live_count() + len(items)))
        lane.place(items)

    def _shrink_lanes(self) -> None:
        for lane in self.lanes:
            if lane is not None and lane.live_count() and len(lane.records) > MIN_SLOTS:
                lane.shrink_tail()


class _Lane:
    """One compiled population of a stream: which agent sits in which slot, the compiled call, hooks, delivery
    and the tail."""

    def __init__(self, shape: StreamShape, slots: int, ticks: int) -> None:
        self.shape = shape
        self.ticks = ticks
        env = shape.env
        simulator = env.simulator if shape.in_graph and env.simulator in graph.SIMULATORS else HOST
        self.features = graph.Features(
            simulator, env.max_steps, env.n_actions, shape.batch_rows, shape.max_updates, shape.double_dqn
        )
        self.sizes = shape.sizes()
        self.n_layers = len(self.sizes) - 1
        size = physical_slots(slots)
        self.host = HostEnvs(env, size) if simulator == HOST else None
        self._blank(size)
        self.tail = TailRental((simulator, shape, self.features, ticks))

    def _blank(self, size: int) -> None:
        """`size` empty slots. They are inactive: their values are never used, only kept valid (the book's, seed 0)."""
        self.records: list[_Record | None] = [None] * size
        blank = hyper.row(hyper.Source(TrainConfig(), 0, [True] * self.n_layers))
        self.hyper_np = {
            name: np.stack([np.asarray(value, dtype=hyper.DTYPES[name])] * size) for name, value in blank.items()
        }
        self.state = self._empty_state(size)
        self.hyper = self._hyper_tensors()

    def close(self) -> None:
        if self.host is not None:
            self.host.close()

    def live_count(self) -> int:
        return sum(r is not None for r in self.records)

    def free_count(self) -> int:
        return len(self.records) - self.live_count()

    def _advance(self) -> graph.Events:
        """Up to `ticks` env steps of every slot: one compiled call in the graph, or the host loop."""
        if self.host is None:
            self.state, events, _ = graph.run_ticks(self.state, self.hyper, self.ticks, self.features)
        else:
            key = self.hyper_np["key"]
            self.state, events, _ = self.host.run(self.state, self.hyper, key, self.ticks, self.features)
        return events

    def advance(self) -> _Ended:
        """One compiled call (timed for the tail's rent-or-buy rule); its episode events as NumPy arrays."""
        started = time.perf_counter()
        events = self._advance()
        self.tail.ran(len(self.records), time.perf_counter() - started)
        return _Ended(*(np.asarray(e) for e in events))

    def grow(self, size: int) -> None:
        """Into `size` slots to take more work (a size compiled before costs no compilation)."""
        if self.live_count():
            self._resize(size)
        else:
            if self.host is not None:
                self.host.reorder([], size)
            self._blank(size)

    def shrink_tail(self) -> None:
        """Once no more work comes: into the smallest compiled population that holds the survivors, or into half the
        slots when at most half train and the rent-or-buy rule says so (`dqn_core.tail`)."""
        slots, live = len(self.records), self.live_count()
        size = self.tail.compiled_size_for(slots, physical_slots(live))
        if size is None and live <= slots // TAIL_SHRINK:
            half = physical_slots(slots // TAIL_SHRINK)
            size = half if self.tail.shrink_now(slots, half) else None
        if size is not None:
            self._compact(size)

    def place(self, entries: list[tuple[int, WorkItem]]) -> None:
        """New agents, each with its place in the stream's entry order, into the lowest free slots (there must be
        enough: `grow` first)."""
        free = [slot for slot, r in enumerate(self.records) if r is None]
        placed = list(zip(free, [item for _, item in entries], strict=False))
        self._place(placed)
        for (slot, _), (order, _) in zip(placed, entries, strict=True):
            self.records[slot].order = order

    def _place(self, placed: list[tuple[int, WorkItem]]) -> None:
        """Fresh agents in the given slots: own initial weights, zeroed optimizer, empty replay, reset counters."""
        now = time.perf_counter()
        rows = np.array([slot for slot, _ in placed])
        fresh = []
        for slot, item in placed:
            real = layer_sizes(self.sizes[0], item.config.hidden_sizes, self.sizes[-1])
            weights, trainable = pad_params(init_params(real, item.seed), self.sizes)
            fresh.append(weights)
            for name, value in hyper.row(hyper.Source(item.config, item.seed, trainable)).items():
                self.hyper_np[name][slot] = value
            self.records[slot] = _Record(item=item, entered=now)
        s = self.state

        def fresh_weights(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
            out = []
            for layer, tensor in enumerate(tensors):
                array = tensor.numpy()
                array[rows] = np.stack([w[layer] for w in fresh])
                out.append(tf.constant(array))
            return out

        def zeroed(tensor: tf.Tensor, value: Any = 0) -> tf.Tensor:
            array = tensor.numpy()
            array[rows] = value
            return tf.constant(array)

        active = s.active.numpy()
        active[rows] = True
        s.memory.index.assign(zeroed(s.memory.index))  # an emptied replay is a zero fill count
        s.memory.count.assign(zeroed(s.memory.count))
        self.state = graph.State(
            params=fresh_weights(s.params),
            target=fresh_weights(s.target),
            adam=AdamState([zeroed(m) for m in s.adam.m], [zeroed(v) for v in s.adam.v], zeroed(s.adam.t)),
            memory=s.memory,
            physics=zeroed(s.physics),
            episode_step=zeroed(s.episode_step),
            episode_return=zeroed(s.episode_return),
            total_step=zeroed(s.total_step),
            episodes_done=zeroed(s.episodes_done),
            consecutive=zeroed(s.consecutive),
            loss_sum=zeroed(s.loss_sum),
            loss_count=zeroed(s.loss_count),
            active=tf.constant(active),
        )
        self.hyper = self._hyper_tensors()

    def episode(self, events: _Ended, t: int, slot: int, on_episode: StreamEpisodeHook | None) -> str | None:
        """Record the episode that slot's agent ended at tick `t` of the last call and run the hook. Returns None,
        or why the agent is done (it is then collected); `STOP_HOOK` also clears its slot's active flag later."""
        record = self.records[slot]
        if record is None or record.stop_reason is not None:
            return None  # an empty slot, or an agent the hook stopped earlier in this chunk
        config = record.item.config
        record.steps.append(int(events.steps[t, slot]))
        record.epsilons.append(float(events.epsilon[t, slot]))
        record.losses.append(float(events.mean_loss[t, slot]))
        record.successes.append(bool(events.success[t, slot]))
        stats = EpisodeStats(
            episode=len(record.steps),
            steps=record.steps[-1],
            epsilon=record.epsilons[-1],
            mean_loss=record.losses[-1],
            success=record.successes[-1],
            consecutive_successes=int(events.consecutive[t, slot]),
            total_steps=sum(record.steps),
        )
        if stats.consecutive_successes >= config.successes_to_solve:
            record.episodes_to_solve = stats.episode
            record.stop_reason = STOP_SOLVED
        elif stats.episode >= config.max_episodes:
            record.stop_reason = STOP_MAX_EPISODES
        if on_episode is not None and on_episode(record.item, stats) is False and record.stop_reason is None:
            record.stop_reason = STOP_HOOK
        if record.stop_reason is not None:
            record.wall_time_s = time.perf_counter() - record.entered
        return record.stop_reason

    def deactivate(self, slots: list[int]) -> None:
        """Agents the hook stopped: inactive from the next call on (their slots free once collected)."""
        active = self.state.active.numpy()
        active[slots] = False
        self.state = self.state._replace(active=tf.constant(active))

    def collect(self, finished: list[int]) -> dict[int, tuple[WorkItem, TrainResult]]:
        """Each finished agent's item and result by slot; the slots are free afterwards."""
        arrays = [p.numpy() for p in self.state.params]
        results = {}
        for slot in finished:
            record = self.records[slot]
            assert record is not None
            real = layer_sizes(self.sizes[0], record.item.config.hidden_sizes, self.sizes[-1])
            weights = unpad_params([a[slot] for a in arrays], real)
            results[slot] = (record.item, _result(record, weights))
            self.records[slot] = None
        return results

    def _compact(self, size: int) -> None:
        """Once its work thins out, gather the lane's agents (at most `size`) into a population of `size` slots, so
        the tail's cost per agent stays near what it costs at full occupancy (see TAIL_SHRINK)."""
        self._resize(size)

    def _resize(self, size: int) -> None:
        """The live agents into the first slots of a population of `size` slots (fewer or more than now)."""
        keep = [slot for slot, r in enumerate(self.records) if r is not None]
        if not keep:
            return
        order = np.array(keep + [keep[0]] * (size - len(keep)))
        index = tf.constant(order, tf.int32)
        gathered = tf.nest.map_structure(lambda x: tf.gather(x, index), self.state)
        self.state = gathered._replace(
            memory=replay.as_variables(gathered.memory), active=tf.constant(np.arange(size) < len(keep))
        )
        self.hyper_np = {name: column[order] for name, column in self.hyper_np.items()}
        self.hyper = self._hyper_tensors()
        self.records = [self.records[slot] for slot in keep] + [None] * (size - len(keep))
        if self.host is not None:
            self.host.reorder(keep, size)

    # --- state construction ---------------------------------------------------------------------------------
    def _hyper_tensors(self) -> hyper.Hyper:
        return hyper.Hyper(**{name: tf.constant(column) for name, column in self.hyper_np.items()})

    def _physics_dim(self) -> int:
        """The port's state width in the graph; a host env's observation width on the host."""
        if self.features.simulator == HOST:
            return self.shape.env.obs_dim
        return graph.SIMULATORS[self.features.simulator].STATE_DIM

    def _empty_state(self, size: int) -> graph.State:
        params = [tf.zeros([size, *p.shape], tf.float32) for p in init_params(self.sizes, 0)]
        zeros_i = tf.zeros([size], tf.int32)
        zeros_f = tf.zeros([size], tf.float32)
        return graph.State(
            params=params,
            target=list(params),
            adam=AdamState([tf.zeros_like(p) for p in params], [tf.zeros_like(p) for p in params], zeros_i),
            memory=replay.as_variables(replay.empty_replay(size, self.shape.memory_size, self.sizes[0])),
            physics=tf.zeros([size, self._physics_dim()], tf.float64),
            episode_step=zeros_i,
            episode_return=zeros_f,
            total_step=zeros_i,
            episodes_done=zeros_i,
            consecutive=zeros_i,
            loss_sum=zeros_f,
            loss_count=zeros_i,
            active=tf.zeros([size], tf.bool),
        )


def _result(record: _Record, weights: list[np.ndarray]) -> TrainResult:
    steps = np.array(record.steps, dtype=np.int64)
    return TrainResult(
        config=record.item.config,
        seed=record.item.seed,
        episodes_to_solve=record.episodes_to_solve,
        steps=steps,
        epsilons=np.array(record.epsilons, dtype=np.float64),
        losses=np.array(record.losses, dtype=np.float64),
        successes=np.array(record.successes, dtype=bool),
        total_env_steps=int(steps.sum()),
        wall_time_s=record.wall_time_s,
        stop_reason=record.stop_reason or STOP_MAX_EPISODES,
        weights=weights,
    )
