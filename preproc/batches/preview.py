"""Previews: what the model sees, augmented and not, and a contact sheet of it.

:func:`samples` runs the first ``n`` files of an iterator's epoch through its pipeline (random
stages drawn exactly as the batches draw them) and through the evaluation pipeline (random
stages left out, ``random_crop`` as ``center_crop``). :func:`contact_sheet` lays them out as one
8-bit image: the augmented row above the plain row, each sample scaled for display by the
pipeline's inferred output interval (or the sheet's own range where that is unbounded).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..types import Array

if TYPE_CHECKING:
    from .flow import BatchIterator

__all__ = ["contact_sheet", "samples", "write_sheet"]


def samples(it: BatchIterator, n: int = 8) -> tuple[Array, Array]:
    """``(augmented, plain)``: two ``(n, H, W, C)`` arrays for the first ``n`` files of the epoch.

    Files are taken in the current epoch's batch order; unreadable files are skipped.
    """
    from ..errors import DecodeError
    from ..stages.pipeline import Pipeline, for_subset

    pipe = it.pipeline
    apply_to = {e.index: getattr(e, "apply_to", None) for e in it.config.stages}
    kept = (for_subset(s, apply_to.get(s.index), "validation") for s in pipe.stages)
    plain_pipe = Pipeline([s for s in kept if s is not None], pipe.source_spec, pipe.entry_spec,
                          subset=pipe.subset, seed=pipe.seed, mode="evaluation")
    aug: list[Array] = []
    plain: list[Array] = []
    for k in it.index_array:
        if len(aug) == n:
            break
        k = int(k)
        try:
            raw = it._job.load(k)
        except DecodeError:  # a preview shows what it can read
            continue
        path = it.filepath_of(k)
        aug.append(it.pipeline.apply(raw, file=path, index=k, epoch=it.epoch))
        plain.append(plain_pipe.apply(raw, file=path, index=k, epoch=it.epoch))
    if not aug:
        raise ValueError("no readable image to preview")
    return np.stack(aug), np.stack(plain)


def contact_sheet(rows: list[Array], interval: tuple[float, float] | None = None,
                  gap: int = 2) -> Array:
    """One uint8 (H, W, 3) image: each row an ``(n, h, w, C)`` stack laid side by side.

    Values map linearly from ``interval`` (``(lo, hi)``; default: the rows' own range) to
    [0, 255]; one channel is shown gray, two as gray of the first, four without alpha.
    """
    lo, hi = interval if interval is not None else (None, None)
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        finite = np.concatenate([np.asarray(r, np.float64).ravel() for r in rows])
        finite = finite[np.isfinite(finite)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1
    n = max(len(r) for r in rows)
    h = max(r.shape[1] for r in rows)
    w = max(r.shape[2] for r in rows)
    sheet = np.full((len(rows) * (h + gap) + gap, n * (w + gap) + gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = gap + i * (h + gap), gap + j * (w + gap)
            sheet[y:y + img.shape[0], x:x + img.shape[1]] = _display(img, lo, hi)
    return sheet


def _display(img: Array, lo: float, hi: float) -> Array:
    x: Array = (np.asarray(img, np.float64) - lo) * (255.0 / (hi - lo))
    x = np.clip(np.nan_to_num(x), 0, 255).round().astype(np.uint8)
    c = x.shape[2]
    if c in (1, 2):
        return np.repeat(x[..., :1], 3, axis=2)
    return x[..., :3]


def write_sheet(path: str | Path, sheet: Array) -> None:
    """Write ``sheet`` as an image (format from the suffix; PNG by default), atomically."""
    import io

    from PIL import Image

    from ..io.atomic import write_bytes

    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    buf = io.BytesIO()
    Image.fromarray(sheet, "RGB").save(buf, format=fmt)
    write_bytes(path, buf.getvalue())
