"""Streaming aggregation: fixed-size histograms and moments per dtype group.

Memory does not grow with the dataset: a group (one ``(dtype, channels)`` combination) holds

* for 8- and 16-bit integers (and bool), an exact count of every container value per channel
  (at most 65,536 bins);
* for wider integers and floats, a :class:`FloatHistogram` of :data:`FLOAT_BINS` bins whose width
  is a power of two and whose edges are multiples of the width. When new values fall outside, the
  width doubles and neighbouring bins merge. Because of that alignment, the final bins depend only
  on the overall minimum and maximum, never on the order in which files arrive, so the local and
  the Dask engine produce identical histograms;
* per-channel count, mean and sum of squared deviations, merged with Chan's parallel formula in
  file order (deterministic for a given file list).

Per-file records are not kept in memory: they go to a :class:`RecordSpool` on disk.
"""

from __future__ import annotations

import math
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dtypes

if TYPE_CHECKING:
    from ..dataset.records import FileRecord

__all__ = ["FLOAT_BINS", "FloatHistogram", "GroupStats", "RecordSpool", "float_payload"]

#: Bins of a float histogram.
FLOAT_BINS = 1024
#: Bins stay at least ``2**-_FLOOR_BITS`` times the largest magnitude, so indices fit int64.
_FLOOR_BITS = 40
#: Exponent of the smallest positive double: the floor for all-zero data.
_MIN_EXP = -1074


def _floor_scaled(x: float, k: int) -> int:
    """``floor(x / 2**k)`` exactly, also when the quotient underflows to zero."""
    q = math.ldexp(x, -k)
    return -1 if q == 0 and x < 0 else math.floor(q)


def _floor_scaled_array(values: np.ndarray, k: int) -> np.ndarray:
    q = np.floor(np.ldexp(values, -k))
    q[(q == 0) & (values < 0)] = -1
    index: np.ndarray = q.astype(np.int64)
    return index


def _covering_exp(lo: float, hi: float, start: int | None = None) -> int:
    """Smallest ``k`` such that aligned bins of width ``2**k`` cover ``[lo, hi]``.

    ``k`` is at least ``start`` and at least a floor that grows with the magnitude of the data.
    Both bounds only grow as data is added, which keeps the result independent of merge order.
    """
    magnitude = max(abs(lo), abs(hi))
    floor = max(math.frexp(magnitude)[1] - _FLOOR_BITS, _MIN_EXP) if magnitude else _MIN_EXP
    half_span = hi / 2 - lo / 2  # halved so the difference cannot overflow
    estimate = (math.ceil(math.log2(half_span) + 1 - math.log2(FLOAT_BINS)) - 1
                if half_span > 0 else floor)
    k = max(floor, estimate, start if start is not None else floor)
    while _floor_scaled(hi, k) - _floor_scaled(lo, k) >= FLOAT_BINS:
        k += 1
    return k


@dataclass
class FloatHistogram:
    """Per-channel histogram with :data:`FLOAT_BINS` aligned power-of-two bins.

    Bin ``i`` of channel ``c`` counts values in ``[(start + i) * 2**exp, (start + i + 1) * 2**exp)``;
    ``vmin`` and ``vmax`` are the exact extremes seen.
    """

    exp: int
    start: int
    counts: np.ndarray  # (C, FLOAT_BINS) int64
    vmin: float
    vmax: float

    @classmethod
    def of(cls, values: np.ndarray) -> FloatHistogram | None:
        """Histogram of finite ``(pixels, C)`` values, or ``None`` when there are none."""
        if values.size == 0:
            return None
        lo, hi = float(values.min()), float(values.max())
        exp = _covering_exp(lo, hi)
        start = _floor_scaled(lo, exp)
        index = _floor_scaled_array(values, exp) - start
        counts = np.stack([np.bincount(index[:, c], minlength=FLOAT_BINS)
                           for c in range(values.shape[1])])
        return cls(exp, start, counts.astype(np.int64), lo, hi)

    def _rebinned(self, exp: int, start: int) -> np.ndarray:
        old = np.arange(FLOAT_BINS, dtype=np.int64) + self.start
        # indices stay below 2**62, so a larger shift maps them all to 0 or -1 just the same
        index = np.floor_divide(old, 1 << min(exp - self.exp, 62)) - start
        keep = (index >= 0) & (index < FLOAT_BINS)  # only empty bins fall outside
        return np.stack([np.bincount(index[keep], weights=row[keep], minlength=FLOAT_BINS)
                         for row in self.counts]).astype(np.int64)

    def merge(self, other: FloatHistogram) -> None:
        """Add ``other`` into this histogram, widening bins as needed."""
        lo, hi = min(self.vmin, other.vmin), max(self.vmax, other.vmax)
        exp = _covering_exp(lo, hi, start=max(self.exp, other.exp))
        start = _floor_scaled(lo, exp)
        self.counts = self._rebinned(exp, start) + other._rebinned(exp, start)
        self.exp, self.start, self.vmin, self.vmax = exp, start, lo, hi

    def compact(self, max_bins: int = 256) -> tuple[list[float], list[list[int]]]:
        """Edges and per-channel counts over the occupied range, in at most ``max_bins`` bins."""
        nz = np.flatnonzero(self.counts.any(axis=0))
        first, last = int(nz[0]), int(nz[-1])
        width = math.ldexp(1.0, self.exp)
        return _compact(self.counts[:, first:last + 1], (self.start + first) * width, width,
                        max_bins)


def _compact(counts: np.ndarray, lo: float, width: float,
             max_bins: int) -> tuple[list[float], list[list[int]]]:
    group = max(1, math.ceil(counts.shape[1] / max_bins))
    bins = math.ceil(counts.shape[1] / group)
    padded = np.zeros((counts.shape[0], bins * group), dtype=np.int64)
    padded[:, : counts.shape[1]] = counts
    merged = padded.reshape(counts.shape[0], bins, group).sum(axis=2)
    edges = [float(lo + i * group * width) for i in range(bins + 1)]
    return edges, merged.tolist()


def float_payload(flat: np.ndarray) -> tuple[str, str, FloatHistogram | None]:
    """Transport payload for a wide-integer or float ``(pixels, C)`` image (finite values only)."""
    values = flat.astype(np.float64, copy=False)
    if flat.dtype.kind == "f":
        values = values[np.isfinite(values).all(axis=1)]
    return ("float", dtypes.normalize_dtype(flat.dtype), FloatHistogram.of(values))


@dataclass
class GroupStats:
    """Everything aggregated about the readable files of one ``(dtype, channels)`` group."""

    dtype: str
    channels: int
    files: int = 0
    pixels: int = 0
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    _mean: list[float] | None = None
    _m2: list[float] | None = None
    exact: np.ndarray | None = None  # (C, 2**bits) counts for <=16-bit integers
    offset: int = 0
    floats: FloatHistogram | None = None

    @property
    def key(self) -> str:
        return f"{self.dtype}/{self.channels}ch"

    def add(self, rec: FileRecord, payload: Any) -> None:
        """Merge one readable record and its transport histogram ``payload`` into the group."""
        assert rec.min is not None and rec.max is not None, "a readable record has values"
        self._merge_moments(rec)
        self.files += 1
        self.min = [min(a, b) for a, b in zip(self.min, rec.min)] if self.min else list(rec.min)
        self.max = [max(a, b) for a, b in zip(self.max, rec.max)] if self.max else list(rec.max)
        self._merge_hist(payload)

    def _merge_moments(self, rec: FileRecord) -> None:
        """Chan et al.'s pairwise update, on plain floats: a few channels do not pay NumPy's
        per-call cost, and this runs once per file in the parent, beside the workers."""
        n_b = rec.pixels or 0
        if n_b == 0:
            return
        assert rec.mean is not None and rec.std is not None, "a measured record has moments"
        m2_b = [s * s * n_b for s in rec.std]
        if self._mean is None:
            self._mean, self._m2, self.pixels = [float(m) for m in rec.mean], m2_b, n_b
            return
        n_a, n = self.pixels, self.pixels + n_b
        share, cross = n_b / n, n_a * n_b / n
        deltas = [b - a for a, b in zip(self._mean, rec.mean)]
        self._mean = [a + d * share for a, d in zip(self._mean, deltas)]
        self._m2 = [a + b + d * d * cross for a, b, d in zip(self._m2 or [], m2_b, deltas)]
        self.pixels = n

    def _merge_hist(self, payload: Any) -> None:
        if payload is None:
            return
        if payload[0] == "exact":
            _, dtype, lo, counts = payload
            if self.exact is None:
                bits = dtypes.container_bits(dtype) if dtype != "bool" else 8
                self.offset = int(dtypes.dtype_range(dtype)[0]) if dtype != "bool" else 0
                self.exact = np.zeros((counts.shape[0], 1 << bits), dtype=np.int64)
            start = lo - self.offset
            self.exact[:, start:start + counts.shape[1]] += counts
        elif payload[2] is not None:
            if self.floats is None:
                self.floats = payload[2]
            else:
                self.floats.merge(payload[2])

    @property
    def mean(self) -> list[float]:
        return [] if self._mean is None else list(self._mean)

    @property
    def std(self) -> list[float]:
        if self._m2 is None:
            return []
        return [math.sqrt(m2 / self.pixels) for m2 in self._m2]

    def histogram(self, max_bins: int = 256) -> dict[str, Any] | None:
        """Compact histogram: ``{"edges": [...], "counts": [[...] per channel]}``."""
        if self.exact is not None:
            nz = np.flatnonzero(self.exact.any(axis=0))
            if nz.size == 0:
                return None
            first, last = int(nz[0]), int(nz[-1])
            edges, counts = _compact(self.exact[:, first:last + 1], first + self.offset, 1.0,
                                     max_bins)
        elif self.floats is not None:
            edges, counts = self.floats.compact(max_bins)
        else:
            return None
        return {"edges": edges, "counts": counts}

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype, "channels": self.channels, "files": self.files,
            "pixels_per_channel": self.pixels, "min": self.min, "max": self.max,
            "mean": self.mean, "std": self.std, "histogram": self.histogram(),
        }


class RecordSpool:
    """Append-only on-disk store of records, so memory does not grow with the file count.

    Records are pickled a chunk at a time (one ``pickle.dump`` per list), which costs the
    parent process less per file than one dump per record.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="preproc-audit-")  # noqa: SIM115 - see close()
        self.count = 0
        self._lists = 0

    def append(self, rec: FileRecord) -> None:
        self.extend([rec])

    def extend(self, records: list[FileRecord]) -> None:
        if records:
            self._file.seek(0, 2)  # after an unfinished iteration, too
            pickle.dump(records, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(records)
            self._lists += 1

    def __iter__(self) -> Iterator[FileRecord]:
        self._file.flush()
        position = 0
        for _ in range(self._lists):
            self._file.seek(position)
            records = pickle.load(self._file)
            position = self._file.tell()
            yield from records
        self._file.seek(0, 2)

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        self._file.close()
