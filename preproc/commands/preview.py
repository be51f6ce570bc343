"""``preproc preview CONFIG --out grid.png``: a contact sheet of what the model sees."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import add_mode_argument

if TYPE_CHECKING:
    from . import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "preview",
        help="write a contact sheet of N samples through the pipeline, augmented and not",
        description="Runs the first N files of the epoch through the full pipeline (random "
        "stages drawn as the batches draw them) and through the deterministic stages alone, and "
        "writes both rows as one image (augmented above, plain below), atomically.",
    )
    p.add_argument("config", help="pipeline YAML file")
    p.add_argument("--out", required=True, metavar="FILE", help="image to write (e.g. grid.png)")
    p.add_argument("-n", type=int, default=8, metavar="N", help="samples (default 8)")
    p.add_argument("--subset", choices=("training", "validation"), default=None,
                   help="subset of batches.validation_split (default: all files)")
    add_mode_argument(p)
    p.add_argument("--epoch", type=int, default=0, metavar="E", help="epoch to draw (default 0)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..batches.flow import flow
    from ..batches.preview import contact_sheet, write_sheet
    from ..config.model import load_config
    from ..errors import PreprocError

    if args.n < 1:
        raise PreprocError("-n must be at least 1")
    cfg = load_config(args.config)
    with flow(cfg, args.subset, mode=args.mode, workers=0, guard="record") as it:
        it.set_epoch(args.epoch)
        augmented, plain = it.preview(args.n)
        iv = it.pipeline.output_spec.interval
    write_sheet(args.out, contact_sheet([augmented, plain], (iv.lo, iv.hi)))
    print(f"wrote {args.out}: {len(augmented)} samples of {augmented.shape[1:]} (epoch "
          f"{args.epoch}, seed {it.seed}), augmented above, plain below")
    return 0
