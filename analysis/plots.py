"""Figures for reports and notebooks, returned as matplotlib figures or embedded PNG data URIs.

Study-level plots come from `optuna.visualization.matplotlib` (not redrawn by hand); learning curves and the
budget figure are plain matplotlib.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
from matplotlib.ticker import MaxNLocator, NullLocator
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from analysis import compare
from sweeps.study.schema import per_seed_values


def to_png(figure: plt.Figure) -> bytes:
    """Render and close: figures are built headless (Agg), so notebooks display these bytes as an Image."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def to_data_uri(figure: plt.Figure) -> str:
    """PNG bytes inline, so an HTML report needs no other file and no network."""
    return "data:image/png;base64," + base64.b64encode(to_png(figure)).decode("ascii")


def optuna_figure(plot: Callable[..., object], study: optuna.Study, **kwargs: object) -> plt.Figure | None:
    """Run one of optuna.visualization.matplotlib's plots; None when the study cannot support it yet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is flagged experimental
        try:
            axes = plot(study, **kwargs)
        except (ValueError, RuntimeError, KeyError):
            return None
    axes = axes.flat[0] if hasattr(axes, "flat") else axes
    figure = axes.figure
    figure.set_size_inches(8, 4.5)
    return figure


def history_figure(study: optuna.Study) -> plt.Figure | None:
    """Optuna's optimization history (complete trials and the best value so far), with the pruned trials added.

    Optuna draws complete trials only, which hides most of a racing sweep. Pruned trials are drawn hollow at the
    median of the seeds they finished: fewer seeds than a complete trial's, so noisier, and the pruner judged them
    seed by seed against the best, not by that median (PRUNED_NOTE).
    """
    figure = optuna_figure(optuna.visualization.matplotlib.plot_optimization_history, study)
    if figure is None:
        return None
    axes = figure.axes[0]
    pruned = [(t.number, _pruned_median(t)) for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))]
    pruned = [(number, value) for number, value in pruned if value is not None]
    if pruned:
        numbers, values = zip(*pruned, strict=True)
        axes.scatter(numbers, values, label="pruned (median of the seeds it finished)", **PRUNED_MARKER)
    # Optuna's legend sits right of the axes and takes a third of the width; below them it covers no point.
    handles, labels = axes.get_legend_handles_labels()
    names = {"Objective Value": "complete (median of all its seeds)", "Best Value": "best complete so far"}
    labels = [names.get(label, label) for label in labels]
    axes.legend(handles, labels, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    axes.set_ylabel("median episodes to solve")
    figure.tight_layout()
    return figure


def _pruned_median(trial: optuna.trial.FrozenTrial) -> float | None:
    """A pruned trial's median over the seeds it finished; None for older studies' pruned trials, which recorded
    only lower bounds (and a stored value that was one seed's)."""
    values = list(per_seed_values(trial).values())
    return float(np.median(values)) if values else None


def importance_figure(study: optuna.Study) -> plt.Figure | None:
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 2:
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna_figure(optuna.visualization.matplotlib.plot_param_importances, study, evaluator=evaluator)


def parallel_figure(study: optuna.Study) -> plt.Figure | None:
    """Optuna's parallel coordinates, relabelled so that no two labels overlap.

    Optuna gives each parameter axis matplotlib's default ticks (on a log axis also labelled minor ticks) to the
    right of its spine, where they run into the next axis, and truncates long names ("target_refresh_ep...").
    Here every numeric axis gets three ticks (its lowest, middle and highest value; one on a constant axis), names
    are written out in two staggered rows, and the figure is made wide enough for the widest label.
    """
    figure = optuna_figure(optuna.visualization.matplotlib.plot_parallel_coordinate, study)
    if figure is None:
        return None
    figure.set_size_inches(11, 5)  # one axis per parameter needs the width
    main = figure.axes[0]
    twins = [axes for axes in figure.axes[1:] if main.get_shared_x_axes().joined(main, axes)]
    if not twins:  # no parameter to draw
        return figure
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = _axis_names([label.get_text() for label in main.get_xticklabels()], complete)
    for name, axes in zip(names[1:], twins, strict=True):
        _three_ticks(axes, name, complete)
        axes.tick_params(axis="y", labelsize=9)
        for label in axes.get_yticklabels():
            label.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    main.set_xticks(main.get_xticks(), names, rotation=0, ha="center", fontsize=9)
    for index, tick in enumerate(main.xaxis.get_major_ticks()):
        # below the lowest tick labels beside the spines; odd names a row lower, neighbours may be wider than a gap
        tick.set_pad(8 + 13 * (index % 2))
    _widen_to_fit(figure, main, twins)
    return figure


def _axis_names(labels: list[str], trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """The objective's label and every parameter's full name: Optuna draws one axis per parameter in sorted order
    and shortens names from 20 characters on ("target_refresh_ep..."). Optuna's labels where they do not match."""
    params = sorted({name for trial in trials for name in trial.params})
    matches = len(params) == len(labels) - 1 and all(
        label == name or (label.endswith("...") and name.startswith(label[:-3]))
        for label, name in zip(labels[1:], params, strict=True)
    )
    return [labels[0], *params] if matches else labels


def _three_ticks(axes: plt.Axes, name: str, trials: list[optuna.trial.FrozenTrial]) -> None:
    """Lowest, middle and highest value on a numeric axis (geometric middle on a log axis). Categorical axes, and
    axes of a parameter some trials lack, keep Optuna's ticks: there each tick is a labelled category (or "None")."""
    distributions = [t.distributions[name] for t in trials if name in t.params]
    if len(distributions) < len(trials) or any(isinstance(d, CategoricalDistribution) for d in distributions):
        return
    values = [t.params[name] for t in trials]
    log = axes.get_yscale() == "log"
    low, high = min(values), max(values)
    if low == high:  # Optuna draws a constant parameter through the middle of its axis
        ticks = [low]
        axes.set_ylim((low / 2, low * 2) if log else (low - 1, low + 1) if low == 0 else (low * 0.9, low * 1.1))
    else:
        ticks = list(np.geomspace(low, high, 3) if log else np.linspace(low, high, 3))
        if all(isinstance(d, IntDistribution) for d in distributions):
            ticks = sorted({round(t) for t in ticks})
    axes.yaxis.set_minor_locator(NullLocator())
    axes.set_yticks(ticks, [_tick_text(t) for t in ticks])


def _tick_text(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _widen_to_fit(figure: plt.Figure, main: plt.Axes, twins: list[plt.Axes]) -> None:
    """Widen the figure until the gap between two parameter axes holds every tick label beside a spine (with its
    tick) and half of two names in the same row (every other name)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    frame = main.get_window_extent(renderer)
    gap = frame.width / len(twins)
    beside = [
        label.get_window_extent(renderer).x1 - (frame.x0 + (index + 1) * gap) + 6
        for index, axes in enumerate(twins)
        for label in axes.get_yticklabels()
        if label.get_text()
    ]
    names = [label.get_window_extent(renderer).width for label in main.get_xticklabels()]
    in_a_row = [(a + b) / 4 + 4 for a, b in zip(names, names[2:], strict=False)]
    needed = max([*beside, *in_a_row])
    if needed > gap:  # the axes keep their share of the figure's width, so the gap grows with it
        width, height = figure.get_size_inches()
        figure.set_size_inches(width * needed / gap, height)


def curves_figure(
    curves: pd.DataFrame, labels: dict[int, str], threshold: int | None = None, smooth: int = 5
) -> plt.Figure | None:
    """Steps per episode, median across seeds with the IQR shaded, one line per trial.

    Episode lengths jump between ~10 and 200 from one episode to the next, so lines are a centred rolling mean
    over `smooth` episodes (the tables keep the raw numbers).
    """
    if curves.empty:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for trial, group in curves.groupby("trial"):
        rolled = group[["median", "q25", "q75"]].rolling(smooth, center=True, min_periods=1).mean()
        line = axes.plot(group["episode"], rolled["median"], lw=1.4, label=labels.get(int(trial), f"trial {trial}"))
        axes.fill_between(group["episode"], rolled["q25"], rolled["q75"], color=line[0].get_color(), alpha=0.15)
    if threshold is not None:
        axes.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"success ({threshold} steps)")
    axes.set(
        xlabel="episode",
        ylabel=f"steps (median, IQR across seeds; {smooth}-episode mean)",
        title="Learning curves",
    )
    axes.legend(fontsize="small", loc="lower right")
    return figure


PRUNED_MARKER = {"marker": "o", "facecolors": "none", "edgecolors": "tab:orange", "linewidths": 1.2}
"""Pruned trials are hollow wherever a figure places them by a median: it is over fewer seeds than a complete
trial's, so a pruned trial drawn below a complete one is noise, not a better trial thrown away."""

PRUNED_NOTE = (
    "Hollow: pruned trials, at the median of the few seeds they finished before the pruner stopped them; over so "
    "few seeds a median is noisy,\nand the pruner compared each seed by seed with the best trial over the seeds "
    "both trained, not by this median (a hollow marker below the book is not a better trial thrown away)."
)

_STATE_STYLE = {
    compare.COMPLETE: {"marker": "o", "color": "tab:blue", "label": "complete (median of all its seeds)"},
    compare.PRUNED: {**PRUNED_MARKER, "label": "pruned (median of the seeds it finished)"},
}
_BAR_COLOR = {compare.COMPLETE: "tab:blue", compare.PRUNED: "tab:orange"}


def budget_figure(trials: pd.DataFrame) -> plt.Figure | None:
    """Where the budget went: seeds each trial finished (x) against its median over them (y), and how many trials
    stopped after each number of seeds.

    Trials race seeds, so a trial's cost is its seed count: a good racing sweep shows a few trials at max_seeds
    and most of the rest pruned after a few seeds with a high median. Pruned trials are hollow, with PRUNED_NOTE
    under the figure; those of older studies recorded only lower bounds and are hollow triangles at the median of
    their bounds. Seeds a pruned trial had in flight, cut short, are in `compare.budget_table`, not here: they have
    no value to place. None when no trial finished a seed.
    """
    table = compare.per_trial(trials)
    finished = table[table["state"].isin(list(_STATE_STYLE)) & (table["seeds"] > 0)]
    if finished.empty:
        return None
    figure, (scatter, bars) = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [3, 2]})
    for state, style in _STATE_STYLE.items():
        rows = finished[(finished["state"] == state) & ~finished["lower_bounds_only"]]
        if not rows.empty:
            scatter.scatter(rows["seeds"], rows["median"], alpha=0.8, **style)
    old = finished[finished["lower_bounds_only"]]
    if not old.empty:
        scatter.scatter(
            old["seeds"], old["median"], marker="^", facecolors="none", edgecolors="tab:orange", label="pruned (bounds)"
        )
    book = finished[finished["baseline"]]
    if not book.empty:
        scatter.scatter(
            book["seeds"], book["median"], marker="*", s=220, color="tab:red", edgecolors="black", label="book"
        )
    # Short enough to fit beside the axes at any figure height the report or a notebook draws: the legend and the
    # note below say what the median is over.
    scatter.set(xlabel="seeds finished", ylabel="median episodes to solve", title="Where the budget went")
    scatter.legend(fontsize="small")

    counts = compare.seed_distribution(trials)
    positions = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    for state, color in _BAR_COLOR.items():
        bars.bar(positions, counts[state], bottom=bottom, color=color, label=state.lower())
        bottom += counts[state].to_numpy()
    bars.set_xticks(positions, [str(n) for n in counts["seeds"]])
    bars.set(xlabel="seeds finished", ylabel="trials", title="Seeds per trial")
    bars.yaxis.set_major_locator(MaxNLocator(integer=True))
    bars.legend(fontsize="small")
    if (finished["state"] == compare.PRUNED).any():
        figure.text(0.01, 0.01, PRUNED_NOTE, fontsize=8, color="dimgrey", ha="left", va="bottom")
        figure.tight_layout(rect=(0, 0.07, 1, 1))  # room for the note's two lines
    else:
        figure.tight_layout()
    return figure
