"""What a study is: its schema (attribute keys, `StudyOptions`, sampler and pruner names), the search space and sweep
files, samplers and pruners, the per-seed objective, the seed race that feeds the stream, the statistics its claims
rest on, warm start, and read access to existing studies."""
