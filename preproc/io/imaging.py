"""Colour-mode conversion and resizing: pure functions on ``(H, W, C)`` arrays.

Two paths, one semantics:

* **uint8** goes through Pillow (``convert`` then ``resize``), the very calls Keras'
  ``load_img`` makes, so 8-bit batches equal Keras' element for element;
* **every other dtype** (uint16, signed, float32/64) is converted and resized without losing
  bits: gray -> rgb replicates channels in the container dtype; rgb -> gray uses Pillow's
  ITU-R 601-2 luma weights (``L = (19595 R + 38470 G + 7471 B) / 65536``) in wide integers or
  floats, rounded back, never clipped; resizing runs in float (Pillow mode ``F`` where float32
  holds every value exactly, a NumPy port of Pillow's separable filters in float64 otherwise)
  and the result is clipped to the image's own [min, max], so overshooting kernels (bicubic,
  lanczos) never widen the value interval, then rounded back to the container dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
from PIL import Image

from .. import dtypes
from .info import CHANNELS_BY_COLOR_MODE, PILLOW_MODE_BY_CHANNELS
from ..types import Array

__all__ = [
    "INTERPOLATIONS",
    "alpha_value",
    "convert_color",
    "draft_box",
    "prepare",
    "prepare_pil",
    "resize",
]

#: Pillow's fixed-point ITU-R 601-2 luma weights (they sum to 65536).
_LUMA = (19595, 38470, 7471)


#: a resampling filter: weight of each tap at distance ``x`` (in input pixels, scaled)
Filter: TypeAlias = Callable[[Array], Array]
#: ``(left, top, right, bottom)`` of the region resized
Box: TypeAlias = tuple[float, float, float, float]


def _filter_box(x: Array) -> Array:
    return ((x > -0.5) & (x <= 0.5)).astype(np.float64)


def _filter_bilinear(x: Array) -> Array:
    return np.clip(1.0 - np.abs(x), 0.0, None)


def _filter_hamming(x: Array) -> Array:
    ax = np.abs(x)
    px = np.pi * x
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.sin(px) / px * (0.54 + 0.46 * np.cos(px))
    return np.where(ax == 0, 1.0, np.where(ax >= 1, 0.0, val))


def _filter_bicubic(x: Array, a: float = -0.5) -> Array:
    ax = np.abs(x)
    near = ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0
    far = (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a
    return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))


def _filter_lanczos(x: Array) -> Array:
    return np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)


#: interpolation name -> (Pillow resample, NumPy filter, filter support)
INTERPOLATIONS: dict[str, tuple[Image.Resampling, Filter | None, float]] = {
    "nearest": (Image.Resampling.NEAREST, None, 0.0),
    "box": (Image.Resampling.BOX, _filter_box, 0.5),
    "bilinear": (Image.Resampling.BILINEAR, _filter_bilinear, 1.0),
    "hamming": (Image.Resampling.HAMMING, _filter_hamming, 1.0),
    "bicubic": (Image.Resampling.BICUBIC, _filter_bicubic, 2.0),
    "lanczos": (Image.Resampling.LANCZOS, _filter_lanczos, 3.0),
}


def alpha_value(dtype: Any, bit_depth: int | None = None) -> float:
    """Opaque alpha for an image without one: the top of its declared range.

    Args:
        dtype: container dtype of the image.
        bit_depth: declared meaningful bits (``source.expect.bit_depth`` or the header's); integers
            only, defaults to the container's bits.

    Returns:
        ``2**bit_depth - 1`` for integers, ``1.0`` for floats.
    """
    return dtypes.opaque_alpha(dtype, bit_depth)


def convert_color(x: np.ndarray, color_mode: str, *, alpha: float | None = None) -> np.ndarray:
    """Convert an ``(H, W, C)`` image with 1 to 4 channels to ``color_mode`` without clipping.

    Args:
        x: image, any supported dtype; C is 1 (gray), 2 (gray+alpha), 3 (rgb) or 4 (rgba).
        color_mode: ``'grayscale'``, ``'rgb'`` or ``'rgba'``.
        alpha: value of the alpha channel added to images without one (see
            :func:`alpha_value`); defaults to the top of the container's range.

    Returns:
        ``(H, W, 1|3|4)`` array in ``x``'s dtype; values stay within ``x``'s [min, max] except
        an added alpha channel.
    """
    want = CHANNELS_BY_COLOR_MODE[color_mode]
    c = x.shape[2]
    if c not in PILLOW_MODE_BY_CHANNELS:
        raise ValueError(f"cannot convert an image with {c} channels to {color_mode}")
    if c == want:
        return x
    color = x[..., :3] if c >= 3 else x[..., :1]
    has_alpha = c in (2, 4)
    if want == 1:
        return luma(color) if color.shape[2] == 3 else color
    if color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    if want == 3:
        return np.ascontiguousarray(color)
    if has_alpha:
        a = x[..., -1:]
    else:
        a = np.full(x.shape[:2] + (1,), alpha if alpha is not None else alpha_value(x.dtype),
                    dtype=x.dtype)
    return np.concatenate([color, a], axis=2)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of an ``(H, W, 3)`` image, as Pillow's ``convert('L')`` computes it.

    Integers are weighted in int64 and rounded half up (identical to Pillow on uint8); floats
    are weighted in float64. The result has ``rgb``'s dtype and lies within its [min, max].
    """
    if dtypes.is_float(rgb.dtype):
        w = np.asarray(_LUMA, dtype=np.float64) / 65536.0
        return (rgb.astype(np.float64) @ w)[..., None].astype(rgb.dtype)
    wide = rgb.astype(np.int64)
    acc = wide[..., 0] * _LUMA[0] + wide[..., 1] * _LUMA[1] + wide[..., 2] * _LUMA[2]
    return ((acc + 0x8000) >> 16)[..., None].astype(rgb.dtype)


def crop_box(width: int, height: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """Centre crop with the target's aspect ratio, as Keras' ``keep_aspect_ratio`` computes it.

    Args:
        width, height: the image's size.
        target: ``(target_height, target_width)``.

    Returns:
        ``(left, top, right, bottom)`` in pixels.
    """
    th, tw = target
    crop_h = min(height, (width * th) // tw)
    crop_w = min(width, (height * tw) // th)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return (left, top, left + crop_w, top + crop_h)


def resize(
    x: np.ndarray,
    target: tuple[int, int],
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> np.ndarray:
    """Resize an ``(H, W, C)`` image to ``target = (height, width)`` with Pillow's semantics.

    Args:
        x: image of any supported dtype.
        target: output ``(height, width)``.
        interpolation: a key of :data:`INTERPOLATIONS`.
        keep_aspect_ratio: centre-crop to the target's aspect ratio first (Keras semantics).

    Returns:
        ``(th, tw, C)`` array in ``x``'s dtype. uint8 equals Pillow's result; other dtypes are
        resampled in float and clipped to ``x``'s own [min, max] (the interval never widens).
    """
    h, w = x.shape[:2]
    if (h, w) == tuple(target):
        return x
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; "
                         f"expected one of {', '.join(INTERPOLATIONS)}")
    box = crop_box(w, h, target) if keep_aspect_ratio else (0, 0, w, h)
    if x.dtype == np.uint8:
        return _resize_pillow_uint8(x, target, interpolation, box)
    if interpolation == "nearest":
        rows = _nearest_index(h, target[0], box[1], box[3])
        cols = _nearest_index(w, target[1], box[0], box[2])
        picked: Array = x[rows][:, cols]
        return picked
    if dtypes.is_exact_in_float32(x.dtype):
        res = _resize_pillow_f(x, target, interpolation, box)
    else:
        res = _resize_numpy(x, target, interpolation, box)
    return _back_to(res, x)


def _back_to(res: np.ndarray, like: np.ndarray) -> np.ndarray:
    lo, hi = (np.nanmin(like), np.nanmax(like)) if like.dtype.kind == "f" else (like.min(), like.max())
    if dtypes.is_integer(like.dtype):
        res = np.rint(res, out=res)
    np.clip(res, lo, hi, out=res)
    return res.astype(like.dtype)


def _resize_pillow_uint8(x: Array, target: tuple[int, int], interpolation: str,
                         box: Box) -> Array:
    img = Image.fromarray(x[..., 0] if x.shape[2] == 1 else x, PILLOW_MODE_BY_CHANNELS[x.shape[2]])
    out = np.asarray(img.resize((target[1], target[0]), INTERPOLATIONS[interpolation][0], box=box))
    return out[..., None] if out.ndim == 2 else out


def _resize_pillow_f(x: Array, target: tuple[int, int], interpolation: str,
                     box: Box) -> Array:
    resample = INTERPOLATIONS[interpolation][0]
    out = np.empty((target[0], target[1], x.shape[2]), dtype=np.float32)
    for c in range(x.shape[2]):
        img = Image.fromarray(np.ascontiguousarray(x[..., c], dtype=np.float32))
        out[..., c] = np.asarray(img.resize((target[1], target[0]), resample, box=box))
    return out


def _nearest_index(n_in: int, n_out: int, start: float, stop: float) -> np.ndarray:
    """Source index of each output pixel, accumulated in float64 as Pillow's affine sampler does."""
    scale = (stop - start) / n_out
    steps = np.full(n_out, scale)
    steps[0] = start + 0.5 * scale
    return np.clip(np.add.accumulate(steps).astype(np.int64), 0, n_in - 1)


def _coefficients(n_in: int, n_out: int, start: float, stop: float, interpolation: str) -> np.ndarray:
    """Dense ``(n_out, n_in)`` resampling matrix with Pillow's antialiasing filter weights."""
    _, fn, support = INTERPOLATIONS[interpolation]
    if fn is None:
        raise ValueError(f"{interpolation!r} samples pixels; it has no filter weights")
    scale = (stop - start) / n_out
    filterscale = max(scale, 1.0)
    support = support * filterscale
    k = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = start + (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        wts = fn((taps - center + 0.5) / filterscale)
        total = wts.sum()
        k[i, lo:hi] = wts / total if total else wts
    return k


def _resize_numpy(x: Array, target: tuple[int, int], interpolation: str, box: Box) -> Array:
    """Float64 separable resampling for dtypes float32 cannot hold exactly (float64, int32...)."""
    kh = _coefficients(x.shape[0], target[0], box[1], box[3], interpolation)
    kw = _coefficients(x.shape[1], target[1], box[0], box[2], interpolation)
    wide = x.astype(np.float64)
    out: Array = np.einsum("oh,hwc->owc", kh, np.einsum("pw,hwc->hpc", kw, wide), optimize=True)
    return out


def prepare(
    x: np.ndarray,
    color_mode: str,
    target: tuple[int, int] | None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
    bit_depth: int | None = None,
) -> np.ndarray:
    """Colour conversion then resize, in Keras' order (``load_img``: convert, then resize).

    Args:
        x: decoded ``(H, W, C)`` image in its container dtype.
        color_mode: ``'grayscale'``, ``'rgb'`` or ``'rgba'``.
        target: ``(height, width)``, or ``None`` to keep the size.
        interpolation: a key of :data:`INTERPOLATIONS`.
        keep_aspect_ratio: centre-crop to the target aspect ratio before resizing.
        bit_depth: the image's meaningful bits (declared, else its header's): an ``rgba``
            image without alpha gets the top of that range as alpha (:func:`alpha_value`).

    Returns:
        ``(th, tw, 1|3|4)`` array in ``x``'s dtype.
    """
    if x.ndim == 2:
        x = x[..., None]
    if x.dtype == np.uint8 and x.shape[2] in PILLOW_MODE_BY_CHANNELS:
        return _prepare_pillow_uint8(x, color_mode, target, interpolation, keep_aspect_ratio)
    alpha = alpha_value(x.dtype, bit_depth) if color_mode == "rgba" else None
    x = convert_color(x, color_mode, alpha=alpha)
    return x if target is None else resize(x, target, interpolation, keep_aspect_ratio)


def _prepare_pillow_uint8(x: Array, color_mode: str, target: tuple[int, int] | None,
                          interpolation: str, keep_aspect_ratio: bool) -> Array:
    img = Image.fromarray(x[..., 0] if x.shape[2] == 1 else x, PILLOW_MODE_BY_CHANNELS[x.shape[2]])
    return prepare_pil(img, color_mode, target, interpolation, keep_aspect_ratio)


def prepare_pil(img: Image.Image, color_mode: str, target: tuple[int, int] | None,
                interpolation: str = "nearest", keep_aspect_ratio: bool = False,
                reducing_gap: float | None = None,
                draft: tuple[int, tuple[int, int]] | None = None) -> Array:
    """:func:`prepare` for an 8-bit ``PIL.Image`` (mode L, LA, RGB or RGBA): Keras' own steps.

    Args:
        reducing_gap: Pillow's ``resize(reducing_gap=...)``: reduce by whole factors first
            (faster, no longer Keras-identical); ``None`` (Keras) resamples in one step.
        draft: ``(s, (width, height))`` when ``img`` is a file of that size decoded at ``1/s``
            (a JPEG draft, ``ImageInfo.extra["draft_scale"]``): the crop and the resize then
            cover the region of the source's pixels (see :func:`draft_box`), not the drafted
            image's rounded-up edge.

    Returns:
        ``(th, tw, 1|3|4)`` uint8 array.
    """
    want = PILLOW_MODE_BY_CHANNELS[CHANNELS_BY_COLOR_MODE[color_mode]]
    if img.mode != want:
        img = img.convert(want)
    if target is not None and img.size != (target[1], target[0]):
        crop = target if keep_aspect_ratio else None
        box: Box | None = (draft_box(*draft, crop) if draft is not None
                           else crop_box(*img.size, target) if crop else None)
        img = img.resize((target[1], target[0]), INTERPOLATIONS[interpolation][0], box=box,
                         reducing_gap=reducing_gap)
    return pil_pixels(img)


def draft_box(scale: int, source_size: tuple[int, int],
              target: tuple[int, int] | None = None) -> Box:
    """The region of an image decoded at ``1/scale`` that holds the source's pixels (a
    ``(width, height)`` file), in the decoded image's own pixels.

    A ``1001`` px wide JPEG drafted at 1/2 is ``501`` px wide (Pillow rounds up), yet its source
    ends at ``500.5``: resizing the whole ``501`` px would shift the picture by up to half a
    drafted pixel. With ``target`` (``(height, width)``, for ``keep_aspect_ratio``) the region
    is the centre crop :func:`crop_box` takes from the source, scaled the same way.
    """
    s = scale
    left, top, right, bottom = (crop_box(*source_size, target) if target is not None
                                else (0, 0, *source_size))
    return (left / s, top / s, right / s, bottom / s)


def pil_pixels(img: Image.Image) -> Array:
    """The pixels of an 8-bit image as a read-only ``(H, W, C)`` uint8 view of one buffer.

    Same values as ``np.asarray(img)``, which also goes through ``tobytes`` but costs about twice
    as much on a 224x224 RGB image (its array-interface dict is rebuilt per call).
    """
    w, h = img.size
    out: Array = np.frombuffer(img.tobytes(), np.uint8).reshape(h, w, len(img.getbands()))
    return out
