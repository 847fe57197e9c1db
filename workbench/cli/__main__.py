"""`python -m workbench.cli`: how torchrun, accelerate launch and core.runs.launch_training run the CLI."""

import sys

from workbench.cli import main

sys.exit(main())
