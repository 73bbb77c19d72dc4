"""A population that cannot fit in memory is refused in one line before any store is written (`train`, `run`,
`worker`, `validate`), and `validate` and the verdict stream their agents through as many slots as fit.

The CLI runs in a fresh interpreter whose address space (RLIMIT_AS) is capped, so the limit is the same on every
machine; nothing here trains (TensorFlow is never even imported on the way to a refusal)."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
from pathlib import Path

import pytest

GiB = 1024**3
# RLIMIT_AS leaves a population 90% of the cap less the runtime's 2.5 GiB: ~0.2 GB under 3 GiB, ~0.9 GB under 4.
SMALL_CAP, CAP = 3 * GiB, 4 * GiB

# Runs the CLI and prints, last, whether TensorFlow was imported.
WRAPPER = "import sys, sweeps.cli; rc = sweeps.cli.main(sys.argv[1:]); print('tensorflow' in sys.modules); sys.exit(rc)"

GAMMA = "search_space:\n  gamma: {type: float, low: 0.9, high: 0.99}\n"
BIG = "study: {slots: 64}\ntrainer: {memory_size: 10000000}\n" + GAMMA
# memory_size is searched: the sweep's compiled shape holds its largest value
SEARCHED = "search_space:\n  memory_size: {type: int, low: 10000, high: 10000000}\n"


def _capped(argv: list[str], *, cwd: Path, cap: int, code: str = WRAPPER) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, preexec_fn=limit
    )


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_refused(done: subprocess.CompletedProcess, message: str, *, before_tensorflow: bool = True) -> None:
    """`before_tensorflow`: `train` and `run` refuse while parsing their input (commands that read a study first
    may have loaded TensorFlow with it)."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    if before_tensorflow:
        assert done.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "--config", "big.yaml"],
            "a population of 64 slots with memory_size 10000000 needs ~40 GB; this process may use ~215 MB "
            "(RLIMIT_AS 3.2 GB, less 10% and TensorFlow's own): lower --slots or memory_size",
        ),
        (["run", "--config", "searched.yaml", "--slots", "16"], "a population of 16 slots with memory_size 10000000"),
        (["run", "--config", "big.yaml", "--slots", "1", "--no-validate"], "lower memory_size"),
        (
            ["train", "--set", "memory_size=10000000", "--save", "agent.npz"],
            "one agent (a population of 2 slots) with memory_size 10000000 needs ~840 MB; this process may use ~215 MB",
        ),
    ],
)
def test_a_population_too_large_for_the_process_is_refused_before_any_store(tmp_path, argv, message):
    (tmp_path / "big.yaml").write_text(BIG)
    (tmp_path / "searched.yaml").write_text(SEARCHED)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = _capped(argv, cwd=tmp_path, cap=SMALL_CAP)
    _assert_refused(done, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, mlflow.db, lock file or agent


def test_run_refuses_sixty_four_slots_of_ten_million_transitions_on_any_machine(tmp_path):
    """No cap: 1,024 slots of 10,000,000 transitions would need ~645 GB."""
    (tmp_path / "big.yaml").write_text(BIG)
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, "run", "--config", "big.yaml", "--slots", "1024"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _assert_refused(done, "a population of 1024 slots with memory_size 10000000 needs ~645 GB; this process may")
    assert [p.name for p in tmp_path.iterdir()] == ["big.yaml"]


def test_the_verdict_streams_through_the_slots_that_fit(tmp_path):
    """2 x 1,000 held-out agents of memory_size 1,000,000 need ~130 GB at once: under the cap, 16 slots at a time."""
    code = (
        "from dqn_core.config import TrainConfig; from sweeps.run.verdict import held_out_population; "
        "configs = [TrainConfig(memory_size=1_000_000), TrainConfig(memory_size=1_000_000, gamma=0.9)]; "
        "lanes, slots = held_out_population(configs, 1000); print(max(s.memory_size for s in lanes), slots)"
    )
    done = _capped([], cwd=tmp_path, cap=CAP, code=code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1000000", "16"]


@pytest.mark.slow
def test_worker_with_more_slots_than_fit_is_refused_and_changes_no_store(tiny_sweep, tmp_path):
    before = _files(tiny_sweep.root)
    argv = ["worker", "--study-name", "tiny", "--slots", "1024", "--storage", f"journal:{tiny_sweep.journal}"]
    done = _capped([*argv, "--tracking-uri", tiny_sweep.tracking_uri], cwd=tmp_path, cap=SMALL_CAP)
    _assert_refused(done, "a population of 1024 slots with memory_size 10000 needs ~", before_tensorflow=False)
    assert "lower --slots or memory_size" in done.stderr
    assert _files(tiny_sweep.root) == before and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_validate_streams_many_seeds_through_the_slots_that_fit(tiny_sweep, tmp_path):
    code = (
        "import sys; from sweeps.run.validation import plan_validation; "
        "from sweeps.study.existing import load_existing_study; "
        "study = load_existing_study('tiny', sys.argv[1], sys.argv[2]); "
        "plan = plan_validation(study, top=1000, seeds=1000); "
        "print(len(plan.configs) * len(plan.seeds), plan.slots, max(s.memory_size for s in plan.shape))"
    )
    before = _files(tiny_sweep.root)
    done = _capped([f"journal:{tiny_sweep.journal}", tiny_sweep.tracking_uri], cwd=tmp_path, cap=SMALL_CAP, code=code)
    assert done.returncode == 0, done.stderr
    agents, slots, memory_size = map(int, done.stdout.split())
    assert agents >= 1000 and memory_size == 10_000
    assert slots < agents and slots & (slots - 1) == 0  # fewer slots than agents, a power of two
    assert _files(tiny_sweep.root) == before


@pytest.mark.slow
def test_validate_refuses_when_not_even_two_slots_fit_and_logs_nothing(tiny_sweep, tmp_path):
    """Under a cap that leaves a population nothing: one line, before the tracker writes its runs."""
    before = _files(tiny_sweep.root)
    argv = ["validate", "--study", "tiny", "--storage", f"journal:{tiny_sweep.journal}"]
    done = _capped(
        [*argv, "--tracking-uri", tiny_sweep.tracking_uri, "--no-progress"], cwd=tmp_path, cap=SMALL_CAP - GiB // 4
    )
    _assert_refused(done, "even a stream of 2 slots with memory_size 10000 needs ~", before_tensorflow=False)
    assert _files(tiny_sweep.root) == before
