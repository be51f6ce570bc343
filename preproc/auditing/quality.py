"""Image-quality measures of one decoded image, in units of the image's own value range.

Runs in the audit's worker processes, on the pixels the audit already decoded (no second
decode). Every measure is taken on one *working image* made once per file: the luminance of
the file, area-averaged so its longer side is at most :data:`WORK_SIDE` pixels and normalised
to ``[0, 1]`` by the file's declared or effective range (never by 255 unless the file is 8-bit).
The reduction is a separable box filter run on the stored integers (gathered rows times
weights), so no full-resolution float copy is made; the luminance of a colour image is taken
after the reduction (it is linear). A 12-bit X-ray whose values reach 4095 is as bright as an
8-bit photograph reaching 255; a 16-bit file and its 8-bit export give the same working image,
so the same perceptual hash.

Measures (see :func:`image_measures`):

* ``phash``: 64-bit DCT perceptual hash (16 hex digits) of the working image at 32x32, and
  ``phash_center`` the same of its central 90% (a copy cropped by up to 10% around the centre
  is compared at the same scale); ``None`` for a flat image, whose hash would carry no
  information. ``crops`` holds the hashes of the four corner and four edge windows of 90%
  (a copy cropped from a corner or a side matches one of them); transport only;
* ``blur``: sharpness, the variance of the Laplacian divided by the variance of the working
  image; independent of brightness, contrast and (mostly) size, low means blurry;
* ``brightness``: mean of the working image (0 black, 1 white), relative to the file's range;
* ``entropy``: Shannon entropy in bits of the working image quantised to 256 levels (0 to 8);
* ``grayscale``: a 3- or 4-channel file whose colour channels are identical everywhere.

The range is recorded as ``level_lo``/``level_hi`` so the parent can re-express brightness
against the dataset's range (a darkened 12-bit image reaching only 1200 keeps its darkness).

Every hash is two small matrix products with cached matrices (resampling to 32x32 and the low
8x8 DCT folded into one ``8 x n`` matrix per side length), not a resize and a DCT per call.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from .. import dtypes
from ..types import Array

__all__ = ["CENTRE", "CROP_KEEP", "HASH_BITS", "WINDOWS", "WORK_SIDE", "crop_windows", "image_measures",
           "level_range", "measures_of", "phash_of", "prepare", "window_hashes",
           "working_image"]

#: Longer side of the working image the measures are taken on: coarse enough that a copy
#: enlarged by interpolation is not "blurry", fine enough that a real blur of a few pixels
#: still shows, and large enough for 256 entropy levels.
WORK_SIDE = 64
#: Bits of the perceptual hash.
HASH_BITS = 64
#: Fraction of each side the crop windows keep.
CROP_KEEP = 0.9
_HASH_SIDE = 32
_LOW = 8
_TINY = 8
#: Blocks of :func:`_projections`: three window offsets along a side, then the whole side.
_BLOCKS, _WHOLE = 4, 3
#: Of the 16 blocks of :func:`_blocks`, flattened: the whole image, then the 9 windows.
_ORDER = np.array([15, 0, 1, 2, 4, 5, 6, 8, 9, 10])
#: Windows per image (:func:`crop_windows`), and the position of the centre one among them.
WINDOWS, CENTRE = 9, 4
#: ITU-R 601 luminance weights (what Pillow's ``convert('L')`` uses).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _dct_matrix(n: int) -> Array:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


_DCT_LOW = _dct_matrix(_HASH_SIDE)[:_LOW]  # only the low frequencies are kept


def level_range(dtype: str | None, stored_bits: int | None, declared: bool,
                effective_bits: int | None, signed: bool | None, lo: float,
                hi: float) -> tuple[float, float]:
    """``(lo, hi)``: the value range an image is normalised by.

    Declared stored bits win (PNG sBIT, TIFF BitsPerSample, DICOM BitsStored); 8-bit files use
    their container; wider integers without a declaration use their effective bits (a 16-bit
    PNG holding 12-bit content is normalised by 4095); floats use ``[0, 1]`` when their values
    fit it, else their own minimum and maximum.
    """
    if dtype is None or dtype == "bool":
        return 0.0, 1.0
    kind = np.dtype(dtype).kind
    if kind in "ui":
        if declared and stored_bits:
            bits = stored_bits
        elif np.dtype(dtype).itemsize == 1:
            bits = 8
        else:
            bits = effective_bits or dtypes.container_bits(dtype)
        lo_l, hi_l = dtypes.levels_range(bits, bool(signed) or kind == "i")
        return float(lo_l), float(hi_l)
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


# --- resampling ---------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _box_weights(n_in: int, n_out: int) -> Array:
    """``(n_out, n_in)`` area weights: output ``i`` is the exact mean of input ``[i*r, (i+1)*r)``,
    ``r = n_in / n_out``, partial samples weighted by their overlap. Enlarging degrades to
    nearest-neighbour picks."""
    weights = _area(np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out), n_in)
    weights.flags.writeable = False
    return weights


def _area(edges: Array, n_in: int) -> Array:
    """Overlap of each interval ``[edges[i], edges[i + 1]]`` with unit cells ``0 .. n_in - 1``,
    normalised to sum 1 per interval."""
    cells = np.arange(n_in, dtype=np.float64)
    overlap = (np.minimum(cells[None, :] + 1, edges[1:, None])
               - np.maximum(cells[None, :], edges[:-1, None]))
    weights: Array = np.clip(overlap, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights


@lru_cache(maxsize=1024)
def _taps(n_in: int, n_out: int) -> tuple[Array, Array]:
    """:func:`_box_weights` as taps: ``(index, weight)``, each ``(taps, n_out)``; output ``i``
    is ``sum_t weight[t, i] * x[index[t, i]]``. Taps with zero weight everywhere are dropped."""
    weights = _box_weights(n_in, n_out)
    first = np.argmax(weights > 0, axis=1)
    width = int((weights > 0).sum(axis=1).max())
    cols = first[None, :] + np.arange(width)[:, None]
    valid = cols < n_in
    index = np.minimum(cols, n_in - 1)
    picked = (weights[np.arange(n_out)[None, :], index] * valid).astype(np.float32)
    keep = picked.any(axis=1)
    index, picked = index[keep], picked[keep]
    index.flags.writeable = picked.flags.writeable = False
    return index, picked


def _reduce_axis(x: Array, n_out: int, axis: int) -> Array:
    """Area-average axis 0 or 1 of ``x`` (at most twice ``n_out`` long) to ``n_out`` samples."""
    index, weight = _taps(x.shape[axis], n_out)
    shape = (-1,) + (1,) * (x.ndim - 1) if axis == 0 else (1, -1) + (1,) * (x.ndim - 2)
    out: Array = np.take(x, index[0], axis=axis) * weight[0].reshape(shape)
    for idx, w in zip(index[1:], weight[1:]):
        out += np.take(x, idx, axis=axis) * w.reshape(shape)
    return out


def _bin(x: Array, f: int) -> Array:
    """Means of ``f x f`` blocks of ``x`` (``HxW`` or ``HxWxC``), in ``float32``: ``f`` strided
    row slices summed, then ``f`` column slices. Rows and columns past a multiple of ``f`` are
    dropped (fewer than ``f``, under 1/64 of the longer side)."""
    h, w = (x.shape[0] // f) * f, (x.shape[1] // f) * f
    rows = x[0:h:f].astype(np.float32)
    for k in range(1, f):
        rows += x[k:h:f]
    out: Array = rows[:, 0:w:f].copy()
    for k in range(1, f):
        out += rows[:, k:w:f]
    out *= np.float32(1.0 / (f * f))
    return out


def _shrink(x: Array, side: int) -> Array:
    """``x`` (``HxW`` or ``HxWxC``) area-averaged so its longer side is at most ``side``, in
    ``float32``: whole blocks first (:func:`_bin`, no copy in a wider type at full size), then
    a fractional step on the small result when the side is not a multiple of ``side``."""
    # whole blocks no larger than the short side: a 2x300 strip is binned by 2, not emptied
    f = min(max(x.shape[:2]) // side, min(x.shape[:2]))
    small = _bin(x, f) if f >= 2 else x.astype(np.float32)
    h, w = small.shape[:2]
    if max(h, w) <= side:
        return small
    scale = side / max(h, w)
    oh, ow = max(1, round(h * scale)), max(1, round(w * scale))
    rows = _reduce_axis(small, oh, 0) if oh < h else small
    return _reduce_axis(rows, ow, 1) if ow < w else rows


def working_image(pixels: Any, lo: float, hi: float, nonfinite: bool = False) -> Array:
    """Luminance of ``pixels`` normalised by ``[lo, hi]``, longer side at most :data:`WORK_SIDE`.

    Args:
        pixels: an ``HxW``/``HxWxC`` array (with a leading frame axis: the first frame) in its
            stored dtype, or an 8-bit ``PIL.Image`` (mode ``L``, ``LA``, ``RGB`` or ``RGBA``).
        lo, hi: the range that maps to 0 and 1 (:func:`level_range`).
        nonfinite: the float image holds NaN or infinities (replaced by ``lo``/``hi`` first).

    Returns:
        A ``float32`` ``h x w`` array, nominally in ``[0, 1]``.
    """
    arr = pixels if isinstance(pixels, np.ndarray) else _pillow_array(pixels)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] < 3:
        arr = arr[..., 0]
    if arr.dtype.kind == "b":
        arr = arr.view(np.uint8)
    if nonfinite and arr.dtype.kind == "f":
        arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    small = _shrink(arr, WORK_SIDE)
    if small.ndim == 3:  # luminance is linear: take it on the reduced channels
        small = small[..., :3] @ _LUMA
    with np.errstate(invalid="ignore", over="ignore"):  # a range past float32: NaN, measured
        work: Array = (small - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return work


def _pillow_array(image: Any) -> Array:
    """An 8-bit Pillow image as a ``uint8`` array: luminance (Pillow's C conversion) for
    colour, the first band for ``LA``."""
    if image.mode in ("RGB", "RGBA"):
        image = image.convert("L")
    elif image.mode != "L":
        image = image.getchannel(0)
    return np.asarray(image)


# --- hashes -------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _projections(n: int, keep: float = CROP_KEEP) -> tuple[Array, Array]:
    """``(32, n)`` ``float32`` hash and thumbnail projections of a side of ``n`` samples.

    Each is four blocks of 8 rows: the windows at offsets 0, half and all of the margin
    (:func:`crop_windows`), then the whole side. A hash block resamples its span to 32 by area
    and keeps the 8 lowest DCT terms; a thumbnail block takes the 8 area means of its span.
    Applied to both sides of an image, one product gives the coefficients (or thumbnails) of
    every window and of the whole image at once.
    """
    margin = round(n * (1 - keep)) if n > 4 else 0
    spans = [(offset, n - margin) for offset in (0, margin // 2, margin)] + [(0, n)]
    hashes, thumbs = np.zeros((_BLOCKS * _LOW, n)), np.zeros((_BLOCKS * _TINY, n))
    for i, (offset, length) in enumerate(spans):
        hashes[i * _LOW:(i + 1) * _LOW, offset:offset + length] = (
            _DCT_LOW @ _box_weights(length, _HASH_SIDE))
        thumbs[i * _TINY:(i + 1) * _TINY, offset:offset + length] = _box_weights(length, _TINY)
    out = hashes.astype(np.float32), thumbs.astype(np.float32)
    for m in out:
        m.flags.writeable = False
    return out


@lru_cache(maxsize=1024)
def _both(n: int) -> Array:
    """``(64, n)``: the hash projection of :func:`_projections` above its thumbnail projection,
    so one pair of products gives both."""
    out = np.vstack(_projections(n))
    out.flags.writeable = False
    return out


def _split(product: Array) -> Array:
    """``(..., 32, 32)`` products of the projections as ``(..., 4, 4, 8, 8)`` blocks."""
    blocks = product.reshape(*product.shape[:-2], _BLOCKS, _LOW, _BLOCKS, _LOW)
    out: Array = np.swapaxes(blocks, -3, -2)
    return out


def _blocks(work: Array) -> Array:
    """``(4, 4, 8, 8)`` hash coefficients: block ``[i, j]`` is the hash projection's block ``i``
    of the rows times block ``j`` of the columns: ``[:3, :3]`` the windows in
    :func:`crop_windows` order, ``[3, 3]`` the whole image."""
    h, w = work.shape
    rows, cols = _projections(h)[0], _projections(w)[0]
    return _split(rows @ np.asarray(work, dtype=np.float32) @ cols.T)


def _bits(coeffs: Array) -> Array:
    """``(..., 8, 8)`` DCT coefficients to ``uint64`` hashes: each term above the median of the
    63 non-DC terms (the DC term carries brightness only and is always 0)."""
    flat = coeffs.reshape(-1, _LOW * _LOW)
    median = np.sort(flat[:, 1:], axis=1)[:, (_LOW * _LOW - 1) // 2]
    bits = flat > median[:, None]
    bits[:, 0] = False
    hashes: Array = np.packbits(bits, axis=1).view(">u8").astype(np.uint64).ravel()
    return hashes


def phash_of(work: Array) -> int:
    """64-bit DCT hash of a 2-D image (any scale: the hash compares coefficients with their
    median, so brightness and contrast do not change it)."""
    return int(_bits(_blocks(work)[_WHOLE, _WHOLE])[0])


def crop_windows(h: int, w: int, keep: float = CROP_KEEP) -> list[tuple[int, int]]:
    """Top-left corners of the 3x3 grid of windows keeping ``keep`` of each side: row and
    column offsets 0, half and all of the margin. The middle one is the centre window."""
    dy, dx = round(h * (1 - keep)), round(w * (1 - keep))
    return [(oy, ox) for oy in (0, dy // 2, dy) for ox in (0, dx // 2, dx)]


def window_hashes(work: Array) -> Array:
    """``uint64`` hashes of the 9 windows of :func:`crop_windows`, in that order (a side of 4
    pixels or fewer is not cropped)."""
    return _bits(_blocks(work)[:3, :3])


def _stretched(blocks: Array) -> Array:
    """Thumbnail blocks (``(4, 4, 8, 8)``, or a stack of them) in :data:`_ORDER`, each stretched
    to ``uint8`` 0-255: ``(10, 64)``, or ``(B, 10, 64)`` for a stack."""
    lead = blocks.shape[:-4]
    flat = blocks.reshape(*lead, _BLOCKS * _BLOCKS, _TINY * _TINY)[..., _ORDER, :]
    lo = flat.min(axis=-1, keepdims=True)
    flat -= lo
    top = flat.max(axis=-1, keepdims=True)
    flat *= np.float32(255.0) / np.where(top > 0, top, np.float32(1.0))
    quantised: Array = np.rint(flat).astype(np.uint8)
    return quantised


# --- measures -----------------------------------------------------------------------------


def _stack_measures(stack: Array) -> list[dict[str, Any]]:
    """``blur``, ``brightness``, ``entropy`` and the hashes (:func:`image_measures`) of every
    image of a ``(B, h, w)`` ``float32`` stack of working images of one shape.

    The whole stack goes through each step at once (one Laplacian, one histogram, one pair of
    products for every hash and thumbnail): per image, each step is only a few thousand
    operations, so running them image by image would cost more in calls than in arithmetic.
    """
    b = len(stack)
    mean = stack.mean(axis=(1, 2), dtype=np.float64)
    var = _variances(stack, mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        blur = _sharpness(stack, var)
    entropy = _entropies(stack)
    hashed = np.flatnonzero(var >= 1e-8)  # a flat image's hash would carry no information
    hashes = tiny = None
    if len(hashed):
        coeffs, thumbs = _stack_products(stack[hashed])
        hashes = _bits(coeffs.reshape(-1, _BLOCKS * _BLOCKS, _LOW, _LOW)[:, _ORDER]).reshape(
            len(hashed), len(_ORDER))
        tiny = _stretched(thumbs)
    out = []
    row = {int(i): j for j, i in enumerate(hashed)}
    for i in range(b):
        m: dict[str, Any] = {"blur": float(blur[i]), "brightness": float(mean[i]),
                             "entropy": float(entropy[i]), "phash": None,
                             "phash_center": None, "crops": None, "tiny": None}
        j = row.get(i)
        if j is not None and hashes is not None and tiny is not None:
            m["phash"] = f"{int(hashes[j, 0]):016x}"
            m["phash_center"] = f"{int(hashes[j, 1 + CENTRE]):016x}"
            m["crops"] = hashes[j, _CROPS].astype(">u8").tobytes().hex()
            m["tiny"] = tiny[j].tobytes().hex()
        out.append(m)
    return out


def _variances(stack: Array, mean: Array) -> Array:
    """Population variance of each image of a stack: one centred dot product each."""
    centred = stack - mean.astype(np.float32)[:, None, None]
    flat = centred.reshape(len(stack), -1)
    out: Array = np.einsum("bi,bi->b", flat, flat, dtype=np.float64) / flat.shape[1]
    return out


def _sharpness(stack: Array, var: Array) -> Array:
    """Variance of the 4-neighbour Laplacian over the variance of each image; NaN for a flat
    image or one narrower than 3 pixels."""
    if stack.shape[1] < 3 or stack.shape[2] < 3:
        return np.full(len(stack), np.nan)
    lap = stack[:, :-2, 1:-1] + stack[:, 2:, 1:-1]
    lap += stack[:, 1:-1, :-2]
    lap += stack[:, 1:-1, 2:]
    lap -= 4.0 * stack[:, 1:-1, 1:-1]
    lap_var = _variances(lap, lap.mean(axis=(1, 2), dtype=np.float64))
    out: Array = np.where(var < 1e-10, np.nan, lap_var / np.where(var < 1e-10, 1.0, var))
    return out


def _entropies(stack: Array) -> Array:
    """Shannon entropy (bits) of each image quantised to 256 levels over ``[0, 1]``."""
    levels = stack * np.float32(255.0)
    levels += np.float32(0.5)
    np.clip(levels, 0, 255, out=levels)
    np.nan_to_num(levels, copy=False)  # an image whose range overflowed holds NaN: level 0
    index = levels.astype(np.intp).reshape(len(stack), -1)
    index += (np.arange(len(stack)) * 256)[:, None]  # one histogram of 256 bins per image
    counts = np.bincount(index.ravel(), minlength=256 * len(stack)).reshape(len(stack), 256)
    p = counts / index.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, p * np.log2(np.where(counts > 0, p, 1.0)), 0.0)
    out: Array = 0.0 - terms.sum(axis=1)  # 0.0, not -0.0, for a single level
    return out


def _stack_products(stack: Array) -> tuple[Array, Array]:
    """Hash and thumbnail blocks (:func:`_blocks`) of every image of a stack, from one pair of
    products: ``(B, 4, 4, 8, 8)`` each."""
    _, h, w = stack.shape
    product = _both(h) @ stack @ _both(w).T
    half = _BLOCKS * _LOW
    return _split(product[:, :half, :half]), _split(product[:, half:, half:])


def grayscale_in_rgb(pixels: Any) -> bool:
    """A 3- or 4-channel image whose first three channels are equal everywhere."""
    if not isinstance(pixels, np.ndarray):
        if pixels.mode not in ("RGB", "RGBA"):
            return False
        from PIL import ImageChops

        r, g, b = pixels.split()[:3]
        return ImageChops.difference(r, g).getbbox() is None and \
            ImageChops.difference(r, b).getbbox() is None
    if pixels.ndim < 3 or pixels.shape[-1] < 3:
        return False
    return bool(np.array_equal(pixels[..., 0], pixels[..., 1])
                and np.array_equal(pixels[..., 0], pixels[..., 2]))


def _maybe_gray(rec: Any) -> bool:
    """Equal colour channels have equal means and deviations: a free test that rejects almost
    every colour image before the pixel-by-pixel comparison."""
    mean, std = rec.mean or [], rec.std or []
    return len(mean) >= 3 and mean[0] == mean[1] == mean[2] and std[0] == std[1] == std[2]


def prepare(pixels: Any, rec: Any, levels: tuple[float, float] | None = None
            ) -> tuple[Array, dict[str, Any]] | None:
    """The part of :func:`image_measures` that needs the pixels: ``(working image, fields)``
    with ``grayscale``, ``level_lo`` and ``level_hi``; ``None`` when ``rec`` has no values.
    :func:`measures_of` computes the rest from the working images."""
    if rec.min is None or not rec.pixels:
        return None
    lo, hi = levels if levels is not None else level_range(
        rec.dtype, rec.stored_bits, rec.stored_bits_declared, rec.effective_bits, rec.signed,
        min(rec.min), max(rec.max))
    work = working_image(pixels, lo, hi, bool(rec.nonfinite))
    fields = {"grayscale": _maybe_gray(rec) and grayscale_in_rgb(pixels),
              "level_lo": lo, "level_hi": hi}
    return work, fields


def measures_of(works: list[Array]) -> list[dict[str, Any]]:
    """``blur``, ``brightness``, ``entropy``, ``phash``, ``phash_center``, ``crops`` and
    ``tiny`` of each working image (:func:`prepare`), in order; images of one shape are
    measured together (:func:`_stack_measures`)."""
    out: list[dict[str, Any]] = [{} for _ in works]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, work in enumerate(works):
        by_shape.setdefault(work.shape, []).append(i)
    for positions in by_shape.values():
        stack = np.stack([works[i] for i in positions]).astype(np.float32, copy=False)
        for i, measures in zip(positions, _stack_measures(stack)):
            out[i] = measures
    return out


def image_measures(pixels: Any, rec: Any,
                   levels: tuple[float, float] | None = None) -> dict[str, Any]:
    """Measures of one image for its :class:`~preproc.dataset.records.FileRecord` ``rec``.

    ``rec`` must already hold the header and value fields (dtype, stored bits, effective bits,
    min, max). ``levels``: the range that maps to ``[0, 1]`` when the caller knows it (pixels
    already normalised: ``(0, 1)``), instead of :func:`level_range` of the record. Returns field
    values: ``phash``, ``phash_center``, ``crops``, ``blur``, ``brightness``, ``entropy``,
    ``tiny``, ``grayscale``, ``level_lo``, ``level_hi``. An audit measures a chunk of images at
    once with :func:`prepare` and :func:`measures_of`; this is the same for one image.
    """
    prepared = prepare(pixels, rec, levels)
    if prepared is None:
        return {}
    work, fields = prepared
    return {**measures_of([work])[0], **fields}


#: Positions of the 8 crop windows among the 10 hashes (whole image and centre left out).
_CROPS = np.array([1 + i for i in range(WINDOWS) if i != CENTRE])
