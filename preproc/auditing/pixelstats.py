"""Per-channel statistics of one decoded image, as an audit records them.

Statistics of integer images of at most 16 bits come from one exact histogram per channel
(``np.bincount``, or Pillow's C histogram for 8-bit data): min, max, mean, std, the 0.5/99.5
percentiles (numpy's default linear interpolation) and the fractions of pixels at the extremes
all follow from it, which is cheaper than sorting and gives the aggregator a histogram to merge
for free. Wider integers and floats use plain numpy reductions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dtypes
from ..io.info import PILLOW_MODE_BY_CHANNELS
from ..types import Array

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PERCENTILES", "band_counts", "direct_stats", "effective_bits", "exact_histogram",
           "integer_stats", "single_channel_16", "stats_from_histogram"]

#: Percentiles recorded per channel.
PERCENTILES = (0.5, 99.5)


def integer_stats(counts: Array, offset: int, dtype_name: str) -> dict[str, Any]:
    out = stats_from_histogram(counts, offset)
    lo, hi = out.pop("span")
    if not out["pixels"]:
        return out
    kind = np.uint32 if out["pixels"] < 2**32 else np.uint64
    out["hist"] = ("exact", dtype_name, lo + offset, counts[:, lo:hi].astype(kind))
    out["effective_bits"] = effective_bits(min(out["min"]), max(out["max"]),
                                           signed=dtype_name.startswith("int"))
    return out


def exact_histogram(flat: Array) -> tuple[Array, int]:
    """Counts of every value of an 8- or 16-bit integer ``(pixels, C)`` array.

    Returns:
        ``(counts, offset)``: ``counts[c, i]`` is how many pixels of channel ``c`` hold
        ``i + offset``. 8-bit data gets 256 columns; 16-bit data as many as reach its largest
        (offset) value, which saves clearing and scanning 65,536 bins for 12-bit content.
    """
    bits = flat.dtype.itemsize * 8
    unsigned = np.dtype(f"uint{bits}")
    offset = 0
    if flat.shape[1] == 1 and bits == 16 and flat.size:
        return single_channel_16(flat[:, 0], unsigned)
    if flat.dtype.kind == "i":  # flip the sign bit: two's complement becomes offset binary
        flat = flat.view(unsigned) ^ unsigned.type(1 << (bits - 1))
        offset = -(1 << (bits - 1))
    if bits == 8 and flat.shape[1] in PILLOW_MODE_BY_CHANNELS and 0 < flat.shape[0] < 2**31:
        return _pillow_histogram(flat), offset
    size = 1 << bits if bits == 8 or flat.size == 0 else int(flat.max()) + 1
    # one bincount per strided channel column beats building a combined index array
    counts = np.stack([np.bincount(flat[:, c], minlength=size) for c in range(flat.shape[1])])
    return counts, offset


def single_channel_16(values: Array, unsigned: np.dtype[Any]) -> tuple[Array, int]:
    """:func:`exact_histogram` of one 16-bit channel, counted from its smallest value.

    Signed data (HU around -1024) is shifted by its minimum, modulo 2**16, instead of having
    its sign bit flipped, so the counts start at the first value present rather than at
    -32768: tens of thousands fewer bins to clear and scan. ``bincount`` sizes its output by
    the largest value itself, so no separate maximum pass is made.
    """
    if values.dtype.kind == "u":
        return np.bincount(values)[None], 0
    lo = int(values.min())
    shifted = values.view(unsigned) - unsigned.type(lo % (1 << 16))
    return np.bincount(shifted)[None], lo


def _pillow_histogram(flat: Array) -> Array:
    """Per-channel counts of 8-bit ``(pixels, C)`` data through Pillow's C histogram.

    About twice as fast as ``np.bincount``, which first widens every byte to a 64-bit index.
    The pixels are viewed as one row of an image, without a copy.
    """
    from PIL import Image

    mode = PILLOW_MODE_BY_CHANNELS[flat.shape[1]]
    data = np.ascontiguousarray(flat)
    image = Image.frombuffer(mode, (data.shape[0], 1), data, "raw", mode, 0, 1)
    return band_counts(image, flat.shape[1])


def band_counts(image: Image.Image, bands: int) -> Array:
    """Pillow's histogram of an 8-bit image as ``(bands, 256)`` counts."""
    return np.asarray(image.histogram(), dtype=np.int64).reshape(bands, 256)


def stats_from_histogram(counts: Array, offset: int) -> dict[str, Any]:
    """Statistics of ``(C, bins)`` exact value counts where bin ``i`` holds value ``i + offset``.

    This runs once per audited file, so it is a handful of vector operations over the span of
    bins any channel uses (``span`` in the result is that ``(first, end)`` bin range). The sums
    are integer dot products, exact, and the variance is ``(n * sum(x**2) - sum(x)**2) / n**2``
    in Python integers over values relative to the span's first bin: no rounding before the
    last division, however far the values lie from zero.
    """
    n = int(counts[0].sum())
    if not n:  # nothing to measure: no statistics rather than NaN ones
        return {"pixels": 0, "span": (0, 0), **{k: None for k in _VALUE_KEYS}}
    used = np.flatnonzero(counts[0] if len(counts) == 1 else counts.any(axis=0))
    lo_bin, hi_bin = int(used[0]), int(used[-1]) + 1
    span = counts[:, lo_bin:hi_bin].astype(np.int64, copy=False)
    rel = np.arange(hi_bin - lo_bin, dtype=np.int64)
    if n * (hi_bin - lo_bin) ** 2 >= 1 << 62:  # past int64 (a gigapixel image): Python integers
        span, rel = span.astype(object), rel.astype(object)
    sums, squares = (span @ rel).tolist(), (span @ (rel * rel)).tolist()
    ranks = [_ranks(q, n) for q in PERCENTILES]
    # sorted positions: the first pixel (min), the last (max), then each percentile's two
    at = _bins_at(span, n, [0, n - 1, *(r for pair in ranks for r in pair)])
    first, last = at[:, 0], at[:, 1]
    base = lo_bin + offset
    values = (at[:, 2:] + base).tolist()
    channels = len(span)
    out: dict[str, list[float]] = {k: [] for k in _VALUE_KEYS}
    out["min"] = (first + base).astype(np.float64).tolist()
    out["max"] = (last + base).astype(np.float64).tolist()
    rows = np.arange(channels)
    out["frac_min"] = (span[rows, first] / n).tolist()
    out["frac_max"] = (span[rows, last] / n).tolist()
    for c in range(channels):
        for j, key in enumerate(("p_low", "p_high")):
            below, above = values[c][2 * j], values[c][2 * j + 1]
            fraction = PERCENTILES[j] / 100.0 * (n - 1) - ranks[j][0]
            out[key].append(below + (above - below) * fraction)
        s1, s2 = sums[c], squares[c]
        out["mean"].append(base + s1 / n)
        out["std"].append(math.sqrt((n * s2 - s1 * s1) / (n * n)))
    return {"pixels": n, "span": (lo_bin, hi_bin), **out}


def _bins_at(span: Array, n: int, positions: list[int]) -> Array:
    """``(C, len(positions))``: per channel, the bin holding each 0-based position of the
    channel's ``n`` values in sorted order.

    One search serves every channel: each channel's cumulative counts (0..n) are lifted by
    ``n + 1`` per channel, so the rows follow one another in one sorted array.
    """
    channels, bins = span.shape
    lift = np.arange(channels, dtype=np.int64) * (n + 1)
    cum = (np.cumsum(span, axis=1) + lift[:, None]).ravel()
    wanted = np.asarray(positions, dtype=np.int64)[None, :] + lift[:, None]
    found = np.searchsorted(cum, wanted.ravel(), side="right").reshape(channels, -1)
    at: Array = found - (np.arange(channels) * bins)[:, None]
    return at


#: The per-channel statistics :func:`stats_from_histogram` gives.
_VALUE_KEYS = ("min", "max", "mean", "std", "p_low", "p_high", "frac_min", "frac_max")


def _ranks(q: float, n: int) -> tuple[int, int]:
    """The two sorted positions numpy's default (linear) percentile ``q`` of ``n`` values
    interpolates between."""
    below = math.floor(q / 100.0 * (n - 1))
    return below, min(below + 1, n - 1)


def direct_stats(flat: Array) -> dict[str, Any]:
    """Statistics of wide integers and floats; non-finite values are counted and skipped."""
    values = flat.astype(np.float64, copy=False)
    finite = np.isfinite(values).all(axis=1)
    nonfinite = int(flat.shape[0] - finite.sum()) if flat.dtype.kind == "f" else 0
    if nonfinite:
        values = values[finite]
    if values.size == 0:  # nothing finite to measure: no statistics rather than NaN ones
        return {"pixels": 0, "min": None, "max": None, "mean": None, "std": None, "p_low": None,
                "p_high": None, "frac_min": None, "frac_max": None, "nonfinite": nonfinite}
    lo, hi = values.min(axis=0), values.max(axis=0)
    low, high = np.percentile(values, PERCENTILES, axis=0)
    return {
        "pixels": int(values.shape[0]), "min": lo.tolist(), "max": hi.tolist(),
        "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist(),
        "p_low": low.tolist(), "p_high": high.tolist(),
        "frac_min": (values == lo).mean(axis=0).tolist(),
        "frac_max": (values == hi).mean(axis=0).tolist(), "nonfinite": nonfinite,
    }


def effective_bits(lo: float, hi: float, *, signed: bool = False) -> int:
    """Bits needed for integer content in ``[lo, hi]``: unsigned when ``lo >= 0``, else signed.

    With ``signed`` (a signed container), the sign bit is always counted: values in
    ``[128, 2191]`` of an ``int16`` file need 13 bits, since 12 signed bits end at 2047.
    """
    if lo >= 0 and not signed:
        return dtypes.bits_needed(hi)
    magnitude = max(-lo - 1, hi, 0)
    return dtypes.bits_needed(magnitude) + 1
