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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dqn_core import graph, hyper, replay
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.host import HOST, HostEnvs
from dqn_core.network import init_params, layer_sizes, pad_params, unpad_params
from dqn_core.quiet_tf import tf
from dqn_core.results import STOP_HOOK, STOP_MAX_EPISODES, STOP_SOLVED, EpisodeStats, TrainResult
from dqn_core.shape import MIN_SLOTS, StreamShape, WorkItem, physical_slots
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
    shape: StreamShape,
    slots: int,
    on_episode: StreamEpisodeHook | None = None,
    on_done: DoneHook | None = None,
    ticks_per_call: int = DEFAULT_TICKS_PER_CALL,
) -> int:
    """Train work items from `source` in `slots` slots until it answers DONE and every agent has finished.

    `source()` is asked for an item whenever a slot is free at a host visit (every `ticks_per_call` steps);
    `on_done(item, result)` receives each agent's result as soon as the host sees it finish, in the order agents
    finished. Returns the number of items trained.
    """
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ConfigError(f"slots: must be an integer >= 1, got {slots!r}")
    if isinstance(ticks_per_call, bool) or not isinstance(ticks_per_call, int) or ticks_per_call < 1:
        raise ConfigError(f"ticks_per_call: must be an integer >= 1, got {ticks_per_call!r}")
    stream = _Stream(shape, slots, ticks_per_call)
    return stream.run(source, on_episode, on_done)


@dataclass
class _Record:
    """One agent's progress, kept on the host."""

    item: WorkItem
    entered: float
    steps: list[int] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    episodes_to_solve: int | None = None
    stop_reason: str | None = None
    wall_time_s: float = 0.0


class _Stream:
    """The host side of a stream: which agent sits in which slot, refills, hooks, delivery and the tail."""

    def __init__(self, shape: StreamShape, slots: int, ticks: int) -> None:
        self.shape = shape
        self.capacity = slots
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
        self.records: list[_Record | None] = [None] * size
        # Empty slots are inactive: their values are never used, only kept valid (the book's, seed 0).
        blank = hyper.row(hyper.Source(TrainConfig(), 0, [True] * self.n_layers))
        self.hyper_np = {
            name: np.stack([np.asarray(value, dtype=hyper.DTYPES[name])] * size) for name, value in blank.items()
        }
        self.state = self._empty_state(size)
        self.hyper = self._hyper_tensors()
        self.source_done = False
        self.items_started = 0
        self.tail = TailRental((simulator, shape, self.features, ticks))

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self, source: WorkSource, on_episode: StreamEpisodeHook | None, on_done: DoneHook | None) -> int:
        try:
            return self._run(source, on_episode, on_done)
        finally:
            if self.host is not None:
                self.host.close()

    def _advance(self) -> graph.Events:
        """Up to `ticks` env steps of every slot: one compiled call in the graph, or the host loop."""
        if self.host is None:
            self.state, events, _ = graph.run_ticks(self.state, self.hyper, self.ticks, self.features)
        else:
            key = self.hyper_np["key"]
            self.state, events, _ = self.host.run(self.state, self.hyper, key, self.ticks, self.features)
        return events

    def _run(self, source: WorkSource, on_episode: StreamEpisodeHook | None, on_done: DoneHook | None) -> int:
        self._fill(source)
        while True:
            if not any(r is not None for r in self.records):
                if self.source_done:
                    return self.items_started
                time.sleep(WAIT_PAUSE_S)
                self._fill(source)
                continue
            started = time.perf_counter()
            events = self._advance()
            self.tail.ran(len(self.records), time.perf_counter() - started)
            finished, stopped = self._dispatch(events, on_episode)
            if stopped:
                active = self.state.active.numpy()
                active[stopped] = False
                self.state = self.state._replace(active=tf.constant(active))
            if finished:
                self._deliver(finished, on_done)
            if not self.source_done:
                self._fill(source)
            elif len(self.records) > MIN_SLOTS:
                self._shrink_tail()

    def _shrink_tail(self) -> None:
        """Once no more work comes: into the smallest compiled population that holds the survivors, or into half the
        slots when at most half train and the rent-or-buy rule says so (`dqn_core.tail`)."""
        slots, live = len(self.records), self._live_count()
        size = self.tail.compiled_size_for(slots, physical_slots(live))
        if size is None and live <= slots // TAIL_SHRINK:
            half = physical_slots(slots // TAIL_SHRINK)
            size = half if self.tail.shrink_now(slots, half) else None
        if size is not None:
            self._compact(size)

    def _live_count(self) -> int:
        return sum(r is not None for r in self.records)

    def _fill(self, source: WorkSource) -> None:
        """Ask the source for one item per free slot; write all new agents into the state at once."""
        free = [slot for slot, r in enumerate(self.records[: self.capacity]) if r is None]
        placed: list[tuple[int, WorkItem]] = []
        for slot in free:
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
            self.shape.check(item)
            self.items_started += 1
            placed.append((slot, item))
        if placed:
            self._place(placed)

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

    def _dispatch(self, events: graph.Events, on_episode: StreamEpisodeHook | None) -> tuple[list[int], list[int]]:
        """Record every finished episode in tick order and run the hook.

        Returns (slots whose agents finished, in finishing order; slots the hook stopped).
        """
        ended = np.asarray(events.ended)
        if not ended.any():
            return [], []
        steps, eps = np.asarray(events.steps), np.asarray(events.epsilon)
        loss, success, consec = np.asarray(events.mean_loss), np.asarray(events.success), np.asarray(events.consecutive)
        finished: list[int] = []
        stopped: list[int] = []
        now = time.perf_counter()
        for t, slot in zip(*np.nonzero(ended), strict=True):
            record = self.records[slot]
            if record is None or record.stop_reason is not None:
                continue  # an empty slot, or an agent the hook stopped earlier in this chunk
            config = record.item.config
            record.steps.append(int(steps[t, slot]))
            record.epsilons.append(float(eps[t, slot]))
            record.losses.append(float(loss[t, slot]))
            record.successes.append(bool(success[t, slot]))
            stats = EpisodeStats(
                episode=len(record.steps),
                steps=record.steps[-1],
                epsilon=record.epsilons[-1],
                mean_loss=record.losses[-1],
                success=record.successes[-1],
                consecutive_successes=int(consec[t, slot]),
                total_steps=sum(record.steps),
            )
            if stats.consecutive_successes >= config.successes_to_solve:
                record.episodes_to_solve = stats.episode
                record.stop_reason = STOP_SOLVED
            elif stats.episode >= config.max_episodes:
                record.stop_reason = STOP_MAX_EPISODES
            if on_episode is not None and on_episode(record.item, stats) is False and record.stop_reason is None:
                record.stop_reason = STOP_HOOK
                stopped.append(int(slot))
            if record.stop_reason is not None:
                record.wall_time_s = now - record.entered
                finished.append(int(slot))
        return finished, stopped

    def _deliver(self, finished: list[int], on_done: DoneHook | None) -> None:
        """Hand each finished agent's result out, in finishing order, and free its slot."""
        arrays = [p.numpy() for p in self.state.params]
        results = []
        for slot in finished:
            record = self.records[slot]
            assert record is not None
            real = layer_sizes(self.sizes[0], record.item.config.hidden_sizes, self.sizes[-1])
            weights = unpad_params([a[slot] for a in arrays], real)
            results.append((record.item, _result(record, weights)))
            self.records[slot] = None
        for item, result in results:
            if on_done is None:
                continue
            try:
                on_done(item, result)
            except Exception as exc:
                raise StreamError(f"on_done failed for {item.describe()}: {exc}") from exc

    def _compact(self, size: int) -> None:
        """Once no more work comes, gather the remaining agents (at most `size`) into a population of `size` slots,
        so the tail's cost per agent stays near what it costs at full occupancy (see TAIL_SHRINK)."""
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
        self.capacity = min(self.capacity, size)

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
