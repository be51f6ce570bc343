"""``preproc check CONFIG``: the static check, compiler-style."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ..spec import format_interval

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="check a pipeline statically (ranges, scaling, units, bit depth)",
        description="Propagate value ranges through the stages and report mistakes at their "
        "YAML line. Reads file headers of a sample when source.directory exists; decodes no pixels.",
    )
    p.add_argument("config", help="pipeline YAML file")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--sample", type=int, default=64, metavar="N",
                   help="file headers to sample from source.directory (0 = none; default 64)")
    p.add_argument("--trace", action="store_true", help="text: print the value spec after every stage")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..analysis import check
    from ..config.model import load_config

    cfg = load_config(args.config)
    report = check(cfg, sample=max(args.sample, 0))
    directory = cfg.source.directory
    if args.sample and directory is not None and not directory.is_dir():
        print(f"note: source.directory {directory} does not exist; no file headers were "
              "sampled (the check used source.expect only)", file=sys.stderr)
    if args.format == "json":
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return report.exit_code()
    for finding in report.findings:
        print(finding.format())
    if args.trace or not report.findings:
        for row in report.trace:
            where = f"stage {row['stage']} {row['name']}" if row["stage"] is not None else row["name"]
            spec = row["spec"]
            lo, hi = spec["range"]
            rng = format_interval(lo, hi) if spec["known"] else "unknown"
            units = f"  {spec['units']}" if spec.get("units") else ""
            print(f"  {where:<28} {spec['dtype'] or '?':<8} {rng}{units}")
    print(report.summary(), file=sys.stderr if report.findings else sys.stdout)
    return report.exit_code()
