"""The verdict that ends a sweep: its winner and the book, trained on seeds no trial saw, paired by seed.

A sweep's best value is the minimum of noisy estimates on the seeds it was selected on, so it is biased low. The
verdict trains both configurations again on fresh seeds (10000, 10001, ...), all in one population, and compares
them seed by seed (`sweeps.study.effect`): the ratio of episodes to solve with its 95% CI, the paired Wilcoxon p,
an equivalence test against a margin and the test's power. It ends in one of four words: "better" or "worse" only
at p < 0.01 (two-sided), so that what it says holds up on other unseen seeds; "equivalent within ±10%" when the 90%
CI of the ratio lies inside the margin; otherwise "inconclusive", with the seeds that would decide it. When the
book itself wins, the runner-up (the best complete trial that is not the book's configuration) is compared with
the book instead, so that a book win still says whether anything in the space came close.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import optuna

from dqn_core.config import TrainConfig
from dqn_core.lanes import MAX_LANES, plan_lanes
from dqn_core.memory import process_limits, slots_that_fit, tightest
from dqn_core.shape import StreamShape
from sweeps.study.effect import ALPHA, DEFAULT_MARGIN, Effect, compare
from sweeps.study.existing import ranked_complete_trials
from sweeps.study.objective import censored_value
from sweeps.study.schema import book_config, held_out_seeds, trial_config
from sweeps.study.stats import aggregate, bootstrap_ci
from sweeps.study.verdict_record import Verdict

VERDICT_ALPHA = ALPHA


def judge(
    winner_trial: int,
    seeds: Sequence[int],
    winner_values: Mapping[int, float],
    book_values: Mapping[int, float],
    *,
    cap: float,
    margin: float = DEFAULT_MARGIN,
    winner_is_book: bool = False,
    runner_up: tuple[int, Mapping[int, float]] | None = None,
) -> Verdict:
    """The verdict on the winner's and the book's values on the unseen seeds (and the runner-up's when the book
    won): medians, 95% CIs, the paired comparison and the line that says it all. `cap`: the censored value."""
    winner_median, book_median = aggregate(list(winner_values.values())), aggregate(list(book_values.values()))
    winner_ci, book_ci = bootstrap_ci(list(winner_values.values())), bootstrap_ci(list(book_values.values()))
    compared: tuple[int, Mapping[int, float]] | None = runner_up if winner_is_book else (winner_trial, winner_values)
    effect = None if compared is None else compare(compared[1], book_values, cap=cap, margin=margin)
    book = f"{_num(book_median)} ({_interval(book_ci)})"
    where = f"on {len(seeds)} unseen seeds"
    if winner_is_book:
        line = f"winner trial {winner_trial} is the book's configuration: median {book} {where}; "
        if compared is None:
            line += "no other configuration finished every seed: inconclusive"
        else:
            line += f"runner-up trial {compared[0]} vs book: {_comparison(effect)}"
    else:
        winner = f"median {_num(winner_median)} (95% CI {_interval(winner_ci)})"
        line = f"winner trial {winner_trial}: {winner} vs book {book} {where}; {_comparison(effect)}"
    return Verdict(
        line=line,
        outcome=effect.word if effect else "inconclusive",
        winner_trial=winner_trial,
        seeds=tuple(seeds),
        winner_values=dict(winner_values),
        book_values=dict(book_values),
        winner_median=winner_median,
        winner_ci=winner_ci,
        book_median=book_median,
        book_ci=book_ci,
        p_value=effect.p_value if effect and effect.n else None,
        alpha=VERDICT_ALPHA,
        winner_is_book=winner_is_book,
        compared_trial=compared[0] if compared else None,
        runner_up_values=dict(runner_up[1]) if winner_is_book and runner_up else {},
        effect=effect,
    )


def _comparison(effect: Effect) -> str:
    """`ratio 0.93 (95% CI 0.85-1.02), paired Wilcoxon p=0.29: inconclusive: ...`, or why nothing compares."""
    if not effect.n:
        return effect.phrase
    ratio = f"ratio {effect.ratio:.2f} (95% CI {effect.ci95[0]:.2f}-{effect.ci95[1]:.2f})"
    return f"{ratio}, paired Wilcoxon p={_p(effect.p_value)}: {effect.phrase}"


def held_out_values(
    configs: Sequence[TrainConfig],
    seeds: Sequence[int],
    *,
    shape: StreamShape | Sequence[StreamShape] | None = None,
    check_stop: Callable[[], None] | None = None,
) -> list[dict[int, float]]:
    """Train every config on every seed, as one population or a stream of as many slots as fit in memory
    (`held_out_population`; the same results either way); per config {seed: episodes to solve}.
    `check_stop` runs at every finished episode and may raise to end the training (a stop signal)."""
    from dqn_core.trainer import train_population

    hook = None if check_stop is None else (lambda agent, stats: check_stop())
    members = [(config, seed) for config in configs for seed in seeds]
    lanes, slots = held_out_population(configs, len(seeds), shape=shape)
    results = train_population(members, shape=lanes, slots=slots, on_episode=hook)
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


def held_out_population(
    configs: Sequence[TrainConfig], n_seeds: int, *, shape: StreamShape | Sequence[StreamShape] | None = None
) -> tuple[StreamShape | tuple[StreamShape, ...], int]:
    """The compiled shape or lanes (the given ones, else a lane per compute shape among the configs:
    `dqn_core.lanes`) and the slot count that train every config on `n_seeds` seeds: every agent at once, or as
    many at a time as fit under this process's memory limit (`dqn_core.memory`); a one-line ConfigError when not
    even the smallest population fits. Checked before anything is trained or logged. Lanes hold the agents a
    covering shape would, so the covering shape's estimate stands for them."""
    covering = StreamShape.covering(configs)
    estimate = shape if isinstance(shape, StreamShape) else covering
    slots = slots_that_fit(estimate, len(configs) * n_seeds, limit=tightest(process_limits()))
    if isinstance(shape, StreamShape):
        return shape, slots
    lanes = tuple(shape) if shape is not None else plan_lanes(configs, cap=min(MAX_LANES, slots)).shapes
    return (lanes if slots >= len(lanes) else covering), slots


def decide(
    study: optuna.Study,
    n_seeds: int,
    *,
    margin: float = DEFAULT_MARGIN,
    shape: StreamShape | None = None,
    check_stop: Callable[[], None] | None = None,
) -> Verdict | None:
    """The verdict on the study's current winner (None without a complete trial), recorded in the study. Values a
    verdict the study already holds for the same configurations and seeds are reused: training is deterministic,
    so they would come out the same (the statistics and the line are worked out again from them, untrained).
    `check_stop` may end the training (a stop signal); nothing is recorded then."""
    ranked = ranked_complete_trials(study)
    if not ranked or n_seeds < 1:
        return None
    best, seeds = ranked[0], tuple(held_out_seeds(n_seeds))
    book = book_config(study)
    winner_is_book = trial_config(study, best) == book  # by config: a baseline trial whose space could not hold a
    # book value is not the book
    runner = next((t for t in ranked[1:] if trial_config(study, t) != book), None) if winner_is_book else None
    wanted: dict[str, TrainConfig] = {"book": book}
    if not winner_is_book:
        wanted["winner"] = trial_config(study, best)
    if runner is not None:
        wanted["runner_up"] = trial_config(study, runner)
    values = _recorded_values(Verdict.of_study(study), best.number, runner, seeds)
    missing = [name for name in wanted if name not in values]
    if missing:
        trained = held_out_values([wanted[name] for name in missing], seeds, shape=shape, check_stop=check_stop)
        values |= dict(zip(missing, trained, strict=True))
    verdict = judge(
        best.number,
        seeds,
        values["book"] if winner_is_book else values["winner"],
        values["book"],
        cap=min(float(censored_value(None, config.max_episodes)) for config in wanted.values()),
        margin=margin,
        winner_is_book=winner_is_book,
        runner_up=None if runner is None else (runner.number, values["runner_up"]),
    )
    verdict.store(study)
    return verdict


def _recorded_values(
    stored: Verdict | None, winner: int, runner: optuna.trial.FrozenTrial | None, seeds: tuple[int, ...]
) -> dict[str, dict[int, float]]:
    """What the study's recorded verdict already trained for these trials on these seeds."""
    if stored is None or stored.winner_trial != winner or stored.seeds != seeds:
        return {}
    values = {"book": stored.book_values}
    if not stored.winner_is_book:
        values["winner"] = stored.winner_values
    if runner is not None and stored.compared_trial == runner.number and stored.runner_up_values:
        values["runner_up"] = stored.runner_up_values
    return values


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if np.isfinite(value) else "n/a"


def _interval(ci: tuple[float, float]) -> str:
    return f"{_num(ci[0])}-{_num(ci[1])}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
