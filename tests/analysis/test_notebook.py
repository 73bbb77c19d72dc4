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


def _readme_papermill_command() -> str:
    """The README's papermill command (with its continuation lines), from the sh block that holds it."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)\n```", readme, re.S) if ".venv/bin/papermill" in b)
    lines = block[block.index(".venv/bin/papermill") :].splitlines()
    command = [lines[0]]
    while command[-1].rstrip().endswith("\\"):
        command.append(lines[len(command)])
    return "\n".join(command)


def _checkout_after_make_sweep(root: Path) -> Path:
    """A folder laid out like a checkout after `make sweep` alone: the `analysis` package, pyproject.toml, `.venv`
    (this interpreter's environment) and the two stores in the root, holding the one study `default`."""
    import shutil
    import sys

    checkout = root / "checkout"
    shutil.copytree(NOTEBOOK.parents[1], checkout / "analysis", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(NOTEBOOK.parents[2] / "pyproject.toml", checkout)
    (checkout / ".venv").symlink_to(Path(sys.executable).parents[1])
    racing_study(open_optuna_storage(f"journal:{checkout / 'optuna-journal.log'}"), name="default")
    mlflow_store(checkout, ["default"])
    return checkout


def test_the_readme_papermill_line_runs_after_make_sweep_from_any_folder(tmp_path):
    """Pasted as written in the checkout, and with the checkout's paths from another folder: no store option, so
    the notebook reads the stores `make sweep` wrote, in the checkout its `analysis` package comes from
    (PYTHONPATH stands for the editable install that `make` makes)."""
    import os
    import subprocess

    command = _readme_papermill_command()
    assert "random-64" not in command and "default" in command  # `make sweep` makes only the study `default`
    checkout = _checkout_after_make_sweep(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    anywhere = command.replace(".venv/bin/", f"{checkout}/.venv/bin/").replace(
        "analysis/notebooks/", f"{checkout}/analysis/notebooks/"
    )
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("MLFLOW_TRACKING_URI", None)
    for folder, line in ((checkout, command), (elsewhere, anywhere)):
        done = subprocess.run(["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        written = [p for p in folder.glob("*.ipynb")]
        assert len(written) == 1, written
        executed = json.loads(written[0].read_text())
        outputs = [o for c in _cells(executed, "code") for o in c.get("outputs", [])]
        assert outputs and not [o for o in outputs if o["output_type"] == "error"]
        first = next(_text(cell) for cell in _cells(executed, "code") if _text(cell).strip())
        assert first.split()[:2] == ["trials", "seeds_trained"] and "default" in first
        written[0].unlink()


def test_a_missing_study_is_one_line(tmp_path):
    import papermill

    checkout = _checkout_after_make_sweep(tmp_path)
    with pytest.raises(papermill.PapermillExecutionError) as raised:
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(tmp_path / "out.ipynb"),
            parameters={"studies": ["default", "random-64"], "tracking_uri": f"sqlite:///{checkout / 'mlflow.db'}"},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(tmp_path),
        )
    line = "StudyNotOpened: unknown study 'random-64' (the storage holds: default)"
    assert raised.value.traceback == [line]  # what Jupyter and the output notebook show: the line alone
    assert str(raised.value).strip().splitlines()[-1] == line  # papermill's message: its header, then the line
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    errors = [o for c in _cells(executed, "code") for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert [e["traceback"] for e in errors] == [[line]]


def test_open_studies_reads_the_checkouts_stores_from_any_folder(tmp_path, monkeypatch):
    from analysis.load import StudyNotOpened, checkout_tracking_uri, open_studies

    monkeypatch.chdir(tmp_path)
    assert checkout_tracking_uri() == f"sqlite:///{NOTEBOOK.parents[2] / 'mlflow.db'}"
    checkout = _checkout_after_make_sweep(tmp_path)
    uri = f"sqlite:///{checkout / 'mlflow.db'}"
    assert list(open_studies("default", tracking=uri)) == ["default"]  # `-p studies default`: a bare string
    for names, message in (([], "no study to open"), (["nope"], "unknown study 'nope'")):
        with pytest.raises(StudyNotOpened, match=message) as raised:
            open_studies(names, tracking=uri)
        assert raised.value._render_traceback_() == [f"StudyNotOpened: {raised.value}"]
        assert len(str(raised.value).splitlines()) == 1


def test_the_verdict_shows_what_its_comparison_means(executed):
    cell = next(c for c in _cells(executed, "code") if "effect_table(" in "".join(c["source"]))
    printed, shown = _printed(cell), _text(cell)
    assert "racing: winner trial 1: median " in printed and "wide: no verdict recorded" in printed
    assert "ratio of episodes to solve (Hodges-Lehmann)" in shown and "95% CI of the ratio" in shown
    assert "seeds to detect a 10% / 20% change" in shown and "better" in shown
