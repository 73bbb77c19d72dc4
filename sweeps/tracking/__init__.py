"""A study's MLflow side: the study tracker (experiment, parent run, outage policy), trial runs, tag names, live
metrics, artifacts, recovery (`repair`, `sync`), report logging and the `browse:` lines."""
