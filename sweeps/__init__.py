"""dqn-sweep's sweep tool, in five rooms: `study` (what a study is), `stores` (where it lives), `tracking` (its
MLflow side), `run` (running a sweep) and `cli` (the command line). Imports go one way:
cli -> run -> tracking -> study -> stores."""
