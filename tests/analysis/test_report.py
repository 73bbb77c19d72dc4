"""The HTML report of a racing study: the verdict first, the budget, paired top configurations; written, not logged."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from analysis.load import StudyData
from analysis.report import SECTIONS, build_report
from analysis.verdict import NO_VERDICT, recorded_verdict, verdict_table
from sweeps.cli import main
from sweeps.stores.locations import default_report, open_optuna_storage
from sweeps.tracking.report_log import log_report
from tests.analysis.builders import MAX_EPISODES, journal_study, mlflow_store, racing_study, record_verdict, wide_study
from tests.analysis.test_knob_effects import planted_study


class _Stores:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = f"journal:{root / 'optuna-journal.log'}"
        backend = open_optuna_storage(self.storage)
        self.verdict = record_verdict(racing_study(backend, name="judged"))
        racing_study(backend, name="unjudged")
        wide_study(backend, name="wide")
        planted_study(storage=backend, name="planted")  # learning_rate slows the median x1.35, the rest do nothing
        planted_study(0.0, storage=backend, name="flat")
        self.tracking_uri = mlflow_store(root, ["judged", "unjudged", "wide", "planted", "flat"])

    def open(self, name: str) -> StudyData:
        return StudyData.open(name, storage=self.storage, tracking=self.tracking_uri)

    def fingerprint(self) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(self.root.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> _Stores:
    return _Stores(tmp_path_factory.mktemp("racing_stores"))


def _sections(text: str) -> list[str]:
    return re.findall(r'<h2 id="([a-z]+)">', text)


def _section(text: str, section_id: str) -> str:
    start = text.index(f'<h2 id="{section_id}">')
    following = text.find("<h2 ", start + 1)
    return text[start : following if following > 0 else None]


def test_report_opens_with_the_verdict(stores, tmp_path):
    before = stores.fingerprint()
    out = build_report(stores.open("judged"), tmp_path / "judged.html", top=3)
    assert out == tmp_path / "judged.html"
    text = out.read_text()
    assert _sections(text) == [section_id for section_id, _ in SECTIONS] and _sections(text)[0] == "verdict"
    verdict = _section(text, "verdict")
    assert stores.verdict["line"] in verdict
    assert "winner" in verdict and "book" in verdict and "10000..10031" in verdict
    assert f"{stores.verdict['p_value']:.2g}" in verdict and "no verdict recorded" not in text
    effect = stores.verdict["effect"]
    assert f"{effect['ratio']:.3f}" in verdict and f"{effect['ci95'][0]:.3f}-{effect['ci95'][1]:.3f}" in verdict
    assert "equivalence (TOST): 90% CI within ±10%" in verdict and "seeds to detect a 10% / 20% change" in verdict

    assert "data:image/png;base64," in _section(text, "budget")
    top = _section(text, "top")
    assert "paired_p" in top and "not distinguishable from the best (paired p=1, n=16)" in top
    assert not re.search(r"https?://", text) and "<script" not in text
    assert stores.fingerprint() == before  # analysis reads the stores and writes only its file


def test_report_without_a_verdict_says_so(stores, tmp_path):
    text = build_report(stores.open("unjudged"), tmp_path / "unjudged.html").read_text()
    assert _sections(text)[0] == "verdict" and "no verdict recorded" in _section(text, "verdict")
    assert "--no-validate" in _section(text, "verdict")


def test_importances_show_each_parameters_effect_from_every_run(stores, tmp_path):
    """Beside fANOVA: the per-parameter table with its CIs, and a sentence that claims a flat space only when every
    interval allows no effect."""
    planted = _section(build_report(stores.open("planted"), tmp_path / "planted.html").read_text(), "importances")
    assert planted.index("fANOVA") < planted.index("Each parameter's effect, from every (trial, seed) run")
    assert "<td>learning_rate</td>" in planted and "<td>0.0003 -&gt; 0.003</td>" in planted
    assert "<td>gamma</td>" in planted and "<td>16 -&gt; 64</td>" in planted
    assert "The 95% CI excludes no effect for learning_rate 0.0003 -&gt; 0.003: median x" in planted
    assert "no parameter moves the median" not in planted
    assert "pruned trials included" in planted and "resamples of trials and seeds" in planted
    assert "484 runs of 40 trials on 16 seeds" in planted  # 27 complete x 16 seeds + 13 pruned x 4

    flat = _section(build_report(stores.open("flat"), tmp_path / "flat.html").read_text(), "importances")
    assert re.search(
        r"<strong>Within the searched ranges, no parameter moves the median by more than \d+% \(95% CI\)", flat
    )
    assert "<td>learning_rate</td>" in flat and "excludes no effect" not in flat


def test_build_report_logs_nothing_to_mlflow(stores, tmp_path):
    data = stores.open("judged")
    build_report(data, tmp_path / "judged.html")
    assert MlflowClient(stores.tracking_uri).list_artifacts(data.parent_run_id()) == []


def test_verdict_table(stores):
    study = optuna.load_study(study_name="judged", storage=open_optuna_storage(stores.storage))
    verdict = recorded_verdict(study)
    table = verdict_table(verdict, study).set_index("config")
    assert table.loc["winner", "trial"] == "1" and table.loc["book", "trial"] == "0"
    assert table.loc["winner", "median"] == stores.verdict["winner_median"]
    low, high = stores.verdict["book_ci"]
    assert table.loc["book", "95% CI"] == f"{low:.4g}-{high:.4g}"
    assert table["seeds"].tolist() == [32, 32] and table.loc["winner", "paired p"] == f"{verdict.p_value:.2g}"
    assert verdict.winner_values[10000] == stores.verdict["winner_values"][0]

    unjudged = optuna.load_study(study_name="unjudged", storage=open_optuna_storage(stores.storage))
    assert recorded_verdict(unjudged) is None and "dqn-sweep run" in NO_VERDICT


def test_log_report_logs_to_the_parent_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the experiment has no artifact location: MLflow's default is ./mlruns
    uri = mlflow_store(tmp_path, ["judged"])
    report = tmp_path / "judged.html"
    report.write_text("<html></html>")
    run_id = log_report(uri, "judged", report)
    client = MlflowClient(uri)
    parent = client.get_run(run_id)
    assert parent.data.tags["dqn_sweep.role"] == "study" and parent.data.tags["dqn_sweep.study"] == "judged"
    assert [a.path for a in client.list_artifacts(run_id)] == ["judged.html"]
    assert log_report(uri, "nope", report) is None  # no experiment: nothing is created
    assert client.get_experiment_by_name("nope") is None


def test_report_goes_beside_a_local_store_wherever_it_runs(tmp_path, monkeypatch, capsys):
    """`reports/<study>.html` beside mlflow.db (and the journal found beside it too), from any working directory;
    a store that is no local file leaves the working directory as the only sensible default."""
    root = tmp_path / "stores"
    root.mkdir()
    monkeypatch.chdir(root)  # MLflow puts the artifacts of an experiment made without a location in ./mlruns
    journal_study(root, name="judged")
    uri = mlflow_store(root, ["judged"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", "--tracking-uri", uri]) == 0
    written = root / "reports" / "judged.html"
    assert written.is_file() and f"wrote {written} " in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []

    written.unlink()
    monkeypatch.chdir(tmp_path)  # a relative store URI: the report still lands beside the file it names
    assert main(["report", "--tracking-uri", "sqlite:///stores/mlflow.db"]) == 0
    assert written.is_file() and not (tmp_path / "reports").exists()
    assert default_report("http://127.0.0.1:5000", "judged") == tmp_path / "reports" / "judged.html"


def test_every_table_scrolls_inside_its_own_box(stores, tmp_path):
    text = build_report(stores.open("wide"), tmp_path / "wide.html").read_text()
    assert ".table{max-width:100%;overflow-x:auto}" in text
    tables = re.findall(r"<table", text)
    boxed = re.findall(r'<div class="table">\s*<table', text)
    assert len(tables) == len(boxed) >= 6


def _page_width(chromium: str, report: Path, tmp_path: Path) -> int:
    """The page's scrollWidth in a 1400 px wide window (a copy of the report with one script that writes it)."""
    probe = tmp_path / "probe.html"
    script = "<script>document.body.dataset.width = document.documentElement.scrollWidth;</script>"
    probe.write_text(report.read_text().replace("</body>", script + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    window = [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900"]
    dom = subprocess.run(
        [chromium, *flags, *window, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return int(re.search(r'data-width="(\d+)"', dom)[1])


def test_report_fits_a_1400px_window(stores, chromium, tmp_path):
    report = build_report(stores.open("wide"), tmp_path / "wide.html")
    assert _page_width(chromium, report, tmp_path) <= 1400

    wide = tmp_path / "too_wide.html"  # the probe sees overflow where there is some
    wide.write_text(report.read_text().replace("</body>", '<div style="width:3000px">x</div></body>'))
    assert _page_width(chromium, wide, tmp_path) > 1400


def test_top_configurations_show_whole_episodes_seed_by_seed(stores, tmp_path):
    text = build_report(stores.open("wide"), tmp_path / "wide.html").read_text()
    top = _section(text, "top")
    seeds = top[top.index("Episodes to solve on each seed") :]
    assert "<td>trial 0 (book)</td>" in seeds and f"<td>&gt;{MAX_EPISODES}</td>" in seeds  # the unsolved seed
    cells = re.findall(r"<td>([^<]*)</td>", seeds)
    assert len(cells) >= 16 and not [c for c in cells if re.fullmatch(r"\d+\.\d+", c)]
    assert "epsilon_decay_steps" in top and "target_refresh_episodes" in top  # every parameter, in its own table


def test_parameter_effects_of_log_parameters_have_positive_edges(stores, tmp_path):
    effects = _section(build_report(stores.open("wide"), tmp_path / "wide.html").read_text(), "effects")
    bins = re.findall(r"<td>([\[(][^<]*\])</td>", effects)
    assert len(bins) >= 12 and not [b for b in bins if "-" in b]
    assert "epsilon_decay_rate, epsilon_decay_steps, learning_rate: on the log of their values" in effects
