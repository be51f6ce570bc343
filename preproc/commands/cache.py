"""``preproc cache CONFIG DIR``: write the deterministic part of the pipeline once, as shards."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "cache",
        help="decode, resize and run the stages up to the first random one, once, into DIR",
        description="Write the deterministic part of the pipeline (decode, colour, resize, the "
        "stages before the first random stage, except a trailing run of elementwise stages) for "
        "every file of both subsets as memory-mappable .npy shards plus index.json. Set "
        "batches.cache: DIR (or flow(..., cache=DIR)) to train from it. Atomic and resumable: a "
        "re-run keeps the complete shards whose files are unchanged. With --verify, checks an "
        "existing cache against the files' content instead and exits 1 when it is stale.",
    )
    p.add_argument("config", help="pipeline YAML file")
    p.add_argument("dir", help="cache folder")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local processes (default) or one task per shard on a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes (default batches.workers or all cores; 0 = in-process)")
    p.add_argument("--shard-images", type=int, default=None, metavar="N",
                   help="images per shard (default: about 64 MiB of pixels)")
    p.add_argument("--verify", action="store_true",
                   help="check the cache in DIR against the files' content hashes; write nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..batches.cache_build import build_cache, verify_cache
    from ..config import load_config
    from ..findings import Report

    cfg = load_config(args.config)
    if args.verify:
        report = Report.with_policy(verify_cache(args.dir, cfg), cfg.checks)
        for finding in report.findings:
            print(finding.format())
        if not report.findings:
            print(f"{args.dir}: the cache matches the config and every source file's content")
        return report.exit_code()
    index = build_cache(cfg, args.dir, engine=args.engine, scheduler=args.scheduler,
                        workers=args.workers, shard_images=args.shard_images)
    print(f"{args.dir}: {len(index['files'])} images in {len(index['shards'])} shard(s) "
          f"({index['written']} written, {index['reused']} kept), {index['dtype']} "
          f"{tuple(index['image_shape'])}, stages cached: "
          f"{', '.join(index['stages_cached']) or 'none (decode and resize only)'}",
          file=sys.stderr)
    return 0
