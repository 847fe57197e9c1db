"""CoLA Workbench: fine-tune BERT-style encoders on linguistic acceptability, from a terminal."""

import os

# Large CPU tensors (the 47 MB word-embedding gradient of every training step) go on transparent
# huge pages: far fewer page faults (benchmarks/README.md). torch reads this once, at its first
# allocation, so it is set here, before any workbench module imports torch. THP_MEM_ALLOC_ENABLE=0
# in the environment turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
