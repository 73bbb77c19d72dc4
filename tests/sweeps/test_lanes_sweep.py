"""A sweep's lanes come from its search space: one compiled population per value (or power-of-two bucket) of the
compute-setting parameters, capped and merged; a sweep with lanes finds the same trials and per-seed values as
one compiled covering shape; shapes that cannot be bucketed and too few slots are refused in one line."""

import optuna
import pytest

from dqn_core import TrainConfig, lanes, train
from dqn_core.lanes import describe
from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.space import lane_values, load_sweep

MIXED = """
study: {n_trials: 4, max_seeds: 2, slots: 8, seeds_in_flight: 2, sampler: tpe, pruner: wilcoxon, startup_seeds: 2,
        seed: 3, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
  hidden_sizes: {type: categorical, choices: ["16,16,16", "32,32"]}
  batch_size: {type: categorical, choices: [16, 64]}
"""


def _write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lanes_are_the_values_of_the_compute_knobs_with_integer_ranges_in_power_of_two_buckets(tmp_path):
    text = (
        "trainer: {memory_size: 5000}\n"
        "search_space:\n"
        "  batch_size: {type: int, low: 20, high: 100}\n"
        "  updates_per_step: {type: int, low: 1, high: 2}\n"
        "  memory_size: {type: int, low: 1000, high: 20000}\n"
        "  gamma: {type: float, low: 0.9, high: 0.99}\n"
    )
    sweep = load_sweep(_write(tmp_path, text))
    batch, updates = sweep.space[0], sweep.space[1]
    assert lane_values(batch) == [32, 64, 100] and lane_values(updates) == [1, 2]
    plan = sweep.stream_lanes()
    assert len(sweep.lane_configs()) == 6  # 3 batch buckets x 2 replay ratios; the close ones share a lane
    assert [describe(s) for s in plan.shapes] == ["16-16-16/b32/u2", "16-16-16/b100/u1", "16-16-16/b100/u2"]
    assert {shape.memory_size for shape in plan.shapes} == {20000}  # every lane holds the largest replay
    for batch_size in (20, 33, 100):  # every value the space can sample fits a lane
        config = sweep.config_for({"batch_size": batch_size, "updates_per_step": 2, "memory_size": 20000})
        assert any(not shape.misfits(config) for shape in plan.shapes)
    assert [describe(s) for s in load_sweep(_write(tmp_path, MIXED)).stream_lanes().shapes] == [
        "16-16-16/b16/u1",
        "32-32/b16/u1",
        "16-16-16/b64/u1",
        "32-32/b64/u1",
    ]


def _refused(capsys, tmp_path, argv):
    code = main([*argv, "--storage", f"journal:{tmp_path / 'j.log'}", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not (tmp_path / "j.log").exists() and not (tmp_path / "m.db").exists()
    return err


def test_a_shape_knob_as_a_free_range_or_fewer_slots_than_lanes_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = _write(tmp_path, "search_space:\n  hidden_sizes: {type: int, low: 8, high: 64}\n", "bad.yaml")
    err = _refused(capsys, tmp_path, ["run", "--config", str(bad)])
    assert "hidden_sizes: must be categorical" in err and "cannot be a free range" in err, err
    mixed = _write(tmp_path, MIXED)
    err = _refused(capsys, tmp_path, ["run", "--config", str(mixed), "--slots", "3"])
    assert err.startswith("error: --slots: must be at least the number of lanes the search space compiles (4: ")
    assert err.endswith("got 3"), err


def _trials(storage: str) -> list:
    study = optuna.load_study(study_name="mixed", storage=open_optuna_storage(storage))
    return [(t.params, t.value, t.state, t.intermediate_values) for t in study.get_trials(deepcopy=False)]


@pytest.mark.slow
def test_a_sweep_with_lanes_finds_the_same_trials_and_seed_values_as_one_covering_shape(tmp_path, capsys, monkeypatch):
    config = _write(tmp_path, MIXED)
    runs = {}
    for cap in (3, 1):  # three lanes (two of the four merged) against one covering shape, each said in one line
        monkeypatch.setattr(lanes, "MAX_LANES", cap)
        storage = f"journal:{tmp_path / f'cap{cap}.log'}"
        argv = ["run", "--config", str(config), "--study-name", "mixed", "--storage", storage, "--no-progress"]
        assert main([*argv, "--tracking-uri", f"sqlite:///{tmp_path}/cap{cap}.db"]) == 0
        err = capsys.readouterr().err
        runs[cap] = _trials(storage)
        (note,) = [line for line in err.splitlines() if line.startswith("lanes: ")]
        assert f"has 4 compute shapes; they train in {cap} compiled populations" in note, note
    assert runs[3] == runs[1]
    assert {params["hidden_sizes"] for params, *_ in runs[3]} == {"16,16,16", "32,32"}
    assert {params["batch_size"] for params, *_ in runs[3]} == {16, 64}
    params, _, _, per_seed = next(t for t in runs[3] if t[0]["batch_size"] == 64 and t[3])
    seed, value = next(iter(per_seed.items()))
    alone = train(TrainConfig(max_episodes=30).replace(**params), seed=seed)
    assert value == (alone.episodes_to_solve or 31)
