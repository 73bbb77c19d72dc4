"""What a new user misread in the report (issue 25): the budget without the seeds pruning cut short, a clipped
label, pruned trials drawn like complete ones, a second significance level, the held-out table without its p, and
importances such as 1.017e-31. Real Optuna and MLflow stores, built without training."""

from __future__ import annotations

import html
import itertools
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from matplotlib.colors import to_rgba
from optuna.trial import TrialState

from analysis import compare, plots
from analysis.load import StudyData, trials_frame
from analysis.report import _share_text, build_report
from analysis.validate import held_out_table
from dqn_core.config import TrainConfig
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.effect import ALPHA
from sweeps.study.objective import SeedCurve
from sweeps.study.schema import CURVES_FILE, per_seed_values
from sweeps.study.stats import paired_test
from sweeps.tracking.artifacts import write_curves_csv
from sweeps.tracking.tracker import StudyTracker
from tests.analysis.builders import MAX_SEEDS, add_trial, racing_study, record_verdict, wide_study
from tests.analysis.test_racing import _drawn_tick_labels

# Seeds still training when their trial was pruned: trial 5 finished seeds 0-3 and had 4, 5 and 6 in flight,
# trial 6 finished 0-5 and had 6 in flight. A sweep counts them in `seeds: N (trial, seed) runs`; only the trial's
# curves.csv records them.
STOPPED = {5: [4, 5, 6], 6: [6]}


def _curve(episodes: int) -> SeedCurve:
    return SeedCurve(steps=[20] * episodes, epsilon=[0.5] * episodes, loss=[0.1] * episodes)


@pytest.fixture(scope="module")
def raced(tmp_path_factory) -> StudyData:
    """A racing study whose trials logged their curves as a sweep does, in-flight seeds of pruned trials included."""
    root = tmp_path_factory.mktemp("raced")
    storage = f"journal:{root / 'optuna-journal.log'}"
    study = racing_study(open_optuna_storage(storage), name="raced")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = StudyTracker(uri, "raced", tags={})
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        seeds = [*per_seed_values(trial), *STOPPED.get(trial.number, [])]
        curves = {seed: _curve(3) for seed in seeds}
        run_id = tracker.trials.start(trial.number, trial.params, list(trial.params), seeds, tags={})
        tracker.trials.log_files(run_id, {CURVES_FILE: lambda path, c=curves: write_curves_csv(path, c)})
        tracker.trials.finish(run_id, trial.state.name)
    return StudyData.open("raced", storage=storage, tracking=uri)


def test_the_budget_counts_the_seeds_pruning_cut_short(raced, tmp_path):
    budget = compare.budget_table(raced.trials, raced.episodes).set_index("state")
    assert budget.loc["COMPLETE", ["seeds_finished", "seeds_stopped", "seeds_trained"]].tolist() == [64, 0, 64]
    # trial 7 (an older study's lower bounds) has 3 finished seeds and no stopped ones
    finished = 3 + 4 + 6 + 3
    assert budget.loc["PRUNED", ["seeds_finished", "seeds_stopped"]].tolist() == [finished, 4]
    assert budget.loc["PRUNED", "seeds_trained"] == finished + 4
    assert budget["seeds_trained"].sum() == 4 * MAX_SEEDS + finished + 4  # what the sweep's summary line counts
    assert budget["share_of_seeds"].sum() == pytest.approx(1)
    assert compare.stopped_seeds(raced.trials, raced.episodes).to_dict() == {5: 3, 6: 1}

    without = compare.budget_table(raced.trials).set_index("state")  # no curves at hand: finished seeds only
    assert without["seeds_stopped"].sum() == 0 and without["seeds_trained"].sum() == 4 * MAX_SEEDS + finished

    text = build_report(raced, tmp_path / "raced.html").read_text()
    budget_html = text[text.index('<h2 id="budget">') : text.index('<h2 id="history">')]
    assert "seeds_stopped" in budget_html and "cut short" in budget_html
    assert f"<td>{finished}</td>\n      <td>4</td>\n      <td>{finished + 4}</td>" in budget_html  # the PRUNED row


def _extent(artist, renderer):
    return artist.get_window_extent(renderer)


@pytest.mark.parametrize("style", ["default", "ggplot"])  # ggplot: what Optuna's plots leave behind in a process
def test_the_budget_figures_y_label_fits_beside_its_axes(style):
    with plt.style.context(style):
        figure = plots.budget_figure(trials_frame(racing_study()))
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        for axes in figure.axes:
            label, frame = _extent(axes.yaxis.label, renderer), _extent(axes, renderer)
            assert figure.bbox.x0 <= label.x0 and label.x1 <= figure.bbox.x1
            assert frame.y0 <= label.y0 and label.y1 <= frame.y1, (axes.get_ylabel(), label, frame)
        for text in figure.texts:  # the note under the figure
            box = _extent(text, renderer)
            assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1 and figure.bbox.y0 <= box.y0
            assert not any(box.overlaps(_extent(axes.xaxis.label, renderer)) for axes in figure.axes)
        plt.close(figure)


def _hollow(collection) -> bool:
    faces = collection.get_facecolors()
    return len(faces) == 0 or bool((faces[:, 3] == 0).all())


def _by_label(axes) -> dict[str, object]:
    return {c.get_label(): c for c in axes.collections if not c.get_label().startswith("_")}


def test_pruned_trials_are_hollow_and_the_figure_says_their_medians_are_over_fewer_seeds():
    trials = trials_frame(racing_study())
    figure = plots.budget_figure(trials)
    markers = _by_label(figure.axes[0])
    complete = markers["complete (median of all its seeds)"]
    pruned = markers["pruned (median of the seeds it finished)"]
    assert not _hollow(complete) and _hollow(pruned)
    assert np.allclose(pruned.get_edgecolors()[0][:3], to_rgba("tab:orange")[:3])
    table = compare.per_trial(trials)
    expected = table[(table["state"] == compare.PRUNED) & ~table["lower_bounds_only"]]
    assert sorted(map(tuple, pruned.get_offsets().tolist())) == sorted(
        zip(expected["seeds"], expected["median"], strict=True)
    )
    notes = " ".join(text.get_text() for text in figure.texts)
    assert "Hollow: pruned trials" in notes and "noisy" in notes and "seed by seed" in notes
    assert figure.axes[0].get_xlabel() == "seeds finished"
    plt.close(figure)


def test_the_optimization_history_shows_pruned_trials_hollow():
    study = racing_study()
    figure = plots.history_figure(study)
    axes = figure.axes[0]
    pruned = _by_label(axes)["pruned (median of the seeds it finished)"]
    assert _hollow(pruned)
    shown = {int(x): y for x, y in pruned.get_offsets().tolist()}
    expected = {t.number: float(np.median(list(per_seed_values(t).values()) or [np.nan])) for t in study.trials}
    assert shown == {4: expected[4], 5: expected[5], 6: expected[6]}  # trial 7 (lower bounds only) has no value
    complete = [c for c in axes.collections if c is not pruned and len(c.get_offsets())]
    assert complete and not any(_hollow(c) for c in complete)  # Optuna's own, filled
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["complete (median of all its seeds)", "best complete so far", pruned.get_label()]
    figure.canvas.draw()
    legend = _extent(axes.get_legend(), figure.canvas.get_renderer())
    assert figure.bbox.y0 <= legend.y0 and legend.x1 <= figure.bbox.x1
    plt.close(figure)


def test_top_configurations_call_a_trial_worse_only_at_the_verdicts_level():
    assert compare.ALPHA == ALPHA == 0.01
    best = {s: 50.0 + s for s in range(7)}
    slower = {s: v + 5 + s for s, v in best.items()}  # slower on all 7 seeds: exact two-sided p = 2/128
    paired = paired_test(slower, best)
    assert 0.01 < paired.p_value < 0.05
    assert compare.vs_best_text(paired).startswith("not distinguishable from the best")
    study = optuna.create_study(direction="minimize")
    add_trial(study, list(best.values()), params={"gamma": 0.97})
    add_trial(study, list(slower.values()), params={"gamma": 0.96}, book=True)
    top = compare.top_configurations(trials_frame(study))
    assert top.iloc[1]["vs_best"].startswith("not distinguishable") and top.iloc[1]["paired_p"] == paired.p_value


def test_the_top_configurations_note_names_the_verdicts_level(raced, tmp_path):
    text = build_report(raced, tmp_path / "top.html").read_text()
    top = html.unescape(text[text.index('<h2 id="top">') : text.index('<h2 id="curves">')])
    assert "'worse' or 'better' means p < 0.01, the verdict's level" in top and "p < 0.05" not in top


def test_the_held_out_table_has_the_paired_p_validate_printed(tmp_path):
    from sweeps.run.validation import _log  # the writer `dqn-sweep validate` uses, so the test reads what it logs

    storage = f"journal:{tmp_path / 'optuna-journal.log'}"
    record_verdict(racing_study(open_optuna_storage(storage), name="held"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = StudyTracker(uri, "held", tags={})
    rows = [
        {"config": "trial 1", "trial": 1, "held_out_median": 55.0, "vs_book_p": 0.0004},
        {"config": "trial 0 (book)", "trial": 0, "held_out_median": 88.0, "vs_book_p": None},
    ]
    seeds = {10000 + s: 50.0 + s for s in range(10)}
    for row in rows:
        row.update(ci_low=40.0, ci_high=70.0, unsolved=0, in_sweep_value=None, seeds=10)
        _log(tracker, row, TrainConfig(), seeds, 1.0)
    table = held_out_table(StudyData.open("held", storage=storage, tracking=uri)).set_index("config")
    assert "vs_book_p" in table.columns
    assert table.loc["trial 1", "vs_book_p"] == pytest.approx(0.0004)
    assert np.isnan(table.loc["trial 0 (book)", "vs_book_p"])  # the book is not compared with itself

    text = build_report(StudyData.open("held", storage=storage, tracking=uri), tmp_path / "held.html").read_text()
    holdout = text[text.index('<h2 id="holdout">') : text.index('<h2 id="agent">')]
    assert "vs_book_p" in holdout and "0.0004" in holdout and "paired Wilcoxon" in holdout


def test_importances_print_tiny_shares_as_zero(tmp_path):
    # fANOVA's share for target_refresh_episodes in the README's default sweep (constant over complete trials)
    assert _share_text(1.016511e-31) == "0" and _share_text(0.0) == "0" and _share_text(0.0004) == "0"
    assert _share_text(0.4312004) == "0.431" and _share_text(0.0005) == "0.001"
    storage = f"journal:{tmp_path / 'optuna-journal.log'}"
    wide_study(open_optuna_storage(storage), name="wide")
    StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "wide", tags={})
    data = StudyData.open("wide", storage=storage, tracking=f"sqlite:///{tmp_path / 'mlflow.db'}")
    text = build_report(data, tmp_path / "wide.html").read_text()
    start = text.index('<h2 id="importances">')
    importances = text[start : text.index("<h3>", start)]
    shares = re.findall(r"<td>(\S+)</td>\s*</tr>", importances)
    assert len(shares) == len(compare.importances(data.study))
    assert all(re.fullmatch(r"0|[01]\.\d{3}", share) for share in shares), shares


def test_parallel_coordinates_texts_do_not_overlap_for_the_shipped_spaces():
    """Every label drawn (tick labels, parameter names, axis labels) stays apart, for each sweep file's space."""
    from sweeps.study.space import load_sweep

    configs = Path(__file__).parents[2] / "sweeps" / "configs"
    for path in sorted(configs.glob("*.yaml")):
        sweep = load_sweep(path)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        rng = np.random.default_rng(0)
        for _ in range(25):
            trial = study.ask()
            for spec in sweep.space:
                spec.suggest(trial)
            study.tell(trial, float(rng.integers(40, 302)))
        figure = plots.parallel_figure(study)
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        texts = _drawn_tick_labels(figure) + [a.yaxis.label for a in figure.axes] + [a.title for a in figure.axes]
        boxes = [(t.get_text(), _extent(t, renderer)) for t in texts if t.get_visible() and t.get_text()]
        overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
        assert not overlapping, (path.name, overlapping)
        plt.close(figure)
