"""The comparison notebook on studies built without training: executed headless with papermill, read as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sweeps.stores.locations import open_optuna_storage
from tests.analysis.builders import MAX_EPISODES, MAX_SEEDS, mlflow_store, racing_study, record_verdict, wide_study
from tests.analysis.test_knob_effects import planted_study

NOTEBOOK = Path(__file__).parents[2] / "analysis" / "notebooks" / "compare_sweeps.ipynb"


def _cells(notebook: dict, kind: str) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == kind]


def _text(cell: dict) -> str:
    """What a code cell displayed (its value or `display` calls) as plain text; streams such as warnings are not."""
    return "".join("".join(output.get("data", {}).get("text/plain", "")) for output in cell.get("outputs", []))


def _printed(cell: dict) -> str:
    """What a code cell printed to stdout."""
    outputs = cell.get("outputs", [])
    return "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream" and o["name"] == "stdout")


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict:
    import papermill

    root = tmp_path_factory.mktemp("notebook_stores")
    storage = f"journal:{root / 'optuna-journal.log'}"
    backend = open_optuna_storage(storage)
    # 9 trials (one failed), 16 + 16 + 16 + 16 + 3 + 4 + 6 + 3 seeds trained, and a verdict
    record_verdict(racing_study(backend, name="racing"))
    wide_study(backend, name="wide", trials=12)  # 12 trials, 16 seeds each
    planted_study(storage=backend, name="planted")  # learning_rate slows the median x1.35, the rest do nothing
    planted_study(0.0, storage=backend, name="flat")
    out = root / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={
            "studies": ["racing", "wide", "planted", "flat"],
            "storage": storage,
            "tracking_uri": mlflow_store(root, ["racing", "wide", "planted", "flat"]),
            "top": 3,
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(root),
    )
    return json.loads(out.read_text())


def test_markdown_cells_have_no_literal_escapes():
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in _cells(notebook, "markdown"):
        source = "".join(cell["source"])
        assert "\\n" not in source and "\\t" not in source, source[:80]


def test_first_output_counts_trials_and_seeds(executed):
    assert not [o for c in _cells(executed, "code") for o in c.get("outputs", []) if o["output_type"] == "error"]
    first = next(_text(cell) for cell in _cells(executed, "code") if _text(cell).strip())
    rows = {line.split()[0]: line.split()[1:] for line in first.strip().splitlines()[1:]}
    assert first.split()[:2] == ["trials", "seeds_trained"]
    assert rows["racing"] == ["9", str(4 * MAX_SEEDS + 3 + 4 + 6 + 3)]
    assert rows["wide"] == ["12", str(12 * MAX_SEEDS)]


def test_per_seed_values_print_as_whole_numbers(executed):
    cell = next(c for c in _cells(executed, "code") if "per_seed_table" in "".join(c["source"]))
    shown = _text(cell)
    assert f">{MAX_EPISODES}" in shown  # the wide study's book never solved seed 3
    assert "trial 0 (book)" in shown and "15" in shown.split()  # the last seed's column
    assert not re.search(r"\b\d+\.\d+\b", shown), shown


def test_each_parameters_effect_shows_with_its_sentence(executed):
    cell = next(c for c in _cells(executed, "code") if "knob_effects(" in "".join(c["source"]))
    printed, table = _printed(cell), _text(cell)
    assert "pruned trials included" in printed and "resamples of trials and seeds" in printed
    assert "planted: The 95% CI excludes no effect for learning_rate 0.0003 -> 0.003: median x" in printed
    flat = re.search(r"^flat: (.*)$", printed, re.M)[1]
    assert re.fullmatch(
        r"Within the searched ranges, no parameter moves the median by more than \d+% \(95% CI\)\.", flat
    )
    assert "racing: No 95% CI of the per-parameter effects: only" in printed  # 7 trials: too few to bootstrap
    assert "learning_rate" in table and "0.0003 -> 0.003" in table and "ci_low" in table and "planted" in table


def test_the_readme_papermill_line_runs_as_written(tmp_path):
    """The README's command, pasted as is into a folder laid out like a checkout after `make sweep` (its stores
    hold the two studies it names; `.venv` is this interpreter's environment)."""
    import subprocess
    import sys

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"```sh\n(\.venv/bin/papermill .*?)\n```", readme, re.S)[1]
    assert 'studies: ["default", "random-64"]' in block
    backend = open_optuna_storage(f"journal:{tmp_path / 'optuna-journal.log'}")
    racing_study(backend, name="default")
    wide_study(backend, name="random-64", trials=6)
    mlflow_store(tmp_path, ["default", "random-64"])
    (tmp_path / "analysis" / "notebooks").mkdir(parents=True)
    (tmp_path / "analysis" / "notebooks" / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    done = subprocess.run(["bash", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    outputs = [o for c in _cells(executed, "code") for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    assert any("random-64" in _text(c) for c in _cells(executed, "code"))


def test_the_verdict_shows_what_its_comparison_means(executed):
    cell = next(c for c in _cells(executed, "code") if "effect_table(" in "".join(c["source"]))
    printed, shown = _printed(cell), _text(cell)
    assert "racing: winner trial 1: median " in printed and "wide: no verdict recorded" in printed
    assert "ratio of episodes to solve (Hodges-Lehmann)" in shown and "95% CI of the ratio" in shown
    assert "seeds to detect a 10% / 20% change" in shown and "better" in shown
