"""``preproc stages``: every registered stage with its contract."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("stages", help="list registered stages with their parameters and contracts")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="load a plugin first (repeatable)")
    p.set_defaults(func=main)


def describe_stages() -> list[dict]:
    from ..stages.registry import registered_stages

    rows = []
    for name, cls in registered_stages().items():
        doc = (cls.__doc__ or "").strip()
        rows.append({
            "name": name,
            "module": cls.__module__,
            "summary": cls.summary or doc.splitlines()[0] if doc else "",
            "contract": " ".join(line.strip() for line in doc.splitlines()[1:] if line.strip()),
            "params": {k: _param(f) for k, f in cls.Params.model_fields.items()},
            "clips": isinstance(cls.clips, bool) and cls.clips,
            "stretches": cls.stretches,
        })
    return rows


def _param(field) -> str:
    if field.is_required():
        return "required"
    return repr(field.default)


def main(args) -> int:
    from ..stages.plugins import load_plugin

    for spec in args.plugin:
        load_plugin(spec)
    rows = describe_stages()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"{row['name']}  ({params})")
        if row["contract"]:
            print(f"    {row['contract']}")
    return 0
