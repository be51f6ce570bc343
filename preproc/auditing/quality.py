"""Image-quality measures of one decoded image, in units of the image's own value range.

Runs in the audit's worker processes, on the pixels the audit already decoded (no second
decode). Every measure is taken on a *working image*: the luminance of the file, normalised to
``[0, 1]`` by the file's declared or effective range (never by 255 unless the file is 8-bit) and
reduced so its longer side is at most :data:`WORK_SIDE` pixels. A 12-bit X-ray whose values
reach 4095 is as bright as an 8-bit photograph reaching 255; a 16-bit file and its 8-bit export
give the same working image, so the same perceptual hash.

Measures (see :func:`image_measures`):

* ``phash``: 64-bit DCT perceptual hash (16 hex digits) of the working image at 32x32, and
  ``phash_center`` the same of its central 90% (so a copy cropped by up to 10% is compared at
  the same scale); ``None`` for a flat image, whose hash would carry no information;
* ``blur``: sharpness, the variance of the Laplacian divided by the variance of the image,
  both on the working image reduced to a longer side of :data:`BLUR_SIDE`; independent of
  brightness, contrast and (mostly) size, low means blurry;
* ``brightness``: mean of the working image (0 black, 1 white), relative to the file's range;
* ``entropy``: Shannon entropy in bits of the working image quantised to 256 levels (0 to 8);
* ``grayscale``: a 3- or 4-channel file whose colour channels are identical everywhere.

The range is recorded as ``level_lo``/``level_hi`` so the parent can re-express brightness
against the dataset's range (a darkened 12-bit image reaching only 1200 keeps its darkness).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HASH_BITS", "WORK_SIDE", "image_measures", "level_range", "phash_of", "working_image"]

#: Longer side of the working image the measures are taken on.
WORK_SIDE = 128
#: Longer side of the image sharpness is measured on: coarse enough that a copy enlarged by
#: interpolation is not "blurry", fine enough that a real blur of a few pixels still shows.
BLUR_SIDE = 64
#: Bits of the perceptual hash.
HASH_BITS = 64
_HASH_SIDE = 32
_LOW = 8
_TINY = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.astype(np.float64)


_DCT = _dct_matrix(_HASH_SIDE)[:_LOW]  # only the low frequencies are kept


def level_range(pixels, dtype: str, stored_bits: int | None, declared: bool,
                effective_bits: int | None, signed: bool | None, lo: float, hi: float):
    """``(lo, hi)``: the value range an image is normalised by.

    Declared stored bits win (PNG sBIT, TIFF BitsPerSample, DICOM BitsStored); 8-bit files use
    their container; wider integers without a declaration use their effective bits (a 16-bit
    PNG holding 12-bit content is normalised by 4095); floats use ``[0, 1]`` when their values
    fit it, else their own minimum and maximum.
    """
    from .. import dtypes

    if dtype is None:
        return 0.0, 1.0
    kind = np.dtype(dtype).kind if dtype != "bool" else "b"
    if kind == "b":
        return 0.0, 1.0
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


def working_image(pixels, lo: float, hi: float) -> np.ndarray:
    """Luminance of ``pixels`` normalised by ``[lo, hi]``, longer side at most :data:`WORK_SIDE`.

    ``pixels`` is an ``HxW``/``HxWxC`` array (a leading frame axis: the first frame) or an 8-bit
    ``PIL.Image``. Returns ``float32`` values, nominally in ``[0, 1]``.
    """
    image, scale = _working(pixels, lo, hi)
    return np.asarray(image, dtype=np.float32) * np.float32(scale)


def _working(pixels, lo: float, hi: float):
    """``(PIL 'F' image, scale)``: the reduced luminance; times ``scale`` it is in ``[0, 1]``.

    8-bit images stay in Pillow (luminance and reduction in C, values 0-255); arrays are
    normalised in NumPy first. Hashes, thumbnails and sharpness do not depend on the scale.
    """
    from PIL import Image

    if not isinstance(pixels, np.ndarray):
        image = pixels if pixels.mode == "L" else pixels.convert("L")
        return _reduce(image).convert("F"), 1.0 / 255.0
    arr = pixels
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3:
        if arr.shape[2] >= 3:
            arr = (arr[..., 0].astype(np.float32) * 0.299 + arr[..., 1].astype(np.float32) * 0.587
                   + arr[..., 2].astype(np.float32) * 0.114)
        else:
            arr = arr[..., 0]
    gray = arr.astype(np.float32)
    if gray.dtype.kind == "f":
        gray = np.nan_to_num(gray, nan=lo, posinf=hi, neginf=lo)
    gray = (gray - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return _reduce(Image.fromarray(np.ascontiguousarray(gray), mode="F")), 1.0


def _reduce(image, limit: int = WORK_SIDE):
    from PIL import Image

    w, h = image.size
    side = max(w, h)
    if side <= limit:
        return image
    scale = limit / side
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.BOX, reducing_gap=2.0 if image.mode == "L" else None)


def phash_of(work) -> int:
    """64-bit DCT hash: the low 8x8 frequencies of the 32x32 image, above their median.

    ``work`` is a 2-D array or a Pillow ``F`` image (any scale: the hash compares coefficients
    with their median, so brightness and contrast do not change it).
    """
    from PIL import Image

    image = work if isinstance(work, Image.Image) else Image.fromarray(
        np.ascontiguousarray(work, dtype=np.float32), mode="F")
    small = np.asarray(image.resize((_HASH_SIDE, _HASH_SIDE), Image.BILINEAR), dtype=np.float64)
    coeffs = _DCT @ small @ _DCT.T
    flat = coeffs.ravel()
    bits = flat > np.median(flat[1:])
    bits[0] = False  # the DC term carries brightness only
    return int(np.packbits(bits).view(">u8")[0])


def tiny_of(image) -> str:
    """The working image (Pillow ``F``) at 8x8, stretched to 0-255, as 128 hex digits: the
    near-duplicate check compares these by correlation after the hashes proposed a pair."""
    from PIL import Image

    small = np.asarray(image.resize((_TINY, _TINY), Image.BOX), dtype=np.float64)
    lo, hi = small.min(), small.max()
    scaled = (small - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(small)
    return np.round(scaled).astype(np.uint8).tobytes().hex()


def center(image, keep: float = 0.9):
    """The central ``keep`` fraction of each side of a Pillow image."""
    w, h = image.size
    dy, dx = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
    return image.crop((dx, dy, w - dx, h - dy)) if h > 4 and w > 4 else image


def _coarse(image) -> np.ndarray:
    return np.asarray(_reduce(image, BLUR_SIDE), dtype=np.float32)


def sharpness(work: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the variance of the image (NaN for flat)."""
    if work.shape[0] < 3 or work.shape[1] < 3:
        return float("nan")
    var = float(work.var())
    if var < 1e-10:
        return float("nan")
    c = work[1:-1, 1:-1]
    lap = work[:-2, 1:-1] + work[2:, 1:-1] + work[1:-1, :-2] + work[1:-1, 2:] - 4.0 * c
    return float(lap.var()) / var


def entropy(work: np.ndarray) -> float:
    """Shannon entropy (bits) of the image quantised to 256 levels over ``[0, 1]``."""
    q = np.clip(work * 255.0 + 0.5, 0, 255).astype(np.uint8)
    counts = np.bincount(q.ravel(), minlength=256)
    p = counts[counts > 0] / q.size
    return float(-(p * np.log2(p)).sum())


def grayscale_in_rgb(pixels) -> bool:
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


def _maybe_gray(rec) -> bool:
    """Equal colour channels have equal means and deviations: a free test that rejects almost
    every colour image before the pixel-by-pixel comparison."""
    mean, std = rec.mean or [], rec.std or []
    return len(mean) >= 3 and mean[0] == mean[1] == mean[2] and std[0] == std[1] == std[2]


def image_measures(pixels, rec) -> dict:
    """Measures of one image for its :class:`~preproc.auditing.records.FileRecord` ``rec``.

    ``rec`` must already hold the header and value fields (dtype, stored bits, effective bits,
    min, max). Returns field values: ``phash``, ``blur``, ``brightness``, ``entropy``,
    ``phash_center``, ``tiny``, ``grayscale``, ``level_lo``, ``level_hi``.
    """
    if rec.min is None or not rec.pixels:
        return {}
    lo, hi = level_range(pixels, rec.dtype, rec.stored_bits, rec.stored_bits_declared,
                         rec.effective_bits, rec.signed, min(rec.min), max(rec.max))
    image, scale = _working(pixels, lo, hi)
    work = np.asarray(image, dtype=np.float32) * np.float32(scale)
    flat = float(work.std()) < 1e-4
    return {
        "phash": None if flat else f"{phash_of(image):016x}",
        "phash_center": None if flat else f"{phash_of(center(image)):016x}",
        "blur": sharpness(_coarse(image)),
        "brightness": float(work.mean()),
        "entropy": entropy(work),
        "tiny": None if flat else tiny_of(image),
        "grayscale": _maybe_gray(rec) and grayscale_in_rgb(pixels),
        "level_lo": lo,
        "level_hi": hi,
    }
