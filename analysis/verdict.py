"""The study's verdict as `dqn-sweep run` recorded it (study user attribute `verdict`), read back for reports.

The verdict is the sweep's one claim that is not biased by selection: the winner and the book retrained on seeds no
trial saw, compared seed by seed. Analysis only shows it; it never recomputes or rewrites it (that trains agents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from sweeps.study.schema import ATTR_VERDICT, is_baseline

NO_VERDICT = (
    "no verdict recorded: the study predates verdicts, was run with --no-validate, or its run stopped before the "
    "end. `dqn-sweep run` computes one when a sweep ends (winner vs book on unseen seeds) unless --no-validate."
)


@dataclass(frozen=True)
class RecordedVerdict:
    """The stored verdict; fields a study does not have are None (or empty), never guessed."""

    line: str
    outcome: str | None
    winner_trial: int | None
    seeds: tuple[int, ...]
    winner_values: dict[int, float]
    book_values: dict[int, float]
    winner_median: float | None
    winner_ci: tuple[float, float] | None
    book_median: float | None
    book_ci: tuple[float, float] | None
    p_value: float | None
    alpha: float | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedVerdict:
        return cls(
            line=str(data.get("line", "")),
            outcome=data.get("outcome"),
            winner_trial=_int(data.get("winner_trial")),
            seeds=tuple(int(s) for s in data.get("seeds") or ()),
            winner_values=_by_seed(data.get("winner_values")),
            book_values=_by_seed(data.get("book_values")),
            winner_median=_float(data.get("winner_median")),
            winner_ci=_interval(data.get("winner_ci")),
            book_median=_float(data.get("book_median")),
            book_ci=_interval(data.get("book_ci")),
            p_value=_float(data.get("p_value")),
            alpha=_float(data.get("alpha")),
        )


def recorded_verdict(study: optuna.Study) -> RecordedVerdict | None:
    """The study's latest verdict, or None when it has none."""
    data = study.user_attrs.get(ATTR_VERDICT)
    if not isinstance(data, Mapping) or not data:
        return None
    return RecordedVerdict.from_dict(data)


def verdict_table(verdict: RecordedVerdict, study: optuna.Study | None = None) -> pd.DataFrame:
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


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _interval(value: Any) -> tuple[float, float] | None:
    if not value or len(value) != 2 or any(v is None for v in value):
        return None
    return float(value[0]), float(value[1])


def _by_seed(values: Any) -> dict[int, float]:
    return {int(seed): float(v) for seed, v in (values or {}).items()}
