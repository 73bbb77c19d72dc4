"""Figures for reports and notebooks, returned as matplotlib figures or embedded PNG data URIs.

Study-level plots come from `optuna.visualization.matplotlib` (not redrawn by hand); learning curves are plain
matplotlib (median line, IQR band).
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
import pandas as pd


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
    return optuna_figure(optuna.visualization.matplotlib.plot_optimization_history, study)


def importance_figure(study: optuna.Study) -> plt.Figure | None:
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 2:
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return optuna_figure(optuna.visualization.matplotlib.plot_param_importances, study, evaluator=evaluator)


def parallel_figure(study: optuna.Study) -> plt.Figure | None:
    figure = optuna_figure(optuna.visualization.matplotlib.plot_parallel_coordinate, study)
    if figure is not None:
        figure.set_size_inches(11, 5)  # one axis per parameter needs the width
    return figure


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
