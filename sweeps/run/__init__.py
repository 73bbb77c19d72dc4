"""Running a sweep: options, opening the study (`session`), the worker loop (`worker`), the trial log, shutdown on
signals and store failures, the summary, the best agent's replay, and the verdict and `validate` on unseen seeds;
`sweep.run_sweep` puts them together."""
