"""The ``preproc`` command line.

Each subcommand lives in its own public module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a ``main(args) -> int``.
Module tops import nothing heavy, so ``preproc check`` starts fast.

Exit codes: 0 nothing at or above ``fail_on``; 1 findings at or above it; 2 usage, config or
I/O error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TextIO, TypeAlias

from .._version import __version__
from ..errors import PreprocError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Subparsers", "build_parser", "main"]

#: What a subcommand module's ``register(sub)`` receives: ``add_subparsers()``'s result.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: Order in ``preproc --help``; modules found beyond these are appended.
_ORDER = ("check", "audit", "run", "preview", "demo", "explain", "stages", "schema")


def _command_modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [n for n in _ORDER if n in found] + sorted(found - set(_ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preproc",
        description="Check image preprocessing pipelines statically, audit datasets, and emit "
        "lossless batches.",
        epilog="Exit codes: 0 clean, 1 findings at or above checks.fail_on, 2 usage/config/IO error.",
    )
    parser.add_argument("--version", action="version", version=f"preproc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        importlib.import_module(f"preproc.commands.{name}").register(sub)
    return parser


class _one_line_warnings:
    """While a command runs: each warning is one line on stderr (no source line, no file of
    the warning's origin), and third-party loggers (tifffile) stay quiet below errors, since
    preproc reports the same problems itself, once."""

    LOGGERS = ("tifffile", "pydicom", "PIL")

    def __enter__(self) -> Self:
        import logging
        import warnings

        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = _show_warning
        self._levels: dict[str, int] = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        import logging

        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._warnings.__exit__(exc_type, exc, tb)
        return False


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    from ..errors import printable

    text = " ".join(str(message).split("\n"))
    out = file if file is not None else sys.stderr
    try:
        print(f"warning: {printable(text)}", file=out)
    except (OSError, ValueError):
        pass


def add_mode_argument(parser: argparse.ArgumentParser) -> None:
    """``--mode``: which of the config's two pipelines a command runs."""
    parser.add_argument("--mode", choices=("training", "evaluation"), default=None,
                        help="training runs the random stages, evaluation the deterministic "
                        "ones alone (default batches.mode; the validation subset always "
                        "evaluates)")


def io_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and why."""
    from ..errors import printable

    why = exc.strerror or str(exc) or type(exc).__name__
    where = f"{printable(exc.filename)}: " if exc.filename is not None else ""
    if exc.filename2 is not None:
        where += f"-> {printable(exc.filename2)}: "
    return f"I/O error: {where}{why}"


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _one_line_warnings():
            return int(args.func(args))
    except PreprocError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # disk full, read-only, a file where a folder belongs, /proc, ...
        print(f"preproc {args.command}: {io_message(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"preproc {args.command}: out of memory; "
              f"{_MEMORY_HINTS.get(args.command, _MEMORY_HINTS['run'])}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so plainly, never let it pass as "findings" (exit 1)
        if os.environ.get("PREPROC_DEBUG"):
            raise
        print(f"internal error in preproc {args.command}: {type(exc).__name__}: {exc}\n"
              "  this is a bug; rerun with PREPROC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 2


#: What bounds each command's memory, for its out-of-memory message.
_MEMORY_HINTS = {
    "run": "lower batches.batch_size, batches.target_size or the number of workers",
    "audit": "lower --workers or source.max_image_bytes (the largest image one worker decodes)",
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
