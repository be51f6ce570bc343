"""``preproc stages``: every registered stage with its contract."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from ..stages.registry import StageRegistry
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("stages", help="list registered stages with their parameters and contracts")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="load a plugin first (repeatable)")
    p.set_defaults(func=main)


def describe_stages(registry: StageRegistry | None = None) -> list[dict[str, Any]]:
    """One row per stage of ``registry`` (default: the process-wide one)."""
    from ..stages.plugins import default_registry

    rows: list[dict[str, Any]] = []
    for name, cls in (registry or default_registry()).as_dict().items():
        doc = (cls.__doc__ or "").strip()
        rows.append({
            "name": name,
            "module": cls.__module__,
            "summary": cls.summary or doc.splitlines()[0] if doc else "",
            "contract": " ".join(line.strip() for line in doc.splitlines()[1:] if line.strip()),
            "params": {k: _param(f) for k, f in cls.Params.model_fields.items()},
            "clips": cls.TRAITS.clips,
            "stretches": cls.TRAITS.stretches,
        })
    return rows


def _param(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    return repr(field.default)


def main(args: argparse.Namespace) -> int:
    from ..stages.plugins import registry_for

    rows = describe_stages(registry_for(args.plugin))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"{row['name']}  ({params})")
        if row["contract"]:
            print(f"    {row['contract']}")
    return 0
