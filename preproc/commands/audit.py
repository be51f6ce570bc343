"""``preproc audit CONFIG|DIRECTORY``: what is really in the dataset."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..auditing import AuditReport
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "audit",
        help="audit every file of a dataset: true bit depth, ranges, corrupt files, duplicates",
        description="Read every file once (headers only with --quick) and report mixed bit "
        "depths, files outside source.expect, unreadable, duplicate and constant images and "
        "class balance. A bare DIRECTORY has no source.expect: only data-intrinsic findings.",
    )
    p.add_argument("target", metavar="CONFIG|DIRECTORY", help="pipeline YAML or dataset folder")
    p.add_argument("--quick", action="store_true",
                   help="read headers only (dtype, channels, size, stored bits): every "
                   "header finding plus odd-size and odd-aspect-ratio; the findings that need "
                   "pixels (duplicates, near-duplicates, blur, exposure, ...) are listed as "
                   "not computed")
    p.add_argument("--report", metavar="DIR",
                   help="write report.json, files.csv and report.html into DIR")
    p.add_argument("--stats", metavar="FILE",
                   help="write per-channel mean/std of the raw values for "
                   "normalize: {mode: featurewise, stats: FILE}")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local process pool (default) or a Dask distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (default: start a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (default: all cores; 1 = in this process)")
    p.add_argument("--show-patient-ids", action="store_true",
                   help="keep DICOM PatientID in files.csv and report.json (default: a salted "
                   "hash, so reports carry no patient identifiers)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json
    import sys

    from ..auditing import audit
    from ..auditing.terminal import print_report, progress_bar
    from ..errors import PreprocError

    if args.quick and args.stats:
        raise PreprocError("--stats needs measured values; drop --quick")
    if args.workers is not None and args.workers < 1:
        raise PreprocError("--workers must be at least 1")
    if args.scheduler and args.engine != "dask":
        raise PreprocError("--scheduler needs --engine dask")
    if args.stats:
        from ..auditing.report import check_stats_target

        check_stats_target(args.stats)
    with progress_bar(args.format == "text", "auditing") as progress:
        report = audit(args.target, quick=args.quick, engine=args.engine,
                       scheduler=args.scheduler, workers=args.workers, progress=progress,
                       show_patient_ids=args.show_patient_ids)
    try:
        _write_outputs(report, args)
    except OSError as exc:
        raise PreprocError(f"cannot write the report: {exc}") from exc
    if args.format == "json":
        json.dump(report.to_json(files=False), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report)
    return report.exit_code()


def _write_outputs(report: AuditReport, args: argparse.Namespace) -> None:
    import sys

    if args.report:
        paths = report.write(args.report)
        print(f"report written: {paths['html']} ({paths['json'].name}, {paths['csv'].name})",
              file=sys.stderr)
    if args.stats:
        path = report.write_stats(args.stats)
        print(f"statistics written: {path}", file=sys.stderr)
