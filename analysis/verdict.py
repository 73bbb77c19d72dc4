"""The study's verdict as `dqn-sweep run` recorded it (`sweeps.study.verdict_record.Verdict`), shown in reports.

The verdict is the sweep's one claim that is not biased by selection: the winner and the book retrained on seeds no
trial saw, compared seed by seed. Analysis only shows it; it never recomputes or rewrites it (that trains agents).
"""

from __future__ import annotations

import math

import optuna
import pandas as pd

from sweeps.study.schema import is_baseline
from sweeps.study.stats import aggregate, bootstrap_ci
from sweeps.study.verdict_record import Verdict

NO_VERDICT = (
    "no verdict recorded: the study predates verdicts, was run with --no-validate, or its run stopped before the "
    "end. `dqn-sweep run` computes one when a sweep ends (winner vs book on unseen seeds) unless --no-validate."
)


def recorded_verdict(study: optuna.Study) -> Verdict | None:
    """The study's latest verdict, or None when it has none."""
    return Verdict.of_study(study)


def verdict_table(verdict: Verdict, study: optuna.Study | None = None) -> pd.DataFrame:
    """Winner and book side by side (and the runner-up when the book won): median, 95% CI and seeds on the unseen
    seeds, and the paired p-value on the row of the configuration compared with the book."""
    book_trial = None
    if study is not None:
        book_trial = next((t.number for t in study.get_trials(deepcopy=False) if is_baseline(t)), None)
    rows = [
        ("winner", verdict.winner_trial, verdict.winner_median, verdict.winner_ci, verdict.winner_values),
        ("book", book_trial, verdict.book_median, verdict.book_ci, verdict.book_values),
    ]
    if verdict.runner_up_values:
        values = list(verdict.runner_up_values.values())
        rows.append(("runner-up", verdict.compared_trial, aggregate(values), bootstrap_ci(values), values))
    compared = "runner-up" if verdict.winner_is_book else "winner"
    return pd.DataFrame(
        [
            {
                "config": label,
                "trial": "-" if trial is None else str(trial),
                "median": median,
                "95% CI": "-" if ci is None else f"{ci[0]:.4g}-{ci[1]:.4g}",
                "seeds": len(values) or len(verdict.seeds),
                "paired p": _p_text(verdict.p_value) if label == compared else "",
            }
            for label, trial, median, ci, values in rows
        ]
    )


def effect_table(verdict: Verdict) -> pd.DataFrame | None:
    """What the comparison with the book means, one row per number (None for a record from before effects):
    the ratio and its CIs, the test, equivalence and power."""
    effect = verdict.effect
    if effect is None:
        return None
    who = "runner-up" if verdict.winner_is_book else "winner"
    rows = [
        ("compared", f"{who} (trial {verdict.compared_trial}) / book, paired by seed"),
        ("seeds compared", f"{effect.n} (left out, censored at {effect.cap:g} in both: {effect.censored_in_both})"),
        ("ratio of episodes to solve (Hodges-Lehmann)", _ratio(effect.ratio)),
        ("95% CI of the ratio", _ci(effect.ci95)),
        ("paired Wilcoxon p (two-sided)", _p_text(None if not effect.n else effect.p_value)),
        (f"equivalence (TOST): 90% CI within ±{effect.margin:.0%}", _ci(effect.ci90)),
        ("smallest change detected at 80% power (alpha 0.01)", _percent(effect.detectable_change)),
        ("seeds to detect a 10% / 20% change", f"{effect.seeds_for_10 or '-'} / {effect.seeds_for_20 or '-'}"),
        ("verdict", effect.phrase),
    ]
    return pd.DataFrame(rows, columns=["", "value"])


def _ratio(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"


def _ci(ci: tuple[float, float]) -> str:
    return "-" if not all(math.isfinite(v) for v in ci) else f"{ci[0]:.3f}-{ci[1]:.3f}"


def _percent(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.0%}"


def _p_text(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"
