"""``preproc run CONFIG``: iterate the batches, report throughput and runtime-guard findings."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import add_mode_argument

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..batches.flow import BatchIterator
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="iterate the batches (throughput, runtime guard); --out writes them as .npy shards",
        description="Decode, resize and run the stages over the dataset exactly as training "
        "would, with the runtime guard on the sampled batches. Prints images per second and any "
        "runtime-range-violation; exits 1 when one reaches checks.fail_on. With --out, writes "
        "the first epoch as .npy shards plus index.json/index.csv, atomically and resumably.",
    )
    p.add_argument("config", help="pipeline YAML file")
    p.add_argument("--subset", choices=("training", "validation"), default=None,
                   help="subset of batches.validation_split (default: all files)")
    add_mode_argument(p)
    p.add_argument("--epochs", type=int, default=1, metavar="N", help="epochs to run (default 1)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write the processed arrays of one epoch to DIR")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (0 = in-process; default batches.workers or all cores)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the static check that runs first (run a failing config on purpose)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import time
    import warnings

    from ..analysis import check
    from ..batches.flow import DecodeSkipWarning, flow
    from ..config.model import load_config
    from ..errors import PreprocError, printable
    from ..findings import Report

    if args.epochs < 1:
        raise PreprocError("--epochs must be at least 1")
    if args.out and args.epochs != 1:
        raise PreprocError("--out writes one epoch; drop --epochs or set it to 1")
    cfg = load_config(args.config)
    if not args.no_check:  # the check's lines, once, before any batch is made
        report = check(cfg, mode=args.mode)
        if report.findings:
            print(report.format_text(), file=sys.stdout if report.failed else sys.stderr)
        if report.failed:
            print("nothing was run; fix the config, or pass --no-check to run it anyway",
                  file=sys.stderr)
            return report.exit_code()
    with warnings.catch_warnings(), \
            flow(cfg, args.subset, check=False, mode=args.mode, workers=args.workers,
                 guard="record") as it:
        warnings.simplefilter("ignore", DecodeSkipWarning)  # listed once, below
        it.start()  # fork the workers before the progress display starts its thread
        start = time.perf_counter()
        images = _drive(it, args)
        elapsed = time.perf_counter() - start
    rate = images / elapsed if elapsed > 0 else float("inf")
    print(f"{images} images in {len(it)} batches x {args.epochs} epoch(s), {elapsed:.2f} s: "
          f"{rate:.0f} img/s (batch {it.batch_size}, {it.image_shape}, {it.dtype})")
    if cfg.batches.seed is None:  # replay with batches.seed: N
        print(f"seed {it.seed} (drawn at start; set batches.seed to replay this run)")
    for path, reason in it.skipped.items():
        print(f"skipped {printable(path)} ({reason})", file=sys.stderr)
    report = Report.with_policy(it.findings, cfg.checks)
    for finding in report.findings:
        print(finding.format())
    return report.exit_code()


def _drive(it: BatchIterator, args: argparse.Namespace) -> int:
    total = len(it) * args.epochs
    with _progress(total) as advance:
        if args.out:
            from ..batches.export import export_epoch

            index = export_epoch(it, args.out, progress=lambda i, n, reused: advance(n))
            print(f"wrote {index['written']} shard(s), kept {index['reused']} complete one(s) "
                  f"in {args.out}", file=sys.stderr)
            images: int = index["images"]
            return images
        images = 0
        for _ in range(args.epochs):
            for batch in it:
                x = batch[0] if isinstance(batch, tuple) else batch
                images += len(x)
                advance(len(x))
        return images


class _progress:
    """A rich progress bar on a terminal (stderr), nothing when piped."""

    def __init__(self, total_batches: int) -> None:
        self.total = total_batches
        self.bar: Progress | None = None

    def __enter__(self) -> Callable[[int], object]:
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(),
                       MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
        self.bar = bar
        bar.start()
        task = bar.add_task("batches", total=self.total)
        return lambda n: bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
