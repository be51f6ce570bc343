"""``preproc schema``: the JSON Schema of the config, for editors."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the config language")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..config.schema import config_schema

    print(json.dumps(config_schema(), indent=2))
    return 0
