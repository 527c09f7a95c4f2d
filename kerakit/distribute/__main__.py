"""`python -m kerakit.distribute --workers 2 train.py`: a local multi-worker run."""

import sys

from kerakit.distribute.launch import main

sys.exit(main())
