"""Config defaults are the book's; every invalid value is one readable ConfigError naming the field."""

import pytest

from dqn_core.config import TrainConfig, load_config, parse_assignment
from dqn_core.errors import ConfigError


def test_defaults_are_the_book_parameters():
    c = TrainConfig()
    assert (c.env_id, c.max_episodes, c.gamma, c.warmup) == ("CartPole-v0", 500, 0.99, 10)
    assert (c.epsilon_start, c.epsilon_stop, c.epsilon_decay_rate) == (1.0, 0.01, 0.001)
    assert (c.memory_size, c.batch_size, c.hidden_sizes, c.learning_rate) == (10_000, 32, (16, 16, 16), 1e-3)
    assert (c.target_refresh_episodes, c.success_threshold, c.successes_to_solve) == (1, 190, 5)
    assert (c.reward_mode, c.time_limit) == ("book", "terminal")
    assert c.env.max_steps == 200 and c.env.n_actions == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gamma": 0.0}, r"gamma: must be in \(0, 1\]"),
        ({"gamma": 1.5}, r"gamma: must be in \(0, 1\]"),
        ({"batch_size": 20_000}, r"batch_size: must be in \[1, memory_size=10000\]"),
        ({"warmup": -1}, "warmup: must be >= 0"),
        ({"hidden_sizes": (16, 0)}, "hidden_sizes entries: must be >= 1"),
        ({"hidden_sizes": ()}, "at least one hidden layer"),
        ({"max_episodes": 0}, "max_episodes: must be >= 1"),
        ({"learning_rate": -1e-3}, "learning_rate: must be in"),
        ({"epsilon_start": 0.001}, "epsilon_start: must be in"),
        ({"reward_mode": "dense"}, "reward_mode: must be one of"),
        ({"time_limit": "ignore"}, "time_limit: must be one of"),
        ({"success_threshold": 201}, r"success_threshold: must be in \[1, 200\]"),
        ({"env_id": "NoSuchEnv-v3"}, "unknown env_id 'NoSuchEnv-v3'"),
        ({"env_id": "Pendulum-v1"}, "Box action space; DQN needs a Discrete one"),
        ({"env_id": "FrozenLake-v1"}, "Discrete observation space; the Q-network needs a flat Box"),
        ({"env_id": "Blackjack-v1"}, "Tuple observation space"),
        ({"env_id": "Acrobot-v1", "reward_mode": "book"}, "reward_mode 'book' is CartPole's"),
        ({"env_id": "Acrobot-v1", "success_threshold": -501}, r"success_threshold: must be in \[-500, 500\]"),
        ({"gamma": "abc"}, "gamma: must be a number"),
        ({"batch_size": 3.5}, "batch_size: must be an integer"),
        ({"gamma": float("nan")}, "finite"),
        ({"epsilon_schedule": "cosine"}, "epsilon_schedule: must be one of"),
        ({"epsilon_decay_steps": 0}, "epsilon_decay_steps: must be >= 1"),
        ({"epsilon_decay_steps": 2_000_000_000}, "epsilon_decay_steps: must be <= 1,000,000,000"),
        ({"target_refresh_steps": -5}, "target_refresh_steps: must be >= 0"),
        ({"target_refresh_steps": 2_000_000_000}, "target_refresh_steps: must be <= 1,000,000,000"),
        ({"updates_per_step": 0}, r"updates_per_step: must be in \[1, 16\]"),
        ({"updates_per_step": 17}, r"updates_per_step: must be in \[1, 16\]"),
        ({"double_dqn": "maybe"}, "double_dqn: must be true or false"),
    ],
)
def test_invalid_values_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(**changes)
    assert "\n" not in str(info.value)


def test_cartpole_v1_is_accepted_with_its_longer_limit():
    assert TrainConfig(env_id="CartPole-v1", success_threshold=475).env.max_steps == 500


@pytest.mark.parametrize(
    ("env_id", "threshold", "reward_mode", "obs_dim"),
    [
        ("CartPole-v0", 190, "book", 4),
        ("CartPole-v1", 475, "book", 4),
        ("Acrobot-v1", -100, "env", 6),
        ("MountainCar-v0", -110, "env", 2),
    ],
)
def test_unset_success_threshold_and_reward_mode_come_from_the_env(env_id, threshold, reward_mode, obs_dim):
    config = TrainConfig(env_id=env_id)
    assert (config.success_threshold, config.reward_mode, config.env.obs_dim) == (threshold, reward_mode, obs_dim)
    assert TrainConfig.from_mapping(config.to_dict()) == config  # resolved values round-trip
    assert TrainConfig(env_id=env_id, success_threshold=-5 if threshold < 0 else 5).success_threshold in (-5, 5)


def _register_unported_envs() -> None:
    import gymnasium as gym
    import numpy as np

    class Flat(gym.Env):
        action_space = gym.spaces.Discrete(2)
        observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)

    class Pixels(Flat):
        observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)

    for name, cls in (("TestFlatNoPort-v0", Flat), ("TestPixels-v0", Pixels)):
        if name not in gym.registry:
            gym.register(name, entry_point=cls, max_episode_steps=50)


@pytest.mark.parametrize(
    ("env_id", "message"),
    [  # a flat env without a port is host-stepped (tests/dqn_core/test_host_stepped.py); it needs a threshold
        ("TestFlatNoPort-v0", "TestFlatNoPort-v0 declares no reward_threshold; set success_threshold"),
        ("TestPixels-v0", r"observes arrays of shape \(8, 8, 3\) \(images\?\)"),
    ],
)
def test_envs_the_trainer_cannot_use_are_one_line(env_id, message):
    _register_unported_envs()
    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig(env_id=env_id)
    assert "\n" not in str(info.value)


def test_a_flat_env_without_a_port_is_host_stepped_and_its_threshold_is_free():
    _register_unported_envs()
    config = TrainConfig(env_id="TestFlatNoPort-v0", success_threshold=1000)
    assert config.env.simulator == "host" and config.reward_mode == "env"
    with pytest.raises(ConfigError, match="reward_mode 'book' is CartPole's"):
        TrainConfig(env_id="TestFlatNoPort-v0", success_threshold=1, reward_mode="book")


def test_from_mapping_rejects_unknown_keys_with_a_hint():
    with pytest.raises(ConfigError, match="unknown config key 'gama' \\(did you mean 'gamma'\\?\\)"):
        TrainConfig.from_mapping({"gama": 0.9})


def test_parse_assignment_types_values_by_field():
    assert parse_assignment("gamma=0.95") == ("gamma", 0.95)
    assert parse_assignment("batch_size=64") == ("batch_size", 64)
    assert parse_assignment("hidden_sizes=32,32") == ("hidden_sizes", (32, 32))
    assert parse_assignment("hidden_sizes=[8, 8, 8]") == ("hidden_sizes", (8, 8, 8))
    assert parse_assignment("reward_mode=env") == ("reward_mode", "env")
    with pytest.raises(ConfigError, match="batch_size: must be an integer, got 'lots'"):
        parse_assignment("batch_size=lots")
    with pytest.raises(ConfigError, match="--set: expects key=value"):
        parse_assignment("gamma")


def test_yaml_round_trip_and_trainer_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  gamma: 0.95\n  hidden_sizes: [32, 32]\n")
    config = load_config(path, {"warmup": 0})
    assert (config.gamma, config.hidden_sizes, config.warmup) == (0.95, (32, 32), 0)
    assert TrainConfig.from_mapping(config.to_dict()) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gamma: [unclosed\n", "invalid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("gamma: 0.9\nbogus: 1\n", "unknown config key 'bogus'"),
    ],
)
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/config.yaml")


def test_replace_validates():
    assert TrainConfig().replace(gamma=0.9).gamma == 0.9
    with pytest.raises(ConfigError):
        TrainConfig().replace(gamma=9)
