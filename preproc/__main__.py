"""``python -m preproc``: the same command line as ``preproc``."""

import sys

try:  # Ctrl-C while the command line imports is an interruption, not a traceback
    from .commands import main
except KeyboardInterrupt:
    sys.stderr.write("interrupted\n")
    sys.exit(130)

sys.exit(main())
