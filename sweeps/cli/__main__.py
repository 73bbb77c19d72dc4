"""`python -m sweeps.cli`: the same as the `dqn-sweep` command."""

import sys

from sweeps.cli import main

sys.exit(main())
