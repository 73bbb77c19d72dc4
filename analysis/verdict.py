"""The study's verdict as `dqn-sweep run` recorded it (`sweeps.study.verdict_record.Verdict`), shown in reports.

The verdict is the sweep's one claim that is not biased by selection: the winner and the book retrained on seeds no
trial saw, compared seed by seed. Analysis only shows it; it never recomputes or rewrites it (that trains agents).
"""

from __future__ import annotations

import optuna
import pandas as pd

from sweeps.study.schema import is_baseline
from sweeps.study.verdict_record import Verdict

NO_VERDICT = (
    "no verdict recorded: the study predates verdicts, was run with --no-validate, or its run stopped before the "
    "end. `dqn-sweep run` computes one when a sweep ends (winner vs book on unseen seeds) unless --no-validate."
)


def recorded_verdict(study: optuna.Study) -> Verdict | None:
    """The study's latest verdict, or None when it has none."""
    return Verdict.of_study(study)


def verdict_table(verdict: Verdict, study: optuna.Study | None = None) -> pd.DataFrame:
    """Winner and book side by side: median, 95% CI and seeds on the unseen seeds, and the paired p-value (on the
    winner's row: one test compares the two)."""
    book_trial = None
    if study is not None:
        book_trial = next((t.number for t in study.get_trials(deepcopy=False) if is_baseline(t)), None)
    rows = [
        ("winner", verdict.winner_trial, verdict.winner_median, verdict.winner_ci, verdict.winner_values),
        ("book", book_trial, verdict.book_median, verdict.book_ci, verdict.book_values),
    ]
    return pd.DataFrame(
        [
            {
                "config": label,
                "trial": "-" if trial is None else str(trial),
                "median": median,
                "95% CI": "-" if ci is None else f"{ci[0]:.4g}-{ci[1]:.4g}",
                "seeds": len(values) or len(verdict.seeds),
                "paired p": _p_text(verdict.p_value) if label == "winner" else "",
            }
            for label, trial, median, ci, values in rows
        ]
    )


def _p_text(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"
