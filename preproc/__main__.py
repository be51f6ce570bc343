"""``python -m preproc``: the same command line as ``preproc``."""

import sys

from .commands import main

sys.exit(main())
