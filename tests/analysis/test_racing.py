"""Analysis of a racing sweep's record (complete trials on every seed, pruned ones on a few), built without training."""

from __future__ import annotations

import itertools
import re

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from analysis import compare, plots
from analysis.load import trials_frame
from sweeps.study import stats
from tests.analysis.builders import DISTRIBUTIONS, MAX_EPISODES, MAX_SEEDS, add_trial, racing_study, wide_study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    return racing_study()


def test_per_seed_rows_for_complete_and_pruned_trials(study):
    trials = trials_frame(study)
    rows = trials.groupby("trial").size().to_dict()
    assert rows == {0: 16, 1: 16, 2: 16, 3: 16, 4: 3, 5: 4, 6: 6, 7: 3, 8: 1}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.number == 7:
            continue
        mine = trials[trials["trial"] == trial.number].set_index("seed")["episodes_to_solve"]
        assert mine.to_dict() == trial.intermediate_values  # the values the pruner raced on
    old = trials[trials["trial"] == 7]
    assert old["episodes_to_solve"].isna().all() and old["lower_bound"].tolist() == [150, 160, 170]
    assert trials.loc[trials["trial"] == 8, "seed"].tolist() == [-1]

    table = compare.per_trial(trials).set_index("trial")
    assert table["seeds"].to_dict() == {0: 16, 1: 16, 2: 16, 3: 16, 4: 3, 5: 4, 6: 6, 7: 3, 8: 0}
    assert table.loc[6, "median"] == np.median([220 + s for s in range(6)]) and np.isnan(table.loc[6, "value"])
    assert table.loc[7, "lower_bounds_only"] and table.loc[7, "median"] == 160
    assert table.loc[0, "baseline"] and not table.loc[1, "baseline"]
    assert table.loc[1, "median"] == study.trials[1].value


def test_a_ci_needs_min_seeds():
    assert compare.MIN_SEEDS_FOR_CI == stats.MIN_SEEDS_FOR_CI == 8
    assert compare.ci_text([50.0 + s for s in range(7)]) == "too few seeds (7 < 8)"
    low, high = stats.bootstrap_ci([50.0 + s for s in range(8)])
    assert compare.ci_text([50.0 + s for s in range(8)]) == f"{low:.4g}-{high:.4g}"

    few = optuna.create_study(direction="minimize")  # a sweep with max_seeds 4: no trial ever gets a CI
    for shift in (0, 10):
        add_trial(few, [60.0 + shift + s for s in range(4)], params={"gamma": 0.9 + shift / 1000})
    table = compare.top_configurations(trials_frame(few))
    assert (table["ci_95"] == "too few seeds (4 < 8)").all() and table["ci_low"].isna().all()


def test_top_configurations_with_16_seeds_have_cis(study):
    table = compare.top_configurations(trials_frame(study), k=3)
    assert table["seeds"].eq(MAX_SEEDS).all()
    for row in table.itertuples():
        low, high = stats.bootstrap_ci(row.seed_values)
        assert (row.ci_low, row.ci_high) == (low, high) and row.ci_95 == f"{low:.4g}-{high:.4g}"
        assert low <= row.value <= high


def test_comparisons_with_the_best_are_paired(study):
    table = compare.top_configurations(trials_frame(study), k=3).set_index("trial")
    assert table.index.tolist() == [1, 2, 3, 0]  # the three best, then the book
    assert table.loc[1, "vs_best"] == "best" and table.loc[1, "common_seeds"] == MAX_SEEDS

    twin = table.loc[2]  # the same episodes to solve as the best on every seed
    assert twin["paired_p"] == 1.0 and twin["paired_difference"] == 0
    assert twin["vs_best"] == "not distinguishable from the best (paired p=1, n=16)"

    slower = table.loc[3]  # 5-7 episodes slower than the best on every seed
    assert slower["common_seeds"] == MAX_SEEDS and slower["paired_difference"] == 6
    assert slower["paired_p"] < 0.001 and slower["vs_best"].startswith("worse than the best (paired p=")

    book = table.loc[0]
    assert book["baseline"] and book["paired_difference"] == 30 and book["vs_best"].startswith("worse than the best")


def test_paired_comparison_only_over_common_seeds():
    best = {s: 50.0 + s for s in range(16)}
    raced = {s: 60.0 + s for s in range(5)}  # slower on the 5 seeds it has
    paired = stats.paired_test(raced, best)
    assert paired.seeds == tuple(range(5)) and paired.median_difference == 10
    assert compare.vs_best_text(paired) == f"not distinguishable from the best (paired p={paired.p_value:.2g}, n=5)"
    assert paired.p_value >= compare.ALPHA  # five seeds cannot reach p < 0.05 two-sided (min p = 0.0625)
    assert compare.vs_best_text(None).startswith("not comparable")


def test_budget_figure_and_tables(study):
    trials = trials_frame(study)
    png = plots.to_png(plots.budget_figure(trials))
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    budget = compare.budget_table(trials).set_index("state")
    assert budget.loc["COMPLETE", "seeds_trained"] == 4 * MAX_SEEDS
    assert budget.loc["PRUNED", "seeds_trained"] == 3 + 4 + 6 + 3
    assert budget["share_of_seeds"].sum() == pytest.approx(1)
    distribution = compare.seed_distribution(trials).set_index("seeds")
    assert distribution.to_dict() == {"COMPLETE": {3: 0, 4: 0, 6: 0, 16: 4}, "PRUNED": {3: 2, 4: 1, 6: 1, 16: 0}}


def test_budget_figure_without_finished_seeds_is_none():
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    assert plots.budget_figure(trials_frame(study)) is None


def test_bootstrap_ci_is_the_sweeps_one():
    assert compare.bootstrap_ci is stats.bootstrap_ci


def _edges(label: str) -> tuple[float, float]:
    match = re.fullmatch(r"[\[(](\S+), (\S+)\]", label)
    assert match, f"not a bin label: {label}"
    return float(match[1]), float(match[2])


def test_log_scale_parameters_are_binned_in_log_space_with_their_real_edges():
    study = wide_study()
    trials = trials_frame(study)
    log_params = compare.log_scale_params(study)
    assert log_params == {"epsilon_decay_rate", "learning_rate", "epsilon_decay_steps"}  # from the distributions
    effects = compare.all_param_effects(trials, log_params=log_params)
    for param in ("epsilon_decay_rate", "learning_rate", "epsilon_decay_steps", "gamma", "warmup"):
        rows = effects[effects["param"] == param]
        edges = [_edges(label) for label in rows["bin"]]
        flat = [edge for pair in edges for edge in pair]
        assert all(edge > 0 for edge in flat), f"{param}: {rows['bin'].tolist()}"
        assert all(low < high for low, high in edges) and all(a[1] == b[0] for a, b in itertools.pairwise(edges))
        values = [t.params[param] for t in study.trials]
        assert flat[0] == pytest.approx(min(values), rel=5e-3) and flat[-1] == pytest.approx(max(values), rel=5e-3)
        assert rows["bin"].iloc[0].startswith("[") and rows["trials"].sum() == len(study.trials)

    # the middle edge of four quantile bins of a log parameter is the geometric mean of the two middle values
    rates = sorted(t.params["epsilon_decay_rate"] for t in study.trials)
    middle = _edges(effects[effects["param"] == "epsilon_decay_rate"]["bin"].iloc[1])[1]
    assert middle == pytest.approx(np.sqrt(rates[5] * rates[6]), rel=5e-3)
    assert middle != pytest.approx((rates[5] + rates[6]) / 2, rel=1e-3)


def test_per_seed_values_are_whole_numbers():
    study = wide_study()
    trials = trials_frame(study)
    assert str(trials["episodes_to_solve"].dtype) == "Int64" and str(trials["lower_bound"].dtype) == "Int64"
    table = compare.per_trial(trials).set_index("trial")
    assert all(type(v) is int for values in table["per_seed"] for v in values.values())
    assert ".0" not in repr(table.loc[0, "per_seed"]) and table.loc[0, "per_seed"][3] == MAX_EPISODES + 1

    shown = compare.per_seed_table({"book": table.loc[0, "per_seed"], "short": {0: 61.0, 1: 70.0}}, MAX_EPISODES)
    assert shown.columns.tolist() == [str(seed) for seed in range(MAX_SEEDS)]
    assert shown.loc["book", "3"] == f">{MAX_EPISODES}"  # never solved: marked, not printed as 501
    assert shown.loc["book", "0"] == str(table.loc[0, "per_seed"][0]) and shown.loc["short", "0"] == "61"
    assert (shown.loc["short", [str(s) for s in range(2, MAX_SEEDS)]] == "-").all()  # not trained
    assert not shown.map(lambda text: text.endswith(".0")).any().any()
    old = compare.per_trial(trials_frame(racing_study())).set_index("trial")  # lower bounds of an older study
    assert old.loc[7, "median"] == 160 and np.isnan(old.loc[7, "value"])


def _drawn_tick_labels(figure) -> list:
    """Every tick label matplotlib draws: on a visible axis, at a tick inside the axis' limits, with text."""
    labels = []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            if not axis.get_visible():
                continue
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * (high - low)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if low - slack <= tick.get_loc() <= high + slack:
                    labels += [text for text in (tick.label1, tick.label2) if text.get_visible() and text.get_text()]
    return labels


def test_parallel_coordinates_labels_do_not_overlap():
    figure = plots.parallel_figure(wide_study())
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    main = figure.axes[0]
    twins = [axes for axes in figure.axes[1:] if main.get_shared_x_axes().joined(main, axes)]
    names = [label.get_text() for label in main.get_xticklabels()]
    assert names == ["Objective Value", *sorted(DISTRIBUTIONS)]  # Optuna writes "target_refresh_ep..."
    boxes = [(label.get_text(), label.get_window_extent(renderer)) for label in _drawn_tick_labels(figure)]
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert not overlapping
    frame = main.get_window_extent(renderer)
    gap = frame.width / len(twins)
    for index, axes in enumerate(twins):  # a parameter's tick labels stay between its axis and the next
        for label in axes.get_yticklabels():
            box = label.get_window_extent(renderer)
            assert frame.x0 + (index + 1) * gap < box.x0 and box.x1 < frame.x0 + (index + 2) * gap
        if axes.get_yscale() == "log":  # lowest, middle, highest; no labelled minor ticks
            assert len([t for t in axes.get_yticklabels() + axes.get_yticklabels(minor=True) if t.get_text()]) == 3
    png = plots.to_png(figure)
    assert png.startswith(b"\x89PNG")
