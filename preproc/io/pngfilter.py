"""Lossless PNG pixel reconstruction in NumPy: unfilter, de-interlace, unpack.

Pillow reduces 16-bit gray+alpha PNGs to 8 bits and scales 2/4-bit gray to 0-255, so those are
decoded here, as are 16-bit RGB and RGBA images whose rows use only None, Sub and Up, or whose
inflated data is too large for :mod:`preproc.io.png`'s two-pass Pillow route. The five PNG
filters are undone per pass:

* None, Sub and Up need no inter-pixel recursion beyond a cumulative sum, so rows using only
  those are reconstructed row by row with whole-row NumPy operations (``uint8`` arithmetic wraps
  modulo 256, which is exactly PNG's byte arithmetic).
* Average and Paeth depend on the reconstructed left neighbour *and* the row above. Pixel
  ``(r, i)`` needs ``(r, i-1)``, ``(r-1, i)`` and ``(r-1, i-1)``, all on earlier anti-diagonals
  ``r + i``, so a pass containing them is swept diagonal by diagonal: every step reconstructs
  one pixel of every row at once, ``height + width - 1`` steps in all.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["ADAM7", "SAMPLES_PER_PIXEL", "data_size", "reconstruct", "unfilter"]

#: Samples per pixel of each PNG colour type (palette images hold one index).
SAMPLES_PER_PIXEL = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

#: Adam7 passes: (x start, y start, x step, y step).
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)

_NONE, _SUB, _UP, _AVERAGE, _PAETH = range(5)


class FilterError(ValueError):
    """The image data is inconsistent (bad filter type, short stream)."""


def _row_bytes(width: int, bits_per_pixel: int) -> int:
    return (width * bits_per_pixel + 7) // 8


def _passes(
    height: int, width: int, interlaced: bool
) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Yield ``(x0, y0, dx, dy, pass_height, pass_width)`` of each non-empty pass."""
    for x0, y0, dx, dy in ADAM7 if interlaced else ((0, 0, 1, 1),):
        pw = (width - x0 + dx - 1) // dx if width > x0 else 0
        ph = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pw and ph:
            yield x0, y0, dx, dy, ph, pw


def _unfilter_rows(ftypes: np.ndarray, data: np.ndarray, bpp: int) -> np.ndarray:
    """Rows using only None, Sub and Up: one vectorized operation per row."""
    height, nbytes = data.shape
    out = np.empty_like(data)
    prior = np.zeros(nbytes, np.uint8)
    for r in range(height):
        f = ftypes[r]
        if f == _NONE:
            out[r] = data[r]
        elif f == _SUB:
            np.cumsum(data[r].reshape(-1, bpp), axis=0, dtype=np.uint8, out=out[r].reshape(-1, bpp))
        else:  # _UP
            np.add(data[r], prior, out=out[r])
        prior = out[r]
    return out


def _unfilter_diagonal(ftypes: np.ndarray, data: np.ndarray, bpp: int) -> np.ndarray:
    """Any mix of filters, one anti-diagonal of pixels per step."""
    height, nbytes = data.shape
    n = nbytes // bpp
    pixels = data.reshape(height, n, bpp)
    steps = height + n - 1
    rows = np.arange(height)[:, None]
    cols = np.arange(n)[None, :]
    # skewed[t, r] holds raw pixel (r, t - r); recon[t + 2, r + 1] its reconstruction. The
    # extra leading row and diagonals stay zero: they are PNG's "outside the image" bytes.
    skewed = np.zeros((steps, height, bpp), np.uint8)
    skewed[rows + cols, rows] = pixels
    recon = np.zeros((steps + 2, height + 1, bpp), np.uint8)
    kind = ftypes.astype(np.int8)[:, None]
    for t in range(steps):
        r0, r1 = max(0, t - n + 1), min(height - 1, t) + 1
        f = kind[r0:r1]
        a = recon[t + 1, r0 + 1 : r1 + 1].astype(np.int16)
        b = recon[t + 1, r0:r1].astype(np.int16)
        c = recon[t, r0:r1].astype(np.int16)
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.where(
            f == _PAETH,
            paeth,
            np.where(f == _AVERAGE, (a + b) >> 1, np.where(f == _UP, b, np.where(f == _SUB, a, 0))),
        )
        np.add(skewed[t, r0:r1], pred.astype(np.uint8), out=recon[t + 2, r0 + 1 : r1 + 1])
    return recon[rows + cols + 2, rows + 1].reshape(height, nbytes)


def unfilter(block: np.ndarray, bpp: int) -> np.ndarray:
    """Undo PNG filtering of one pass.

    Args:
        block: ``uint8`` array ``(rows, 1 + row_bytes)``; column 0 holds each row's filter type.
        bpp: bytes per complete pixel, at least 1 (PNG's filter unit).

    Returns:
        ``uint8`` array ``(rows, row_bytes)`` of reconstructed bytes.

    Raises:
        FilterError: a filter type outside 0-4.
    """
    ftypes = block[:, 0]
    data = block[:, 1:]
    if ftypes.size and int(ftypes.max()) > _PAETH:
        raise FilterError(f"invalid filter type {int(ftypes.max())}")
    if data.shape[1] % bpp:  # only bit depths below 8 have partial bytes, and they use bpp 1
        raise FilterError("row length is not a whole number of pixels")
    if np.any(ftypes >= _AVERAGE):
        return _unfilter_diagonal(ftypes, data, bpp)
    return _unfilter_rows(ftypes, data, bpp)


def _to_samples(rows: np.ndarray, width: int, samples: int, bit_depth: int) -> np.ndarray:
    """Reconstructed bytes ``(h, row_bytes)`` to native samples ``(h, width, samples)``."""
    height = rows.shape[0]
    if bit_depth == 16:
        values = rows.view(">u2").astype(np.uint16)
    elif bit_depth == 8:
        values = rows
    else:
        per_byte = 8 // bit_depth
        shifts = np.arange(per_byte - 1, -1, -1, dtype=np.uint8) * bit_depth
        mask = np.uint8((1 << bit_depth) - 1)
        values = ((rows[:, :, None] >> shifts) & mask).reshape(height, -1)
    return values[:, : width * samples].reshape(height, width, samples)


def data_size(height: int, width: int, bit_depth: int, color_type: int, interlaced: bool) -> int:
    """Bytes of inflated image data (filter bytes included) that the IHDR fields imply."""
    bits_pp = SAMPLES_PER_PIXEL[color_type] * bit_depth
    return sum(ph * (1 + _row_bytes(pw, bits_pp)) for *_, ph, pw in _passes(height, width, interlaced))


def reconstruct(
    raw: bytes, *, height: int, width: int, bit_depth: int, color_type: int, interlaced: bool
) -> np.ndarray:
    """Reconstruct inflated PNG image data into stored samples.

    Args:
        raw: the inflated image data, exactly :func:`data_size` bytes.
        height, width, bit_depth, color_type, interlaced: from IHDR (already validated).

    Returns:
        ``(height, width, samples)`` array: ``uint16`` for 16-bit, else ``uint8`` holding the
        stored values 0..2**bit_depth-1 unscaled (palette images: indices).

    Raises:
        FilterError: bad filter type, or data of another size than the header implies.
    """
    samples = SAMPLES_PER_PIXEL[color_type]
    bits_pp = samples * bit_depth
    bpp = max(1, bits_pp // 8)
    expected = data_size(height, width, bit_depth, color_type, interlaced)
    if len(raw) != expected:
        raise FilterError(f"image data holds {len(raw)} bytes, the header implies {expected}")
    buffer = np.frombuffer(raw, np.uint8)
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    if not interlaced:
        block = buffer.reshape(height, -1)
        return _to_samples(unfilter(block, bpp), width, samples, bit_depth)
    image = np.empty((height, width, samples), dtype)
    offset = 0
    for x0, y0, dx, dy, ph, pw in _passes(height, width, interlaced):
        size = ph * (1 + _row_bytes(pw, bits_pp))
        block = buffer[offset : offset + size].reshape(ph, -1)
        offset += size
        image[y0::dy, x0::dx] = _to_samples(unfilter(block, bpp), pw, samples, bit_depth)
    return image
