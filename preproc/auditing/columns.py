"""The screening's view of an audit: one number per spooled record, in typed arrays.

:class:`ColumnBuilder` takes the records one at a time, as the audit receives them, and builds :class:`Columns`: the hashes and window hashes the near-duplicate
index reads, the class, subset and dtype of each file, its quality measures and its size, and
the sum of every thumbnail the near-duplicate check compares against. A few bytes per file,
whatever the dataset size. The thumbnails themselves (640 bytes per file) go to a temporary
file, mapped once the records are in: the near-duplicate check reads those of its candidates,
in any order, and memory holds only the pages it touches.
"""

from __future__ import annotations

import tempfile
from array import array
from typing import Any

import numpy as np

from ..dataset.records import FileRecord
from ..types import Array
from .quality import CENTRE, WINDOWS

__all__ = ["CENTRE", "THUMB_SHAPE", "WINDOWS", "ColumnBuilder", "Columns", "record_windows",
           "validation_paths"]

#: A record's thumbnails: the whole image, then each window, 8x8 levels each.
THUMB_SHAPE = (1 + WINDOWS, 64)
_THUMB_BYTES = THUMB_SHAPE[0] * THUMB_SHAPE[1]


class Columns:
    """One number per spooled record."""

    n: int
    hashed: Array
    #: sum of every thumbnail slot (whole image, 9 windows) over the ``template_n`` hashed images
    template: Array
    template_n: int
    #: ``(n, 10, 64)`` uint8 thumbnails of every record (zeros where it has none), read-only
    thumbs: Array
    gray: Array
    phash: Array
    content: Array
    windows: Array
    cls: Array
    dtype: Array
    subset: Array
    blur: Array
    bright: Array
    entropy: Array
    lo: Array
    hi: Array
    height: Array
    width: Array
    class_names: list[str | None]
    dtype_names: list[str | None]


class ColumnBuilder:
    """Builds :class:`Columns` one record at a time, in spool order: an audit feeds it while
    the records arrive, so screening need not read the spool back for them.

    Args:
        validation: the relative paths of the validation subset (:func:`validation_paths`).
        quick: the records hold headers only.
    """

    def __init__(self, validation: set[str] | None, quick: bool = False) -> None:
        self.validation, self.quick = validation, quick
        # typed arrays, not lists of Python objects: a few bytes per file while collecting
        self.ph, self.win, self.ch = array("Q"), array("Q"), array("Q")
        self.cl, self.dt, self.sub, self.flags = array("q"), array("q"), array("b"), array("b")
        #: blur, brightness, entropy and the range's two ends, per record (NaN: not measured)
        self.measures = tuple(array("d") for _ in range(5))
        self.height, self.width = array("d"), array("d")
        self.names: dict[str | None, int] = {}
        self.dtypes: dict[str | None, int] = {}
        self.template = np.zeros(THUMB_SHAPE, dtype=np.float64)
        self.template_n = 0
        # record i's thumbnails at byte i * 640 (a quick audit has none to compare)
        self._thumbs = (None if quick
                        else tempfile.TemporaryFile(prefix="preproc-thumbs-"))  # noqa: SIM115

    def add(self, rec: FileRecord) -> None:
        """Account for the next record of the spool."""
        if self._thumbs is not None:
            tiny = bytes.fromhex(rec.tiny) if rec.tiny else b""
            if len(tiny) == _THUMB_BYTES:
                self.template += np.frombuffer(tiny, np.uint8).reshape(THUMB_SHAPE)
                self.template_n += 1
            else:
                tiny = bytes(_THUMB_BYTES)
            self._thumbs.write(tiny)
        self.ph.append(int(rec.phash, 16) if rec.phash else 0)
        self.win.extend(record_windows(rec) if rec.phash else _NOWINDOWS)
        self.ch.append(int(rec.hash[:16], 16) if rec.hash else 0)
        self.cl.append(self.names.setdefault(rec.cls, len(self.names)))
        self.sub.append(-1 if self.validation is None else int(rec.path in self.validation))
        self.dt.append(self.dtypes.setdefault(rec.dtype, len(self.dtypes)))
        measured = rec.ok and rec.brightness is not None
        sized = rec.ok and (self.quick or measured)  # a full audit sizes what it measured
        values = ((rec.blur, rec.brightness, rec.entropy, rec.level_lo, rec.level_hi)
                  if measured else _NO_MEASURES)
        for column, value in zip(self.measures, values):
            column.append(_or_nan(value))
        self.height.append(rec.height if sized and rec.height else 0)
        self.width.append(rec.width if sized and rec.width else 0)
        self.flags.append((1 if measured and rec.grayscale else 0) | (2 if rec.phash else 0))

    def close(self) -> None:
        """Delete the thumbnails' temporary file (arrays already mapped from it stay valid)."""
        if self._thumbs is not None:
            self._thumbs.close()

    def build(self) -> Columns:
        """The columns of every record added."""
        out = Columns()
        out.template, out.template_n = self.template, self.template_n
        out.n = len(self.ph)
        out.thumbs = np.zeros((0, *THUMB_SHAPE), dtype=np.uint8)
        if self._thumbs is not None and out.n:
            self._thumbs.flush()
            out.thumbs = np.memmap(self._thumbs, dtype=np.uint8, mode="r",
                                   shape=(out.n, *THUMB_SHAPE))
        flags = np.frombuffer(self.flags, dtype=np.int8) if out.n else np.zeros(0, np.int8)
        out.hashed = (flags & 2) > 0
        out.gray = (flags & 1) > 0
        out.phash, out.content = (
            np.frombuffer(a, dtype=np.uint64).copy() if len(a) else np.zeros(0, np.uint64)
            for a in (self.ph, self.ch))
        out.windows = (np.frombuffer(self.win, dtype=np.uint64).reshape(-1, WINDOWS).copy()
                       if len(self.win) else np.zeros((0, WINDOWS), np.uint64))
        out.cls, out.dtype = (np.asarray(a, dtype=np.int64) for a in (self.cl, self.dt))
        out.class_names = list(self.names)
        out.subset = np.asarray(self.sub, dtype=np.int8)
        out.dtype_names = list(self.dtypes)
        out.blur, out.bright, out.entropy, out.lo, out.hi, out.height, out.width = (
            np.asarray(a, dtype=np.float64) for a in (*self.measures, self.height, self.width))
        return out


_NOWINDOWS = [0] * WINDOWS
_NO_MEASURES = (None,) * 5


def record_windows(rec: FileRecord) -> list[int]:
    """The record's window hashes in :func:`~.quality.crop_windows` order (centre in the
    middle); the centre hash stands in for windows a record does not carry."""
    centre = int(rec.phash_center or rec.phash or "0", 16)
    crops = rec.crops or ""
    others = [int(crops[i:i + 16], 16) for i in range(0, len(crops), 16)]
    if len(others) != WINDOWS - 1:
        others = [centre] * (WINDOWS - 1)
    return others[:CENTRE] + [centre] + others[CENTRE:]


def _or_nan(x: float | None) -> float:
    return float("nan") if x is None else x


def validation_paths(cfg: Any, items: list[tuple[str, str | None]]) -> set[str] | None:
    """Relative paths (``/``-separated) the batches put in the validation subset, or ``None``.

    ``items``: the audit's listing of the config's files (``(path, class)``, each class's files
    together and in listing order), split by the batches' own rule
    (:func:`~preproc.dataset.discovery.subset_slice`) rather than listing the folders again.
    """
    from ..dataset.discovery import subset_slice

    batches = getattr(cfg, "batches", None)
    if cfg is None or batches is None or not getattr(batches, "validation_split", 0.0):
        return None
    if getattr(batches, "split_by", None) is not None:
        return None  # a group split is assigned elsewhere; per-file subsets would be wrong
    per_class: dict[str | None, list[str]] = {}
    for rel, cls in items:
        per_class.setdefault(cls, []).append(rel)
    return {rel for files in per_class.values()
            for rel in files[subset_slice(len(files), batches.validation_split, "validation")]}
