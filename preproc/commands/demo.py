"""``preproc demo``: build a small broken dataset and show check, audit and run on it."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="build a small mixed-bit-depth dataset and run check, audit and run on it",
        description="Writes synthetic 12-bit chest radiographs in 16-bit PNGs, a 16-bit TIFF, "
        "8-bit RGB screenshots, a truncated file and a duplicate; then checks a config with the "
        "classic CLAHE-then-rescale mistake, audits the data into an HTML report, and runs the "
        "corrected pipeline.",
    )
    p.add_argument("--keep", metavar="DIR", help="build in DIR and keep it (default: a temporary "
                   "folder, removed at the end)")
    p.set_defaults(func=main)


def _step(n: int, title: str, note: str) -> None:
    print(f"\n=== {n}. {title}", flush=True)
    print(f"    {note}\n", flush=True)


def main(args: argparse.Namespace) -> int:
    if args.keep:
        root = Path(args.keep).resolve()
        if root.exists() and any(root.iterdir()):
            print(f"{root} is not empty; choose a new or empty folder for --keep", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
        return _run(root, keep=True)
    with tempfile.TemporaryDirectory(prefix="preproc-demo-") as tmp:
        return _run(Path(tmp), keep=False)


def _run(root: Path, keep: bool) -> int:
    from . import main as cli
    from ._demo_data import build_dataset, write_configs

    started = time.perf_counter()
    _step(1, "Build a dataset", f"in {root}")
    counts = build_dataset(root)
    wrong, fixed = write_configs(root)
    print(f"    {counts['png16']} chest radiographs, 12-bit content in 16-bit grayscale PNGs")
    print(f"    {counts['tiff16']} 16-bit TIFF, {counts['png8_rgb']} 8-bit RGB screenshots, "
          f"{counts['corrupt']} truncated file, {counts['duplicate']} duplicate across classes")
    print(f"    configs: {wrong.name} (CLAHE, then rescale 1/255) and {fixed.name} (corrected)")

    _step(2, f"preproc check {wrong.name}",
          "Static check: no pixel is decoded; headers of a sample of files are read.")
    rc_check = cli(["check", str(wrong)])
    print(f"\n    -> exit {rc_check}: the rescale after CLAHE is flagged at its line "
          "(compounded-scaling), and the headers already reveal the 8-bit screenshots.")

    report_dir = root / "report"
    _step(3, f"preproc audit {wrong.name} --report report/",
          "Every file is decoded once: true bit depth, ranges, corrupt files, duplicates.")
    rc_audit = cli(["audit", str(wrong), "--report", str(report_dir)])
    html = report_dir / "report.html"
    print(f"\n    -> exit {rc_audit}; HTML report: {html}" + ("" if keep else
          " (removed at the end; use --keep DIR to open it)"))

    _step(4, f"preproc check {fixed.name}",
          "The corrected pipeline maps the 12 stored bits to [0, 1] before CLAHE.")
    rc_fixed = cli(["check", str(fixed), "--trace"])

    _step(5, f"preproc run {fixed.name} --subset training",
          "Lossless batches, guarded against the inferred ranges; the truncated file is skipped.")
    rc_run = cli(["run", str(fixed), "--subset", "training", "--epochs", "1"])

    from ._demo_dicom import dicom_step

    _step(6, "DICOM: a CT window on stored values, then on Hounsfield units",
          "pydicom's CT_small stores HU + 1024; check names the mistake from the headers.")
    ok_dicom = dicom_step(root, cli)

    from ._demo_augment import augment_step

    _step(7, "Augmentation under range contracts",
          "Random stages declare what they do to the value range; the check propagates it.")
    ok_augment = augment_step(root, cli)

    elapsed = time.perf_counter() - started
    print(f"\n=== Done in {elapsed:.1f} s. check (wrong) exit {rc_check}, audit exit {rc_audit}, "
          f"check (fixed) exit {rc_fixed}, run exit {rc_run}.")
    if keep:
        print(f"    Everything is in {root}: open {html} in a browser.")
    ok = (rc_check == 1 and rc_fixed == 0 and rc_run == 0 and rc_audit in (0, 1) and ok_dicom
          and ok_augment)
    return 0 if ok else 1
