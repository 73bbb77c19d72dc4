"""A sweep with a planted effect, end to end: does the sweep find it and does the verdict confirm it?

Run: `.venv/bin/python benchmarks/planted_effect.py`. Runs `benchmarks/planted_effect.yaml` (the book's agent with
its epsilon decay rate detuned 6.7x slower, and a space whose `linear` schedule undoes that; the file says why)
into fresh stores in a temp dir, and prints the wall time, the verdict line, the ratio of episodes to solve
(winner / book) with its 95% CI and p on 32 unseen seeds, the verdict's word, and each searched parameter's effect
from every (trial, seed) run. What it must show: the verdict says `better`, with a CI of the ratio below 1.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sweeps.run.options import SweepOptions
from sweeps.run.summary import describe_counts
from sweeps.run.sweep import run_sweep
from sweeps.study.space import load_sweep

SWEEP = Path(__file__).with_name("planted_effect.yaml")


def main() -> None:
    sweep = load_sweep(SWEEP)
    with tempfile.TemporaryDirectory() as folder:
        options = SweepOptions(
            sweep=sweep,
            study_name="planted",
            study=sweep.study,
            storage=f"journal:{Path(folder) / 'optuna-journal.log'}",
            tracking_uri=f"sqlite:///{Path(folder) / 'mlflow.db'}",
            progress=False,
        )
        started = time.perf_counter()
        summary = run_sweep(options)
        seconds = time.perf_counter() - started
        effects = _knob_effects(options)
    settings = sweep.study
    print(
        f"planted-effect sweep: {settings.n_trials} trials, up to {settings.max_seeds} seeds each, "
        f"verdict on {settings.validate_seeds} unseen seeds; base epsilon_decay_rate "
        f"{sweep.base.epsilon_decay_rate:g} (book: 0.001)"
    )
    print(f"  {describe_counts(summary.counts)}; best trial {summary.best_number}: {summary.best_value}")
    print(f"  wall time {seconds:.1f} s, verdict included; {summary.env_steps:,} env steps")
    verdict = summary.verdict
    if verdict is None or verdict.effect is None:
        print("  no verdict")
        return
    effect = verdict.effect
    print(f"  verdict: {verdict.line}")
    print(
        f"  effect (winner / book): ratio {effect.ratio:.3f}, 95% CI {effect.ci95[0]:.3f}-{effect.ci95[1]:.3f}, "
        f"paired Wilcoxon p={effect.p_value:.2g} on {effect.n} seeds; word: {verdict.outcome} "
        f"({'found and confirmed' if verdict.outcome == 'better' else 'NOT confirmed'})"
    )
    print(f"  each parameter's effect from every (trial, seed) run:\n{effects}")


def _knob_effects(options: SweepOptions) -> str:
    from analysis.knob_effects import effects_sentence, knob_effects
    from analysis.load import StudyData

    data = StudyData.open(options.study_name, storage=options.storage, tracking=options.tracking_uri)
    effects = knob_effects(data.study, data.trials)
    table = effects.table[["parameter", "compared", "ratio", "ci_low", "ci_high", "runs"]]
    return "    " + table.to_string(index=False).replace("\n", "\n    ") + f"\n  {effects_sentence(effects)}"


if __name__ == "__main__":
    main()
