"""``python -m preproc``: the same command line as ``preproc``."""

import sys

from .cli import main

sys.exit(main())
