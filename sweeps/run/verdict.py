"""The verdict that ends a sweep: its winner and the book, trained on seeds no trial saw, paired by seed.

A sweep's best value is the minimum of noisy estimates on the seeds it was selected on, so it is biased low. The
verdict trains both configurations again on fresh seeds (10000, 10001, ...), all in one population, and asks a
paired Wilcoxon signed-rank test whether the difference is real. It says "better" or "worse" only at p < 0.01
(two-sided), so that what it says holds up on other unseen seeds; anything else is "not distinguishable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import optuna

from dqn_core.config import TrainConfig
from dqn_core.shape import StreamShape
from sweeps.study.existing import best_trial
from sweeps.study.objective import censored_value
from sweeps.study.schema import book_config, held_out_seeds, trial_config
from sweeps.study.stats import aggregate, bootstrap_ci, paired_test
from sweeps.study.verdict_record import Verdict

VERDICT_ALPHA = 0.01


def judge(
    winner_trial: int,
    seeds: Sequence[int],
    winner_values: Mapping[int, float],
    book_values: Mapping[int, float],
    *,
    winner_is_book: bool = False,
    alpha: float = VERDICT_ALPHA,
) -> Verdict:
    """The verdict on the winner's and the book's values on the unseen seeds: medians, 95% CIs, the paired test
    and its outcome, and the line that says it all."""
    winner_median, book_median = aggregate(list(winner_values.values())), aggregate(list(book_values.values()))
    winner_ci, book_ci = bootstrap_ci(list(winner_values.values())), bootstrap_ci(list(book_values.values()))
    paired = None if winner_is_book else paired_test(winner_values, book_values)
    p_value = paired.p_value if paired else None
    if winner_is_book:
        outcome = "book won"
    elif p_value is None or p_value >= alpha:
        outcome = "not distinguishable"
    else:
        lower = paired.median_difference < 0 if paired.median_difference else winner_median < book_median
        outcome = "better" if lower else "worse"
    book = f"{_num(book_median)} ({_interval(book_ci)})"
    where = f"on {len(seeds)} unseen seeds"
    if winner_is_book:
        line = f"winner trial {winner_trial} is the book's configuration: median {book} {where}"
    else:
        winner = f"median {_num(winner_median)} (95% CI {_interval(winner_ci)})"
        test = f"paired Wilcoxon p={_p(p_value)}: {outcome}"
        line = f"winner trial {winner_trial}: {winner} vs book {book} {where}; {test}"
    return Verdict(
        line=line,
        outcome=outcome,
        winner_trial=winner_trial,
        seeds=tuple(seeds),
        winner_values=dict(winner_values),
        book_values=dict(book_values),
        winner_median=winner_median,
        winner_ci=winner_ci,
        book_median=book_median,
        book_ci=book_ci,
        p_value=p_value,
        alpha=alpha,
        winner_is_book=winner_is_book,
    )


def held_out_values(
    configs: Sequence[TrainConfig], seeds: Sequence[int], *, shape: StreamShape | None = None
) -> list[dict[int, float]]:
    """Train every config on every seed, all as one population; per config {seed: episodes to solve}."""
    from dqn_core.trainer import train_population

    results = train_population([(config, seed) for config in configs for seed in seeds], shape=shape)
    out = []
    for index, config in enumerate(configs):
        mine = results[index * len(seeds) : (index + 1) * len(seeds)]
        out.append(
            {
                seed: float(censored_value(r.episodes_to_solve, config.max_episodes))
                for seed, r in zip(seeds, mine, strict=True)
            }
        )
    return out


def decide(study: optuna.Study, n_seeds: int, *, shape: StreamShape | None = None) -> Verdict | None:
    """The verdict on the study's current winner (None without a complete trial), recorded in the study. The values
    of a verdict the study already holds for the same winner and seeds are reused: training is deterministic, so
    they would come out the same (the statistics and the line are worked out again from them, untrained)."""
    best = best_trial(study)
    if best is None or n_seeds < 1:
        return None
    seeds = tuple(held_out_seeds(n_seeds))
    stored = Verdict.of_study(study)
    if stored and stored.winner_trial == best.number and stored.seeds == seeds:
        return judge(
            best.number,
            seeds,
            stored.winner_values,
            stored.book_values,
            winner_is_book=stored.winner_is_book,
            alpha=VERDICT_ALPHA if stored.alpha is None else stored.alpha,
        )
    book = book_config(study)
    winner = trial_config(study, best)
    if winner == book:  # by config: a baseline trial whose space could not hold a book value is not the book
        (values,) = held_out_values([book], seeds, shape=shape)
        verdict = judge(best.number, seeds, values, values, winner_is_book=True)
    else:
        winner_values, book_values = held_out_values([winner, book], seeds, shape=shape)
        verdict = judge(best.number, seeds, winner_values, book_values)
    verdict.store(study)
    return verdict


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if np.isfinite(value) else "n/a"


def _interval(ci: tuple[float, float]) -> str:
    return f"{_num(ci[0])}-{_num(ci[1])}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
