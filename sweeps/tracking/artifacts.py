"""Files a trial leaves behind: its config as YAML, its curves as CSV (written and read here, for the sweep and for
analysis alike), a learning-curve PNG, and a GIF of one greedy episode.

Analysis imports this module to read curves, so it imports no training code (TensorFlow) at module level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from dqn_core.agent import TrainedAgent


def write_config_yaml(path: Path, config: Mapping[str, Any], seeds: Sequence[int]) -> Path:
    path.write_text(yaml.safe_dump({"trainer": dict(config), "seeds": list(seeds)}, sort_keys=False))
    return path


CURVE_COLUMNS = ("seed", "episode", "steps", "epsilon", "loss")


def write_curves_csv(path: Path, curves: Mapping[int, Any]) -> Path:
    """Every episode of every seed a trial trained (finished or stopped) as one CSV: seed, episode (1-based),
    steps, epsilon, loss (empty before the first update). One artifact per trial instead of ~3 metric points per
    episode: logging those to an SQLite store took a quarter of a racing sweep's wall time."""
    lines = [",".join(CURVE_COLUMNS)]
    for seed, curve in curves.items():
        for episode, (steps, epsilon, loss) in enumerate(zip(curve.steps, curve.epsilon, curve.loss, strict=True), 1):
            loss_text = repr(float(loss)) if np.isfinite(loss) else ""
            lines.append(f"{seed},{episode},{steps},{float(epsilon)!r},{loss_text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_curves_csv(path: Path) -> pd.DataFrame:
    """A `write_curves_csv` file as one row per episode, columns CURVE_COLUMNS: seed and episode whole numbers,
    steps, epsilon and loss floats (loss NaN before the first update)."""
    import pandas as pd

    table = pd.read_csv(path)
    return table.astype({"seed": int, "episode": int, "steps": float, "epsilon": float, "loss": float})


def read_curve_steps(path: Path) -> dict[int, list[int]]:
    """Steps per episode by seed (seeds in file order), from a `write_curves_csv` file."""
    table = read_curves_csv(path)
    return {int(seed): [int(s) for s in group["steps"]] for seed, group in table.groupby("seed", sort=False)}


def write_learning_curve(
    path: Path, steps_per_seed: Mapping[int, Sequence[int]], *, threshold: int | None, title: str
) -> Path:
    """The learning-curve PNG of `learning_curve_figure`: the picture people look at first."""
    import matplotlib.pyplot as plt

    fig = learning_curve_figure(steps_per_seed, threshold=threshold, title=title)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def learning_curve_figure(steps_per_seed: Mapping[int, Sequence[int]], *, threshold: int | None, title: str) -> Figure:
    """Steps per episode: the median over the seeds still playing that episode (solved seeds stop early, as in
    MLflow's `steps_median` chart) with their interquartile band, every seed as a thin line in one colour, and the
    success threshold where it is a length (CartPole). A best trial has up to 16 seeds or more: one legend entry and
    one colour per seed ran off the figure, covered the curves and repeated colours after ten."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [np.asarray(steps, dtype=float) for steps in steps_per_seed.values() if len(steps)]
    length = max((len(run) for run in runs), default=0)
    table = np.full((len(runs), length), np.nan)  # seed x episode; NaN once a seed has stopped
    for row, run in zip(table, runs, strict=True):
        row[: len(run)] = run
    episodes = np.arange(1, length + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=80)
    for run in runs:
        ax.plot(episodes[: len(run)], run, color="tab:blue", alpha=0.25, lw=0.6)
    if runs:
        low, median, high = np.nanpercentile(table, [25, 50, 75], axis=0)
        ax.fill_between(episodes, low, high, color="tab:blue", alpha=0.2, lw=0, label="middle half of the seeds")
        ax.plot(episodes, median, color="tab:blue", lw=2, label=f"median of {len(runs)} seeds (thin: each seed)")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"success ({threshold})")
    ax.set(xlabel="episode", ylabel="steps", title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small", framealpha=0.8)
    fig.tight_layout()
    return fig


def write_episode_gif(path: Path, agent: TrainedAgent, *, seed: int = 0, scale: float = 0.5, fps: int = 25) -> int:
    """Render one greedy episode headless (gymnasium's rgb_array) to a looping GIF; returns the episode length.

    Frames are halved in size and every second one is kept (CartPole renders at 50 fps): a 200-step episode
    becomes a ~1 MB, 4-second GIF instead of a 20 MB one.
    """
    from PIL import Image

    play = agent.play(seed=seed, render=True)
    keep = play.frames[:: max(1, round(50 / fps))]
    images = []
    for frame in keep:
        image = Image.fromarray(frame)
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        images.append(image.resize(size, Image.Resampling.BILINEAR).quantize(colors=32))
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return play.steps
