"""Pure array functions behind the built-in stages. No state, no config, no I/O.

Each function takes an array and plain numbers and returns a new array; none mutates its input.
Every elementwise function here is monotone in ``x`` (non-decreasing or non-increasing), which is
what lets the stages infer their output interval soundly by evaluating the very same function on
the two interval endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import dtypes
from ..types import Array

__all__ = [
    "affine_f32",
    "cast",
    "clahe",
    "clip",
    "gamma",
    "invert",
    "linear_map",
    "normalize",
    "samplewise",
    "saturate",
]

F32 = np.float32


def affine_f32(x: Array, factor: float, offset: float = 0.0) -> Array:
    """``x * factor + offset`` computed in float32, multiplying as Keras does (never dividing).

    Input: any real dtype. Output: float32.
    """
    out: Array = np.multiply(x, F32(factor), dtype=F32)  # cast and multiply in one pass
    if offset:
        out += F32(offset)
    return out


def linear_map(
    x: Array,
    in_range: tuple[float, float],
    out_range: tuple[float, float],
    *,
    clip: bool = True,
) -> Array:
    """Map ``in_range`` linearly onto ``out_range`` in float32; optionally clip to it first.

    Input: any real dtype. Output: float32; inside ``out_range`` when ``clip``.
    """
    ilo, ihi = (F32(v) for v in in_range)
    olo, ohi = (F32(v) for v in out_range)
    out = np.asarray(x).astype(F32, copy=True)
    if clip:
        np.clip(out, ilo, ihi, out=out)
    out -= ilo
    out *= (ohi - olo) / (ihi - ilo)
    out += olo
    if clip:  # float rounding may step one ulp past the bounds
        np.clip(out, min(olo, ohi), max(olo, ohi), out=out)
    return out


def normalize(x: Array, mean: float | Sequence[float], std: float | Sequence[float]) -> Array:
    """``(x - mean) / std`` in float32; ``mean``/``std`` scalars or one value per channel.

    Input: (H, W, C) any real dtype. Output: float32.
    """
    out = np.asarray(x).astype(F32, copy=True)
    out -= np.asarray(mean, dtype=F32)
    out /= np.asarray(std, dtype=F32)
    return out


def samplewise(x: Array, epsilon: float = 1e-6) -> Array:
    """Center and scale one image by its own mean and standard deviation (all pixels, all channels).

    Output: float32, unbounded in principle; a constant image becomes all zeros.
    """
    out = np.asarray(x).astype(F32, copy=True)
    out -= F32(out.mean(dtype=np.float64))
    out /= F32(out.std(dtype=np.float64) + epsilon)
    return out


def clip(x: Array, lo: float, hi: float) -> Array:
    """Clip to ``[lo, hi]`` keeping the dtype; integer dtypes clip to ``[ceil(lo), floor(hi)]``.

    Output: same dtype as ``x``.
    """
    x = np.asarray(x)
    if dtypes.is_integer(x.dtype):
        dlo, dhi = dtypes.dtype_range(x.dtype)
        ilo = min(max(np.ceil(lo), dlo), dhi)
        ihi = max(min(np.floor(hi), dhi), dlo)
        clipped: Array = np.clip(x, x.dtype.type(ilo), x.dtype.type(ihi))
        return clipped
    clipped = np.clip(x, x.dtype.type(lo), x.dtype.type(hi))
    return clipped


def gamma(x: Array, g: float) -> Array:
    """``x ** g`` in float32 for inputs in [0, 1]. Output: float32 in [0, 1].

    Negative inputs (outside the contract; the static check reports them) become 0 rather
    than NaN.
    """
    out = np.asarray(x).astype(F32, copy=True)
    np.maximum(out, F32(0), out=out)
    np.power(out, F32(g), out=out)
    return out


def invert(x: Array, maximum: float) -> Array:
    """``maximum - x``; integers (and bools) saturate to their dtype, never wrap.

    Output: same dtype as ``x``.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        flipped: Array = (x.dtype.type(maximum) - x).astype(x.dtype, copy=False)
        return flipped
    lo, hi = dtypes.int_range(x.dtype)
    # beyond these bounds every result saturates anyway; clamping keeps int64 from overflowing
    m = min(max(round(maximum), lo), hi + (hi - lo))
    if x.dtype.itemsize >= 8:
        wide = np.float64(m) - x.astype(np.float64)
    else:
        wide = np.int64(m) - x.astype(np.int64)
    return saturate(wide, x.dtype)


def saturate(x: Array, dtype: npt.DTypeLike) -> Array:
    """Clip ``x`` into what ``dtype`` holds, then convert: saturation, never wrap-around.

    Floats are rounded half to even first. Works for 64-bit targets, whose limits floats cannot
    represent exactly.
    """
    x = np.asarray(x)
    target = np.dtype(dtype)
    if target.kind == "b":
        nonzero: Array = x != 0
        return nonzero
    if target.kind == "f":
        return x.astype(target)
    lo, hi = dtypes.int_range(target)
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    if x.dtype.kind == "f":
        x = np.rint(x)
        flo, fhi = _float_bound(x.dtype, lo, up=True), _float_bound(x.dtype, hi, up=False)
        rounded: Array = np.clip(x, flo, fhi).astype(target)
        return rounded
    src_lo, src_hi = dtypes.int_range(x.dtype)
    if src_lo < lo or src_hi > hi:  # bounds are inside the source range, so representable
        x = np.clip(x, x.dtype.type(max(lo, src_lo)), x.dtype.type(min(hi, src_hi)))
    return x.astype(target)


def _float_bound(fdtype: np.dtype[Any], bound: int, up: bool) -> np.floating[Any]:
    """The float of ``fdtype`` nearest to ``bound`` that does not lie beyond it."""
    with np.errstate(over="ignore"):
        f: np.floating[Any] = fdtype.type(bound)
    if not np.isfinite(f):  # float16 cannot hold 2**63: its largest finite value is the bound
        f = np.finfo(fdtype).max * fdtype.type(1 if bound > 0 else -1)
        return f
    while (int(f) < bound) if up else (int(f) > bound):
        f = np.nextafter(f, fdtype.type(np.inf if up else -np.inf))
    return f


def cast(x: Array, dtype: str, scale: bool) -> Array:
    """Convert to ``dtype``; with ``scale``, map full scale to full scale (see :mod:`preproc.dtypes`).

    Floats going to integers are rounded half to even; out-of-range values saturate at the
    target's limits, never wrap. Output: ``dtype``.
    """
    x = np.asarray(x)
    target = np.dtype(dtype)
    if scale:
        src_max = dtypes.full_scale(x.dtype)[1]
        dst_max = dtypes.full_scale(target)[1]
        if src_max != dst_max:
            work = np.float32 if target.kind == "f" and target.itemsize <= 4 else np.float64
            x = x.astype(work, copy=True)
            x *= work(dst_max / src_max)
    return saturate(x, target)


def clahe(
    x: Array, clip_limit: float, kernel_size: int | tuple[int, int] | None = None, nbins: int = 256
) -> Array:
    """Contrast-limited adaptive histogram equalization per channel, scikit-image semantics.

    Input: integers of any range, or floats in [0, 1]. Each image is stretched to its own min
    and max first. Output: float32 in [0, 1].
    """
    from skimage.exposure import equalize_adapthist  # heavy: loaded on first use only

    x = np.asarray(x)
    if x.shape[-1] == 3:  # scikit-image equalizes the V channel of HSV for color images
        return _clahe_plane(x, equalize_adapthist, clip_limit, kernel_size, nbins)
    out = np.empty(x.shape, dtype=F32)
    for c in range(x.shape[-1]):
        out[..., c] = _clahe_plane(x[..., c], equalize_adapthist, clip_limit, kernel_size, nbins)
    return out


def _clahe_plane(plane: Array, equalize_adapthist: Callable[..., Array], clip_limit: float,
                 kernel_size: int | tuple[int, int] | None, nbins: int) -> Array:
    if plane.min() == plane.max():
        return np.zeros(plane.shape, dtype=F32)  # scikit-image divides by zero on constants
    eq = equalize_adapthist(plane, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    result: Array = np.clip(eq, 0.0, 1.0).astype(F32)
    return result
