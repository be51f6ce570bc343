"""``preproc export CONFIG DIR --format webdataset|npy``: one epoch of batches in a shard format."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from . import add_mode_argument

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export",
        help="write one epoch as WebDataset tar shards (or .npy batch shards) for other loaders",
        description="Run the pipeline over one epoch and write it for training stacks that "
        "stream shards: --format webdataset writes standard WebDataset tars (KEY.npy holding the "
        "processed image, KEY.cls its class index); --format npy writes the batch shards of "
        "`preproc run --out`. Each file is written atomically and index.json comes last; a "
        "re-run into the same folder keeps the complete shards and writes the rest (a folder "
        "holding a webdataset export of another config is refused).",
    )
    p.add_argument("config", help="pipeline YAML file")
    p.add_argument("dir", help="destination folder")
    p.add_argument("--format", choices=("webdataset", "npy"), default="webdataset")
    p.add_argument("--subset", choices=("training", "validation"), default=None,
                   help="subset of batches.validation_split (default: all files)")
    add_mode_argument(p)
    p.add_argument("--samples-per-shard", type=int, default=1000, metavar="N",
                   help="samples per tar (webdataset; default 1000)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (0 = in-process; default batches.workers or all cores)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..batches.flow import flow
    from ..config import load_config

    cfg = load_config(args.config)
    with flow(cfg, args.subset, mode=args.mode, workers=args.workers, guard="record") as it:
        if args.format == "npy":
            from ..batches.export import export_epoch

            index = export_epoch(it, args.dir)
            count = index["images"]
        else:
            from ..batches.webdataset import export_webdataset

            index = export_webdataset(it, args.dir, samples_per_shard=args.samples_per_shard)
            count = index["samples"]
    print(f"{args.dir}: {count} samples in {len(index['shards'])} shard(s) ({args.format})",
          file=sys.stderr)
    return 0
