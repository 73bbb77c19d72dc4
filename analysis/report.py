"""The study report: one self-contained HTML file (every image inline, no scripts, no external URL).

Sections: the verdict (winner vs book on unseen seeds) first, then a summary, where the seed budget went,
optimization history, parameter importances (with each parameter's effect and its CI from every run, see
`analysis.knob_effects`), parallel coordinates, parameter effects, top configurations compared
with the best seed by seed and the book beside them, learning curves, held-out validation, and the best agent's
greedy episode.

Analysis only reads the stores: `build_report` writes the file and nothing else. Logging it to the study's MLflow
parent run is the command's job (`sweeps.tracking.report_log.log_report`).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, plots
from analysis.knob_effects import METHOD, effects_sentence, knob_effects
from analysis.load import StudyData
from analysis.validate import held_out_table
from analysis.verdict import NO_VERDICT, effect_table, recorded_verdict, verdict_table
from sweeps.stores.locations import redact
from sweeps.study.schema import (
    ATTR_BASE_CONFIG,
    ATTR_SEEDS,
    HELD_OUT_SEED_START,
    TRIAL_RUN_ID,
    base_config,
    recorded,
)
from sweeps.study.stats import MIN_SEEDS_FOR_CI

SECTIONS = (
    ("verdict", "Verdict"),
    ("summary", "Summary"),
    ("budget", "Budget"),
    ("history", "Optimization history"),
    ("importances", "Parameter importances"),
    ("parallel", "Parallel coordinates"),
    ("effects", "Parameter effects"),
    ("top", "Top configurations"),
    ("curves", "Learning curves"),
    ("holdout", "Held-out validation"),
    ("agent", "Best agent"),
)

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .5em}
th{background:#f4f4f4} img{max-width:100%} .note{color:#666;font-size:.9em}
.table{max-width:100%;overflow-x:auto}
"""
# .table: every table sits in its own box that scrolls sideways when it is wider than the page (many parameters,
# many seeds), so the page itself never does.


@dataclass(frozen=True)
class _Context:
    """What several sections share, computed once."""

    data: StudyData
    top: pd.DataFrame  # compare.top_configurations: the k best complete trials and the book

    def label(self, trial: int, baseline: bool) -> str:
        return f"trial {trial}" + (" (book)" if baseline else "")


def build_report(data: StudyData, out: Path, *, top: int = 5) -> Path:
    """Write the report to `out` and return the path (nothing is written to the study's stores)."""
    ctx = _Context(data=data, top=compare.top_configurations(data.trials, k=top))
    body = [f"<h1>dqn-sweep report: {html.escape(data.name)}</h1>"]
    body.append(_nav())
    for section_id, title in SECTIONS:
        body.append(f'<h2 id="{section_id}">{html.escape(title)}</h2>')
        body.append(_SECTION_BUILDERS[section_id](ctx))
    document = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>dqn-sweep: {html.escape(data.name)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return out


def _nav() -> str:
    links = " · ".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title in SECTIONS)
    return f"<p>{links}</p>"


def _table(frame: pd.DataFrame, *, floats: str = "{:.4g}") -> str:
    if frame.empty:
        return '<p class="note">nothing to show</p>'
    table = frame.to_html(index=False, border=0, float_format=floats.format, na_rep="-", escape=True)
    return f'<div class="table">{table}</div>'


def _image(uri: str | None, alt: str, missing: str) -> str:
    if uri is None:
        return f'<p class="note">{html.escape(missing)}</p>'
    return f'<img alt="{html.escape(alt)}" src="{uri}">'


def _verdict(ctx: _Context) -> str:
    verdict = recorded_verdict(ctx.data.study)
    if verdict is None:
        return f'<p class="note">{html.escape(NO_VERDICT)}</p>'
    seeds = verdict.seeds
    span = f"seeds {seeds[0]}..{seeds[-1]}" if seeds else "unseen seeds"
    alpha = "" if verdict.alpha is None else f" at alpha {verdict.alpha:g}"
    effects = effect_table(verdict)
    return (
        f'<p class="verdict"><strong>{html.escape(verdict.line)}</strong></p>'
        + _table(verdict_table(verdict, ctx.data.study))
        + ("" if effects is None else _table(effects))
        + f'<p class="note">The sweep\'s winner and the book retrained on {html.escape(span)}, which no trial '
        f"trained on: the sweep's own values are biased by selection, these are not. Median and bootstrap 95% CI "
        f"of episodes to solve; paired Wilcoxon signed-rank test over the same seeds{html.escape(alpha)}. "
        "The ratio is the Hodges-Lehmann estimate from the per-seed log ratios with its signed-rank CI (a seed "
        "that did not solve counts at the cap, which pulls the ratio towards 1; seeds censored in both are left "
        "out); equivalence is two one-sided tests at 0.05; power from the spread of the log ratios. When the "
        "book won, the runner-up is compared with it.</p>"
    )


def _summary(ctx: _Context) -> str:
    data = ctx.data
    study = data.study
    counts = compare.state_counts(data.trials)
    seeds = recorded(study, ATTR_SEEDS, [])
    base = recorded(study, ATTR_BASE_CONFIG, {})
    best = None if ctx.top.empty else ctx.top.iloc[0]
    rows = [
        ("trials", ", ".join(f"{n} {state.lower()}" for state, n in counts.items())),
        ("seeds per trial", _seeds_text(seeds)),
        ("objective", "episodes to five consecutive successes, median over seeds (lower is better)"),
        ("best", "no complete trial" if best is None else f"trial {int(best['trial'])}: {best['value']:g}"),
        ("environment", str(base.get("env_id", "?"))),
        ("max episodes", f"{data.max_episodes or '?'} (an unsolved seed counts as max + 1)"),
        ("MLflow store", redact(data.tracking_uri)),
        ("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<div class="table"><table>{cells}</table></div>'


def _seeds_text(seeds: list[int]) -> str:
    if not seeds:
        return "?"
    return f"{len(seeds)} (seeds {seeds[0]}..{seeds[-1]}, in this order); pruned trials stopped earlier (see Budget)"


def _budget(ctx: _Context) -> str:
    trials = ctx.data.trials
    figure = plots.budget_figure(trials)
    return (
        _image(figure and plots.to_data_uri(figure), "where the budget went", "no trial finished a seed yet")
        + _table(compare.budget_table(trials, ctx.data.episodes), floats="{:.3g}")
        + '<p class="note">Trials race seeds 0, 1, 2, ...; the pruner stops a trial once it is worse than the best '
        "over their common seeds, so a trial's cost is the number of seeds it trained. seeds_finished: seeds whose "
        "result the trial recorded (its median is over these); seeds_stopped: seeds still training when their trial "
        "was pruned (or failed), cut short and never recorded in Optuna, counted from the trials' per-episode "
        "curves in MLflow; seeds_trained: both, the (trial, seed) runs the sweep's summary line counts. In the "
        "figure, pruned trials are hollow: their medians are over the few seeds they finished, so they are noisy, "
        "and the pruner judged each trial seed by seed against the best, not by that median.</p>"
    )


def _history(ctx: _Context) -> str:
    figure = plots.history_figure(ctx.data.study)
    return _image(figure and plots.to_data_uri(figure), "optimization history", "no complete trial yet") + (
        '<p class="note">Every finished trial in the order it was asked: complete trials filled, pruned trials '
        "hollow at the median of the seeds they finished (fewer seeds, so noisier); the line is the best complete "
        "trial so far.</p>"
    )


def _importances(ctx: _Context) -> str:
    figure = plots.importance_figure(ctx.data.study)
    values = compare.importances(ctx.data.study)
    table = _table(values.map(_share_text).rename_axis("parameter").reset_index()) if values is not None else ""
    image = _image(
        figure and plots.to_data_uri(figure),
        "parameter importances",
        "importances need at least two complete trials with varied parameters",
    )
    return (
        image + table + '<p class="note">fANOVA (optuna.importance) over complete trials only.</p>' + _knob_effects(ctx)
    )


def _share_text(share: float) -> str:
    """An importance to three decimals, "0" below their reach: fANOVA gives a parameter without effect shares such
    as 1.017e-31, which read like a measurement."""
    return "0" if round(share, 3) == 0 else f"{share:.3f}"


def _knob_effects(ctx: _Context) -> str:
    """Beside fANOVA's shares, each parameter's effect with a CI from every run, so a flat result has a size."""
    effects = knob_effects(ctx.data.study, ctx.data.trials)
    skipped = "".join(f"<li>{html.escape(f'{name}: {why}')}</li>" for name, why in sorted(effects.skipped.items()))
    return (
        "<h3>Each parameter's effect, from every (trial, seed) run</h3>"
        + f'<p class="knob-effects"><strong>{html.escape(effects_sentence(effects))}</strong></p>'
        + ("" if effects.table.empty else _table(effects.table, floats="{:.3g}"))
        + (f"<p>Not estimated:</p><ul>{skipped}</ul>" if skipped else "")
        + f'<p class="note">{html.escape(METHOD)} {effects.runs} runs of {effects.trials} trials on '
        f"{effects.seeds} seeds.</p>"
    )


def _parallel(ctx: _Context) -> str:
    figure = plots.parallel_figure(ctx.data.study)
    return _image(figure and plots.to_data_uri(figure), "parallel coordinates", "no complete trial yet")


def _effects(ctx: _Context) -> str:
    log_params = compare.log_scale_params(ctx.data.study)
    effects = compare.all_param_effects(ctx.data.trials, log_params=log_params)
    log_note = (
        f" ({', '.join(sorted(log_params))}: on the log of their values, as they were sampled)" if log_params else ""
    )
    return (
        _table(effects)
        + f'<p class="note">Complete trials only; numeric parameters in quantile bins{html.escape(log_note)}, '
        "labelled with the values at their edges. median and IQR (q25-q75) of the trial values.</p>"
    )


def _top(ctx: _Context) -> str:
    """Three narrow tables instead of one too wide for the page: the comparison, the parameters (one column per
    configuration) and the episodes to solve seed by seed."""
    table = ctx.top
    if table.empty:
        return '<p class="note">no complete trial yet</p>'
    labels = [ctx.label(int(r.trial), r.baseline) for r in table.itertuples()]
    columns = ["rank", "value", "seeds", "ci_95", "common_seeds", "paired_difference", "paired_p"]
    comparison = table[columns].assign(config=labels)[["config", *columns]]
    params = [c for c in table.columns if c.startswith("params.")]
    values = table[params].map(_param_text).set_axis(labels).T
    values = values.set_axis([c.removeprefix("params.") for c in params]).rename_axis("parameter").reset_index()
    per_seed = compare.per_seed_table(dict(zip(labels, table["per_seed"], strict=True)), ctx.data.max_episodes)
    verdicts = [
        f"{label} is {r.vs_best}" for label, r in zip(labels, table.itertuples(), strict=True) if r.vs_best != "best"
    ]
    notes = "".join(f"<li>{html.escape(v)}</li>" for v in verdicts)
    return (
        _table(comparison)
        + f"<ul>{notes}</ul>"
        + f'<p class="note">value: median episodes to solve over the trial\'s seeds. ci_95: bootstrap 95% interval '
        f"of that median, shown from {MIN_SEEDS_FOR_CI} seeds on. Each row is compared with the best trial seed by "
        "seed over the seeds both trained (common_seeds): paired_difference is the median of row minus best (above "
        "zero: slower), paired_p a two-sided Wilcoxon signed-rank test; 'worse' or 'better' means p &lt; "
        f"{compare.ALPHA:g}, the verdict's level, uncorrected for comparing several rows, and these are the seeds "
        "the sweep selected on (see Verdict for unseen seeds).</p>"
        + "<h3>Parameters</h3>"
        + _table(values)
        + "<h3>Episodes to solve on each seed</h3>"
        + _table(per_seed.rename_axis("config").reset_index())
        + '<p class="note">'
        + html.escape(
            f">{ctx.data.max_episodes}: the seed never solved (it counts as {ctx.data.max_episodes} + 1); "
            if ctx.data.max_episodes
            else ""
        )
        + "-: the trial did not train that seed.</p>"
    )


def _param_text(value: object) -> str:
    """A parameter as the sweep would write it: floats to 4 significant digits, "-" where a trial lacks it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _curves(ctx: _Context) -> str:
    data, table = ctx.data, ctx.top
    if table.empty:
        return '<p class="note">no complete trial yet</p>'
    chosen = [int(t) for t in table["trial"]]
    labels = {int(r.trial): ctx.label(int(r.trial), r.baseline) for r in table.itertuples()}
    curves = compare.learning_curves(data.episodes, chosen)
    # The curves are episode lengths: the success threshold is drawn where a return is one.
    base = base_config(data.study) if recorded(data.study, ATTR_BASE_CONFIG) else None
    threshold = base.success_threshold if base is not None and base.env.return_is_length else None
    figure = plots.curves_figure(curves, labels, threshold)
    return _image(figure and plots.to_data_uri(figure), "learning curves", "no per-episode curves in MLflow")


def _holdout(ctx: _Context) -> str:
    data = ctx.data
    table = held_out_table(data)
    if table.empty:
        return (
            '<p class="note">No held-out validation yet: run '
            f"<code>dqn-sweep validate --study {html.escape(data.name)} --top 3 --seeds 32</code>.</p>"
        )
    return _table(table) + (
        f'<p class="note">Held-out seeds start at {HELD_OUT_SEED_START}; the sweep used seeds 0..n-1. A held-out '
        "median well above the in-sweep value is the winner's curse: the sweep picked a lucky configuration. "
        "vs_book_p: paired Wilcoxon signed-rank p against the book over the same held-out seeds, as "
        "<code>dqn-sweep validate</code> printed it.</p>"
    )


def _agent(ctx: _Context) -> str:
    data, table = ctx.data, ctx.top
    if table.empty:
        return '<p class="note">no complete trial yet</p>'
    number = int(table.iloc[0]["trial"])
    run_id = data.study.trials[number].user_attrs.get(TRIAL_RUN_ID)
    if run_id:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = Path(data.client.download_artifacts(run_id, "greedy_episode.gif", folder))
                uri = "data:image/gif;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
                return f'<p>Trial {number}, one greedy episode:</p><img alt="greedy episode" src="{uri}">'
            except Exception:
                pass
    return f'<p class="note">No GIF logged yet: run <code>dqn-sweep replay --trial {number}</code>.</p>'


_SECTION_BUILDERS = {
    "verdict": _verdict,
    "summary": _summary,
    "budget": _budget,
    "history": _history,
    "importances": _importances,
    "parallel": _parallel,
    "effects": _effects,
    "top": _top,
    "curves": _curves,
    "holdout": _holdout,
    "agent": _agent,
}
