"""The order-1 resampling kernel of ``random_affine``: SciPy's bilinear ``affine_transform`` on
every channel at once, in plain NumPy.

Decisions:

* Coordinates are float64 and computed once per image, as SciPy does; the four taps of every
  output pixel are gathered with precomputed flat indices into zero-padded channel planes (the
  padding sits under taps of weight 0 only), so no per-tap edge masks exist.
* The weighted sum runs in float32 for 8-bit integers and float32 images (its rounding stays
  far below half an 8-bit level, and float32 is a float32 image's own precision), float64
  otherwise, so 16-bit levels round as SciPy rounds them. Integers are rounded half up like SciPy's integer outputs; the result of a convex
  combination of in-range values never needs saturating.
* Large temporaries live in a per-thread workspace reused across calls of the same shape:
  fresh allocations of image-sized arrays cost more than the arithmetic (page faults), and an
  augmentation runs on image after image of one size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..types import Array

__all__ = ["bilinear", "map_coordinates_into_range", "to_dtype"]

F32 = np.float32
#: Workspaces kept per thread (one per image shape and working precision).
_KEEP = 4
_LOCAL = threading.local()


@dataclass
class _Workspace:
    """Scratch arrays for one (height, width, channels, working dtype)."""

    h: int
    w: int
    c: int
    wide: np.dtype[np.floating]
    si: Array = field(init=False)
    sj: Array = field(init=False)
    ri: Array = field(init=False)
    rj: Array = field(init=False)
    weights: Array = field(init=False)
    index: Array = field(init=False)
    planes: Array = field(init=False)
    acc: Array = field(init=False)
    tmp: Array = field(init=False)

    def __post_init__(self) -> None:
        h, w, c, n = self.h, self.w, self.c, self.h * self.w
        self.si, self.sj, self.ri, self.rj = (np.empty((h, w)) for _ in range(4))
        self.weights = np.empty((6, n), dtype=self.wide)  # w00 w01 w10 w11 fi fj
        self.index = np.empty(n, dtype=np.intp)
        # two zero rows and one zero column past the image: the far taps of the last row and
        # column land there with weight 0, so the gather needs no bounds test
        self.planes = np.zeros((c, h + 2, w + 1), dtype=self.wide)
        self.acc, self.tmp = np.empty((c, n), dtype=self.wide), np.empty((c, n), dtype=self.wide)


def _workspace(h: int, w: int, c: int, wide: np.dtype[np.floating]) -> _Workspace:
    cache: OrderedDict[tuple[int, int, int, str], _Workspace] | None = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = OrderedDict()
    key = (h, w, c, wide.str)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = _Workspace(h, w, c, wide)
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return ws


def map_coordinates_into_range(s: Array, n: int, mode: str) -> Array:
    """Map coordinates into [0, n - 1] as SciPy's modes do before interpolating (in place when
    the mode allows)."""
    if n == 1:
        s[...] = 0
        return s
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        period = 2 * n
        s = np.mod(s + 0.0, period)
        s = np.where(s >= n, period - 1 - s, s)
    elif mode == "wrap":  # SciPy's wrap: first and last samples coincide, period n - 1
        inside = (s >= 0) & (s <= n - 1)
        s = np.where(inside, s, np.mod(s, n - 1))
    return np.clip(s, 0, n - 1, out=s)


def _coordinates(ws: _Workspace, m: Array, mode: str) -> Array | None:
    """Fill the workspace's tap index and weights; return the constant-mode outside mask."""
    h, w = ws.h, ws.w
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    np.add((m[0, 0] * rows)[:, None], (m[0, 1] * cols + m[0, 2])[None, :], out=ws.si)
    np.add((m[1, 0] * rows)[:, None], (m[1, 1] * cols + m[1, 2])[None, :], out=ws.sj)
    outside = None
    if mode == "constant":
        outside = (ws.si < 0) | (ws.si > h - 1) | (ws.sj < 0) | (ws.sj > w - 1)
    si = map_coordinates_into_range(ws.si, h, mode)
    sj = map_coordinates_into_range(ws.sj, w, mode)
    ri, rj = np.floor(si, out=ws.ri), np.floor(sj, out=ws.rj)
    si -= ri
    sj -= rj
    wt = ws.weights
    fi, fj = wt[4], wt[5]
    np.copyto(fi, si.reshape(-1), casting="same_kind")
    np.copyto(fj, sj.reshape(-1), casting="same_kind")
    ri *= w + 1  # flat index of the top-left tap in the padded planes
    ri += rj
    np.copyto(ws.index, ri.reshape(-1), casting="unsafe")
    np.multiply(fi, fj, out=wt[3])
    np.subtract(fi, wt[3], out=wt[2])
    np.subtract(fj, wt[3], out=wt[1])
    np.subtract(1, fi, out=wt[0])
    wt[0] -= wt[1]
    return outside


def _blend(ws: _Workspace, x: Array) -> Array:
    """Σ weight · tap over the four taps of every output pixel, all channels -> (C, H*W)."""
    h, w = ws.h, ws.w
    ws.planes[:, :h, :w] = x.transpose(2, 0, 1)
    flat = ws.planes.reshape(ws.c, -1)
    acc, tmp, k, wt = ws.acc, ws.tmp, ws.index, ws.weights
    flat.take(k, axis=1, out=acc, mode="wrap")  # k is in range; "raise" would buffer
    acc *= wt[0]
    for tap, offset in ((1, 1), (2, w + 1), (3, w + 2)):
        flat[:, offset:].take(k, axis=1, out=tmp, mode="wrap")
        tmp *= wt[tap]
        acc += tmp
    return acc


def to_dtype(values: Array, dtype: np.dtype[np.generic]) -> Array:
    """Resampled values in ``dtype``: floats cast, integers rounded half up (SciPy's rounding for
    integer outputs) and clipped to the dtype's range."""
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    lo, hi = dtypes.int_range(dtype)
    out = values + 0.5
    np.floor(out, out=out)
    np.clip(out, lo, hi, out=out)
    return out.astype(dtype)


def bilinear(x: Array, m: Array, mode: str, cval: float) -> Array:
    """SciPy's order-1 ``affine_transform`` of every channel of ``x`` (H, W, C) with matrix ``m``
    (output (row, col) -> input (row, col), 3x3), mode ``constant``/``nearest``/``reflect``/
    ``wrap``. Output: a new array, same shape and dtype; integers rounded half up, floats kept
    inside the image's own [min, max] (float weights may sum to 1 + ulp)."""
    h, w, c = x.shape
    if x.size == 0:
        return np.array(x, copy=True)
    narrow = x.dtype.itemsize == 1 or (x.dtype.kind == "f" and x.dtype.itemsize <= 4)
    wide = np.dtype(F32) if narrow else np.dtype(np.float64)
    ws = _workspace(h, w, c, wide)
    outside = _coordinates(ws, m, mode)
    acc = _blend(ws, x)
    out = np.empty(x.shape, dtype=x.dtype)
    if x.dtype.kind in "ui":
        acc += 0.5  # half up; a convex combination of in-range values stays in range
        if x.dtype.kind == "i":
            np.floor(acc, out=acc)  # the cast truncates toward zero: floor first below zero
    else:
        np.clip(acc, x.min(), x.max(), out=acc)
    np.copyto(out.reshape(h * w, c).T, acc, casting="unsafe")
    if outside is not None and outside.any():
        out[outside] = to_dtype(np.array([cval], dtype=np.float64), x.dtype)[0]
    return out
