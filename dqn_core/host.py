"""Host-stepped environments: any gymnasium env with a Discrete action space and a flat Box observation, stepped
through gymnasium's vector API while the agents' arithmetic stays batched and compiled.

Per env step of all K slots: one compiled `act` call (episode starts, target refresh, epsilon, the Q-network's
action for every slot), one `SyncVectorEnv.step`, one compiled `learn` call (replay store, gradient steps,
counters). The state's `physics` holds each slot's current observation (float64 [K, obs_dim]). The graph keeps
the episode's step counter and cuts episodes at the env spec's `max_episode_steps` exactly as the in-graph path
does; gymnasium's own TimeLimit is set one step later, so it never fires for a training agent (it only bounds idle
slots' envs).

Every episode of an agent starts with `reset(seed=...)` seeded from the agent's key and its episode index
(`rng.reset_seeds`), so its episodes do not depend on the slot, the neighbours or when it entered. An env that has
an in-graph port (CartPole, Acrobot, MountainCar) stepped here instead starts its episodes from the port's reset
draw (written into the gymnasium env's `state`), i.e. the very episodes the in-graph path plays: the two paths can
be compared agent for agent.
"""

from __future__ import annotations

import numpy as np

from dqn_core import graph, rng, xla
from dqn_core.envs import HOST_SIMULATOR, EnvSpec, make_env
from dqn_core.hyper import Hyper
from dqn_core.quiet_tf import tf

HOST = HOST_SIMULATOR
"""`Features.simulator` of a host-stepped stream (an env without a port, or `StreamShape.in_graph=False`)."""


_ACTED = ("target", "physics", "episode_return", "episode_step", "total_step", "loss_sum", "loss_count")
"""The state fields `graph.act` changes: only these leave the compiled call (returning the whole state would copy
the replay buffers, params and optimizer state out of it on every step)."""


def _act(state: graph.State, h: Hyper, reset_obs: tf.Tensor, features: graph.Features):
    graph.TRACES["host_act"] = graph.TRACES.get("host_act", 0) + 1
    started, epsilon, obs, action = graph.act(state, h, features, reset_obs, tf.identity)
    return {name: getattr(started, name) for name in _ACTED}, epsilon, obs, action


def _learn(
    started: graph.State,
    h: Hyper,
    epsilon: tf.Tensor,
    obs: tf.Tensor,
    action: tf.Tensor,
    next_obs: tf.Tensor,
    reward: tf.Tensor,
    terminated: tf.Tensor,
    truncated: tf.Tensor,
    features: graph.Features,
):
    graph.TRACES["host_learn"] = graph.TRACES.get("host_learn", 0) + 1
    next_obs32 = tf.cast(next_obs, tf.float32)
    return graph.learn(
        started, h, features, epsilon, obs, action, next_obs, next_obs32, reward, terminated, env_truncated=truncated
    )


host_act = xla.compiled(_act)
host_learn = graph.compiled_in_place(_learn)


def _port_reset(key: tf.Tensor, episodes_done: tf.Tensor, simulator: str) -> tuple[tf.Tensor, tf.Tensor]:
    env = graph.SIMULATORS[simulator]
    noise = tf.cast(rng.uniform(key, episodes_done, rng.STREAM_RESET, env.STATE_DIM), tf.float64)
    state = env.reset_state(noise)
    return state, tf.cast(env.observe(state), tf.float32)


port_reset = xla.compiled(_port_reset)


class HostEnvs:
    """One gymnasium env per slot behind a `SyncVectorEnv` with autoreset disabled; resets are the host's."""

    def __init__(self, spec: EnvSpec, size: int) -> None:
        self.spec = spec
        self.port = spec.simulator if spec.simulator in graph.SIMULATORS else None
        self.vec = self._vector([self._make() for _ in range(size)])
        self.obs = np.zeros([size, spec.obs_dim], np.float64)
        self.pending = np.ones([size], bool)  # must be reset before its next step (never reset, or done)

    def _make(self):
        # The graph truncates at max_steps; TimeLimit one step later never cuts a training agent's episode.
        return make_env(self.spec.env_id, max_episode_steps=self.spec.max_steps + 1, disable_env_checker=True)

    @staticmethod
    def _vector(envs: list):
        import gymnasium as gym

        return gym.vector.SyncVectorEnv(
            [lambda env=env: env for env in envs], copy=False, autoreset_mode=gym.vector.AutoresetMode.DISABLED
        )

    def close(self) -> None:
        self.vec.close()

    def reorder(self, order: list[int], size: int) -> None:
        """Follow the stream's compaction: slot i of the new population is old slot order[i]; new slots past
        the kept ones get fresh envs. Envs left behind are closed."""
        envs = self.vec.envs
        keep = list(order)
        for slot, env in enumerate(envs):
            if slot not in keep:
                env.close()
        fresh = [self._make() for _ in range(size - len(keep))]
        space = self.vec.single_observation_space
        self.vec = self._vector([envs[slot] for slot in keep] + fresh)
        self.obs = np.concatenate([self.obs[keep], np.zeros([len(fresh), self.spec.obs_dim])])
        self.pending = np.concatenate([self.pending[keep], np.ones([len(fresh)], bool)])
        # A new SyncVectorEnv knows no observation yet, and a masked reset stacks every env's last one: give the
        # kept envs theirs (gymnasium 1.x keeps them in `_env_obs`), the fresh ones are reset before any step.
        for slot in range(len(keep)):
            self.vec._env_obs[slot] = self.obs[slot].astype(space.dtype)

    def _reset(self, starting: np.ndarray, key: np.ndarray, state: graph.State) -> None:
        """Reset every env that starts an episode (seeded from its agent's key and episode index) and every idle
        env that ended one (unseeded: nothing is recorded there)."""
        mask = starting | self.pending
        if not mask.any():
            return
        episodes = state.episodes_done.numpy()
        seeds = rng.reset_seeds(key, episodes)
        seed_list = [int(s) if go else None for s, go in zip(seeds, starting, strict=True)]
        obs, _ = self.vec.reset(seed=seed_list, options={"reset_mask": mask})
        self.obs[mask] = np.asarray(obs, np.float64)[mask]
        self.pending[mask] = False
        if self.port is not None and starting.any():
            physics, port_obs = port_reset(tf.constant(key), state.episodes_done, self.port)
            physics, port_obs = physics.numpy(), port_obs.numpy()
            for slot in np.flatnonzero(starting):
                self.vec.envs[slot].unwrapped.state = physics[slot].copy()
            self.obs[starting] = port_obs[starting].astype(np.float64)

    def run(
        self, state: graph.State, h: Hyper, key: np.ndarray, ticks: int, features: graph.Features
    ) -> tuple[graph.State, graph.Events, int]:
        """Up to `ticks` env steps of every slot (fewer once no agent is active), as `graph.run_ticks` does in
        the graph; events come back as [ticks, K] NumPy arrays."""
        size = self.obs.shape[0]
        rows = {name: [] for name in graph.Events._fields}
        # Each call binds the programs for this population's argument signature once: tf.function would match every
        # call's ~70 tensors against its traces, and a host-stepped tick makes two such calls.
        act = host_act.get_concrete_function(state, h, tf.constant(self.obs), features)
        learn = None  # bound at the first step, from that step's arguments
        t = 0
        for t in range(ticks):  # noqa: B007 (t is the count of steps taken)
            active = state.active.numpy()
            if not active.any():
                break
            starting = active & (state.episode_step.numpy() == 0)
            self._reset(starting, key, state)
            changed, epsilon, obs, action = act(state, h, tf.constant(self.obs), features)
            started = state._replace(**changed)
            next_obs, reward, terminated, truncated, _ = self.vec.step(action.numpy())
            next_obs = np.asarray(next_obs, np.float64)
            self.obs = next_obs.copy()
            self.pending = np.asarray(terminated | truncated, bool)
            learned = (
                started,
                h,
                epsilon,
                obs,
                action,
                tf.constant(next_obs),
                tf.constant(np.asarray(reward, np.float64)),
                tf.constant(np.asarray(terminated, bool)),
                tf.constant(np.asarray(truncated, bool)),  # an env's own cut; its TimeLimit never fires here
                features,
            )
            learn = learn or host_learn.concrete(*learned)
            state, row = learn(*learned)
            for name, value in zip(graph.Events._fields, row, strict=True):
                rows[name].append(value.numpy())
        else:
            t = ticks
        events = {}
        for name in graph.Events._fields:
            dtype = {"ended": bool, "success": bool, "epsilon": np.float32, "mean_loss": np.float32}.get(name, np.int32)
            array = np.zeros([ticks, size], dtype)
            if rows[name]:
                array[: len(rows[name])] = np.stack(rows[name])
            events[name] = array
        return state, graph.Events(**events), t
