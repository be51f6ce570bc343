"""``preproc explain CODE``: what a finding means, a minimal example and the fix."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("explain", help="explain a finding code with an example and the fix")
    p.add_argument("code", nargs="?", help="finding code, e.g. compounded-scaling (omit to list all)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..findings import CODES
    from ._catalogue import explain

    if not args.code:
        for code, info in CODES.items():
            print(f"{code:<24} {str(info.severity):<8} {info.meaning}")
        return 0
    if args.code not in CODES:
        close = difflib.get_close_matches(args.code, list(CODES), n=1)
        tip = f"; did you mean `{close[0]}`?" if close else ""
        print(f"unknown finding code {args.code!r}{tip} (`preproc explain` lists them)", file=sys.stderr)
        return 2
    print(explain(args.code))
    return 0
