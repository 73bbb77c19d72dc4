"""A study's MLflow side: the study tracker (experiment, parent run, outage policy), trial runs, tag names, live
metrics, artifacts, recovery (`repair`, `sync`), relocation of copied sweep folders, report logging and the
`browse:` lines."""
