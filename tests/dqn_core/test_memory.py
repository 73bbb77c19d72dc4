"""The memory preflight: the population estimate, the process's limits (cgroup v1 and v2 trees, RLIMIT_AS,
MemAvailable), the one-line refusal, the slot count that fits, and a population streamed through fewer slots
giving the same results bit for bit."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from dqn_core import memory
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.memory import MemoryLimit, check_population, population_memory, slots_that_fit
from dqn_core.shape import StreamShape

BOOK_WEIGHTS = (4 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 2 + 2)  # 4-16-16-16-2
TRANSITION = 2 * 4 * 4 + 4 + 4 + 1 + 1  # CartPole: obs and next obs float32 [4], action, reward, two flags


def test_sixty_four_slots_of_ten_million_transitions_need_forty_gigabytes():
    need = population_memory(StreamShape(memory_size=10_000_000), 64)
    assert TRANSITION == 42
    assert need.slots == 64
    assert need.replay == 64 * (10_000_000 * TRANSITION + 8) * 1.5  # 27 GB, half again while the tail moves
    assert memory.size_text(need.total) == "40 GB"


def test_terms_of_the_book_population():
    need = population_memory(StreamShape(), 1)  # one agent trains in two physical slots, which never shrink
    assert need.slots == 2
    assert need.replay == 2 * (10_000 * TRANSITION + 8)
    assert need.networks == 2 * 4 * BOOK_WEIGHTS * (memory.NETWORK_COPIES + 1 + 1)
    assert need.minibatch == 2 * (32 * (32 + 10) + 4 * 32 * (4 + 48 + 2) * memory.ACTIVATION_COPIES + memory.SLOT_EXTRA)
    assert population_memory(StreamShape(), 3).slots == 4  # a power of two, as `stream.physical_slots`


def test_larger_batches_hold_a_partial_gradient_per_chunk():
    small = population_memory(StreamShape(batch_rows=32), 2).networks
    assert population_memory(StreamShape(batch_rows=33), 2).networks == small // 10 * 11  # two chunks
    assert population_memory(StreamShape(batch_rows=256), 2).networks == small // 10 * 17  # eight chunks


def test_row_chunk_agrees_with_the_network():
    from dqn_core.network import ROW_CHUNK

    assert memory.ROW_CHUNK == ROW_CHUNK


def test_limit_keeps_a_margin_and_the_runtime():
    limit = MemoryLimit(10 * 10**9, "MemAvailable")
    assert limit.usable == 9 * 10**9 - memory.RUNTIME_RESIDENT
    assert MemoryLimit(10**9, "RLIMIT_AS", memory.RUNTIME_ADDRESS_SPACE).usable == 0
    tight = MemoryLimit(8 * 10**9, "the cgroup's memory limit")
    assert memory.tightest([limit, tight, MemoryLimit(10**12, "RLIMIT_AS", memory.RUNTIME_ADDRESS_SPACE)]) == tight
    assert memory.tightest([]) is None


def test_refusal_is_one_line_naming_need_limit_and_knobs():
    limit = MemoryLimit(16 * 10**9, "MemAvailable")
    with pytest.raises(ConfigError) as refused:
        check_population(StreamShape(memory_size=10_000_000), 64, limit=limit)
    text = str(refused.value)
    assert text == (
        "a population of 64 slots with memory_size 10000000 needs ~40 GB; this process may use ~13 GB "
        "(MemAvailable 16 GB, less 10% and TensorFlow's own): lower --slots or memory_size"
    )
    wide = StreamShape(hidden_sizes=(4096,) * 8, batch_rows=256)
    with pytest.raises(ConfigError, match=r"with hidden_sizes 4096,4096,.* and batch_size 256 needs ~\d+ GB; .*"):
        check_population(wide, 64, limit=limit)
    with pytest.raises(ConfigError, match=r"one agent .*: lower memory_size$"):
        check_population(
            StreamShape(memory_size=10_000_000), 1, limit=MemoryLimit(10**9, "MemAvailable"), what="one agent"
        )
    assert check_population(StreamShape(), 64, limit=limit).slots == 64
    assert check_population(StreamShape(memory_size=10_000_000), 1024, limit=None).slots == 1024


def test_slots_that_fit_halve_until_the_population_fits():
    shape = StreamShape(memory_size=10_000_000)
    per_slot = population_memory(shape, 64).total / 64
    limit = MemoryLimit(int((16 * per_slot + memory.RUNTIME_RESIDENT) / memory.SAFETY) + 1, "MemAvailable")
    assert slots_that_fit(shape, 2 * 1000, limit=limit) == 16
    assert slots_that_fit(shape, 12, limit=limit) == 12  # 16 physical slots
    assert slots_that_fit(shape, 2 * 1000, limit=None) == 2000
    assert slots_that_fit(StreamShape(), 2000, limit=limit) == 2000  # 2,048 small slots fit
    with pytest.raises(ConfigError, match=r"^even a stream of 2 slots with memory_size 10000000 needs ~840 MB"):
        slots_that_fit(shape, 2000, limit=MemoryLimit(10**9, "MemAvailable"))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_cgroup_v2_takes_the_smallest_limit_up_the_tree(tmp_path):
    root = _tree(
        tmp_path / "cg",
        {"memory.max": "max\n", "a/memory.max": "2147483648\n", "a/b/memory.max": "max\n", "a/b/c/x": ""},
    )
    membership = _tree(tmp_path, {"self": "0::/a/b\n"}) / "self"
    assert memory.cgroup_limit(root, membership) == 2 * 1024**3
    (root / "a/memory.max").write_text("max\n")
    assert memory.cgroup_limit(root, membership) is None
    (root / "memory.max").write_text("1073741824\n")  # a container shows its own cgroup as the root
    assert memory.cgroup_limit(root, tmp_path / "missing") == 1024**3


def test_cgroup_v1_reads_the_memory_hierarchy_and_ignores_its_no_limit_value(tmp_path):
    root = _tree(
        tmp_path / "cg",
        {"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/job/memory.limit_in_bytes": "5000000000\n"},
    )
    membership = _tree(tmp_path, {"self": "5:cpu,cpuacct:/job\n4:memory:/job\n1:name=systemd:/\n"}) / "self"
    assert memory.cgroup_limit(root, membership) == 5 * 10**9
    (root / "memory/job/memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert memory.cgroup_limit(root, membership) is None


def test_mem_available_is_read_from_meminfo(tmp_path):
    meminfo = _tree(tmp_path, {"meminfo": "MemTotal: 24683664 kB\nMemAvailable: 2000 kB\n"}) / "meminfo"
    assert memory.available_memory(meminfo) == 2000 * 1024
    assert memory.available_memory(tmp_path / "none") is None


def test_rlimit_as_is_a_limit_of_the_process():
    code = "from dqn_core import memory; print([(l.source, l.bytes) for l in memory.process_limits()])"
    cap = 3 * 1024**3
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
        check=True,
    )
    assert ("RLIMIT_AS", cap) in eval(done.stdout)


@pytest.mark.slow
def test_a_population_in_fewer_slots_trains_the_same_agents_bit_for_bit():
    """What `validate` and the verdict do when all their agents do not fit in memory at once."""
    from dqn_core.trainer import train_population
    from tests.dqn_core.same import assert_same_run

    configs = [TrainConfig(max_episodes=4), TrainConfig(max_episodes=6, gamma=0.95, batch_size=16)]
    members = [(config, seed) for config in configs for seed in (10_000, 10_001, 10_002)]
    shape = StreamShape.covering(configs)
    together = train_population(members, shape=shape)
    streamed = train_population(members, shape=shape, slots=2)
    for a, b in zip(together, streamed, strict=True):
        assert (a.config, a.seed) == (b.config, b.seed)
        assert_same_run(a, b)
