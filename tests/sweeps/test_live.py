"""The MLflow side of a sweep while it runs: each trial's results seed by seed, the study's progress on its parent
run (both read back from a real sweep's SQLite store)."""

from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

from sweeps.study.existing import load_existing_study
from sweeps.study.schema import per_seed_values
from sweeps.tracking.tags import TAG_ROLE, TAG_TRIAL


def test_trials_and_study_progress_are_logged_as_they_happen(tiny_sweep):
    study = load_existing_study("tiny", f"journal:{tiny_sweep.journal}", tiny_sweep.tracking_uri)
    client = MlflowClient(tracking_uri=tiny_sweep.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    trial_runs = {int(r.data.tags[TAG_TRIAL]): r for r in runs if r.data.tags.get(TAG_ROLE) == "trial"}
    parent = next(r for r in runs if r.data.tags.get(TAG_ROLE) == "study")

    for trial in study.trials:
        run_id = trial_runs[trial.number].info.run_id
        values = per_seed_values(trial)
        by_seed = client.get_metric_history(run_id, "seed_episodes_to_solve")
        assert {m.step: m.value for m in by_seed} == {s: float(v) for s, v in values.items()}
        so_far = sorted(client.get_metric_history(run_id, "episodes_to_solve_so_far"), key=lambda m: m.step)
        assert [m.step for m in so_far] == list(range(1, len(values) + 1))
        in_order = [m.value for m in sorted(by_seed, key=lambda m: (m.timestamp, m.step))]
        assert so_far[-1].value == float(np.median(in_order))

    histories = {
        name: client.get_metric_history(parent.info.run_id, name) for name in ("trials_complete", "trials_pruned")
    }
    complete = sorted(histories["trials_complete"], key=lambda m: m.step)
    pruned = sorted(histories["trials_pruned"], key=lambda m: m.step)
    assert [m.step for m in complete] == list(range(1, len(study.trials) + 1))  # one point per finished trial
    assert [c.value + p.value for c, p in zip(complete, pruned, strict=True)] == [float(m.step) for m in complete]
    states = [t.state.name for t in study.trials]
    assert (complete[-1].value, pruned[-1].value) == (states.count("COMPLETE"), states.count("PRUNED"))
    best = [m.value for m in sorted(client.get_metric_history(parent.info.run_id, "best_value"), key=lambda m: m.step)]
    assert best == sorted(best, reverse=True) and best[-1] == min(t.value for t in study.trials if t.value is not None)
    assert all(m.timestamp <= parent.info.end_time for m in complete)  # logged while the sweep ran
    assert complete[0].timestamp < complete[-1].timestamp
