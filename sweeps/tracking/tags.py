"""The MLflow tag names dqn-sweep writes and reads, in one place: the sweep, recovery, validation and analysis
look runs up by these, so a name spelled twice would split one concept in two."""

from sweeps.stores.tracking_store import ROLE_TAG, STUDY_TAG

TAG_STUDY = STUDY_TAG  # the preflight checks it before anything is written: spelled in the stores room
TAG_ROLE = ROLE_TAG  # "study", "trial" or "validation"
TAG_TRIAL = "dqn_sweep.trial_number"
TAG_STATE = "dqn_sweep.state"
TAG_SAMPLER = "dqn_sweep.sampler"
TAG_PRUNER = "dqn_sweep.pruner"
TAG_SEARCHED = "dqn_sweep.searched_params"
TAG_STORAGE = "dqn_sweep.optuna_storage"
TAG_VERDICT = "dqn_sweep.verdict"
TAG_VERDICT_OUTCOME = "dqn_sweep.verdict_outcome"
TAG_SYNCED = "dqn_sweep.synced"  # a run that `sync` re-created from Optuna's record
TAG_VALIDATES = "dqn_sweep.validates"  # a validation run: which configuration it re-trained
TAG_AGENT_LOGGED = "dqn_sweep.best_agent_logged"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests a trial's run under the study's
