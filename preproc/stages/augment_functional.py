"""Pure array functions behind the augmentation stages. No state, no config, no randomness.

Every function takes an image of shape ``(H, W, C)`` and parameters already drawn, and returns a
new array; none mutates its input. Drawing the parameters is the business of
:mod:`preproc.stages.augment_draw`, which takes an explicit ``numpy.random.Generator``.

Decisions:

* Geometry follows Keras' ``apply_affine_transform``: rotation, shift, shear and zoom compose
  into one matrix about the image centre, and the image is resampled once, with the
  ``scipy.ndimage`` spline conventions (``order``, ``mode`` ``constant``/``nearest``/``reflect``/
  ``wrap``). Order 1, the default, runs one vectorized bilinear kernel over all channels at once
  (:mod:`preproc.stages.augment_bilinear`) that reproduces ``scipy.ndimage.affine_transform``
  (same coordinates, same edge rules); other orders call SciPy channel by channel.
* Integer images stay integer: resampled values are rounded half up and saturated to the dtype,
  as SciPy does for integer outputs, so uint16 keeps its 16-bit levels.
* Photometric functions compute in float32 and never round-trip through 8 bits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import dtypes
from ..types import Array
from .augment_bilinear import bilinear, to_dtype

__all__ = [
    "FILL_MODES",
    "affine",
    "brightness",
    "center_crop",
    "channel_shift",
    "contrast",
    "crop",
    "flip",
    "keras_matrix",
    "spline_overshoot",
]

F32 = np.float32
FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def keras_matrix(theta: float, tx: float, ty: float, shear: float, zx: float, zy: float,
                 h: int, w: int) -> Array | None:
    """The 3x3 matrix Keras' ``apply_affine_transform`` resamples with, in (row, col) order.

    ``theta`` and ``shear`` are degrees; ``tx`` is the shift along rows (height) and ``ty``
    along columns (width), in pixels; ``zx``/``zy`` are Keras' zoom factors. Returns ``None`` for
    the identity (Keras then leaves the image untouched). The arithmetic is Keras' own, in the
    same order, so the coordinates agree to the last bit.
    """
    m = None
    if theta != 0:
        t = np.deg2rad(theta)
        m = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if tx != 0 or ty != 0:
        s = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        m = s if m is None else np.dot(m, s)
    if shear != 0:
        sh = np.deg2rad(shear)
        s = np.array([[1, -np.sin(sh), 0], [0, np.cos(sh), 0], [0, 0, 1]])
        m = s if m is None else np.dot(m, s)
    if zx != 1 or zy != 1:
        s = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        m = s if m is None else np.dot(m, s)
    if m is None:
        return None
    o_x, o_y = float(h) / 2 - 0.5, float(w) / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    m = np.dot(np.dot(offset, m), reset)
    m[:, [0, 1]] = m[:, [1, 0]]  # Keras builds (x, y); arrays index (row, col)
    m[[0, 1]] = m[[1, 0]]
    return np.asarray(m, dtype=np.float64)


def affine(x: Array, matrix: Array | None, *, order: int = 1, fill_mode: str = "nearest",
           cval: float = 0.0, clip: bool = True) -> Array:
    """Resample ``x`` with ``matrix`` (output coordinate -> input coordinate, rows first).

    Input: (H, W, C), any real dtype. Output: same shape and dtype; integers rounded half up and
    saturated. With ``clip`` and ``order >= 2``, the spline's overshoot is clipped to the
    image's own [min, max] (and ``cval`` with ``fill_mode: constant``).
    """
    if matrix is None:
        return np.array(x, copy=True)
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if order == 1:
        return bilinear(x, matrix, fill_mode, cval)
    out = _spline(x, matrix, order, fill_mode, cval)
    if clip and order >= 2 and x.size:
        np.clip(out, *_span(x, fill_mode, cval), out=out)
    return to_dtype(out, x.dtype)


def _span(x: Array, fill_mode: str, cval: float) -> tuple[float, float]:
    lo, hi = float(x.min()), float(x.max())
    if fill_mode == "constant":
        c = float(x.dtype.type(cval)) if x.dtype.kind == "f" else cval
        lo, hi = min(lo, c), max(hi, c)
    return lo, hi


def _spline(x: Array, matrix: Array, order: int, mode: str, cval: float) -> Array:
    from scipy import ndimage  # heavy: loaded on first use only

    out = np.empty(x.shape, dtype=np.float64)
    for c in range(x.shape[2]):
        ndimage.affine_transform(x[..., c], matrix[:2, :2], matrix[:2, 2], order=order,
                                 mode=mode, cval=cval, output=out[..., c])
    return out


def flip(x: Array, horizontal: bool, vertical: bool) -> Array:
    """Mirror left-right and/or up-down. Output: a new array, same dtype."""
    if horizontal:
        x = x[:, ::-1]
    if vertical:
        x = x[::-1]
    return np.array(x, copy=True)


def brightness(x: Array, factor: float, *, keep_dtype: bool = False) -> Array:
    """``x * factor`` in float32 (no 8-bit round trip).

    Output: float32; with ``keep_dtype`` integers are rounded and saturated to their dtype.
    """
    out = np.multiply(x, F32(factor), dtype=F32)
    return _saturate(out, x.dtype) if keep_dtype else out


def contrast(x: Array, factor: float, *, keep_dtype: bool = False) -> Array:
    """``mean + (x - mean) * factor`` about the image mean (all pixels and channels), float32.

    With ``factor <= 1`` the result stays inside the image's own [min, max]. Output: float32;
    with ``keep_dtype`` integers are rounded and saturated to their dtype.
    """
    mean = F32(np.mean(x, dtype=np.float64)) if x.size else F32(0)
    out = np.subtract(x, mean, dtype=F32)
    out *= F32(factor)
    out += mean
    if factor <= 1 and x.size:  # a convex combination: float rounding must not step outside
        np.clip(out, F32(x.min()), F32(x.max()), out=out)
    return _saturate(out, x.dtype) if keep_dtype else out


def channel_shift(x: Array, intensity: float, *, clip: bool = True) -> Array:
    """Add ``intensity`` to every channel, as Keras' ``apply_channel_shift``.

    With ``clip`` (Keras), the result is clipped to the image's own [min, max] and integers stay
    integer (rounded half to even); without, the output is float32 and widens by ``intensity``.
    """
    out: Array = np.add(x, F32(intensity), dtype=F32)
    if not clip:
        return out
    if x.size:
        np.clip(out, F32(x.min()), F32(x.max()), out=out)
    return _saturate(out, x.dtype) if x.dtype.kind in "ui" else out.astype(x.dtype, copy=False)


def _saturate(values: Array, dtype: DTypeLike) -> Array:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return values.astype(dt, copy=False)
    lo, hi = dtypes.int_range(dt)
    out = np.rint(values)
    np.clip(out, lo, hi, out=out)
    return out.astype(dt)


def crop(x: Array, top: int, left: int, height: int, width: int) -> Array:
    """The window ``[top:top+height, left:left+width]`` as a new array."""
    h, w = x.shape[:2]
    if height > h or width > w:
        raise ValueError(f"cannot crop {height}x{width} from an image of {h}x{w}")
    return np.array(x[top:top + height, left:left + width], copy=True)


def center_crop(x: Array, height: int, width: int) -> Array:
    """The centred ``height`` x ``width`` window (Keras/torchvision rounding: floor of half)."""
    h, w = x.shape[:2]
    return crop(x, max(0, (h - height) // 2), max(0, (w - width) // 2), height, width)


def spline_overshoot(order: int) -> float:
    """A bound on the Lebesgue constant of cardinal spline interpolation of ``order``.

    Resampled values lie within ``mid +- bound * width / 2`` of the input interval.
    Order 0 and 1 interpolate convexly (bound 1); the constants of orders 2-5 lie below 2.
    """
    return 1.0 if order <= 1 else 2.0

