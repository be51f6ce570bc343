"""``preproc schema``: the JSON Schema of the config, for editors."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the config language")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="include the stages of a plugin (repeatable)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..config.schema import config_schema
    from ..stages.plugins import registry_for

    print(json.dumps(config_schema(registry_for(args.plugin)), indent=2))
    return 0
