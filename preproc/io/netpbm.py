"""Netpbm gray and colour maps (PGM ``P2``/``P5``, PPM ``P3``/``P6``), decoded without scaling.

Pillow rescales samples whose ``maxval`` is not 255 or 65535 and reduces 16-bit PPM to 8 bits,
so these are parsed here. Bitmaps (PBM ``P1``/``P4``) go through Pillow, as 0/1 with 1 white.

Decision: samples keep their stored values in ``[0, maxval]``: ``uint8`` when ``maxval < 256``,
else ``uint16``; ``stored_bits`` is the number of bits ``maxval`` needs (12 for 4095) and
``extra['maxval']`` holds ``maxval`` itself.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..dtypes import bits_needed, dtype_range
from ..errors import DecodeError
from ..types import Array, StrPath
from ._files import check_info_budget, check_pixel_limit
from .info import ImageInfo

__all__ = ["BITMAP_MAGICS", "decode_netpbm", "probe_netpbm"]

BITMAP_MAGICS = (b"P1", b"P4")
_CHANNELS = {b"P2": 1, b"P5": 1, b"P3": 3, b"P6": 3}
_HEADER_LIMIT = 1 << 16


def _tokens(data: bytes, count: int, path: StrPath) -> tuple[list[int], int]:
    """Read ``count`` integers after the magic; return them and the offset of the raster."""
    values: list[int] = []
    pos = 2
    end = len(data)
    while len(values) < count:
        while pos < end and (data[pos : pos + 1].isspace() or data[pos] == ord("#")):
            if data[pos] == ord("#"):
                newline = data.find(b"\n", pos)
                pos = end if newline < 0 else newline
            pos += 1
        start = pos
        while pos < end and data[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            reason = "truncated" if pos >= end else "corrupt"
            raise DecodeError(path, reason, "incomplete netpbm header")
        values.append(int(data[start:pos]))
    if pos >= end or not data[pos : pos + 1].isspace():
        raise DecodeError(
            path, "truncated" if pos >= end else "corrupt", "netpbm header not terminated"
        )
    return values, pos + 1


def _header(path: StrPath, data: bytes) -> tuple[bytes, int, int, int, int]:
    magic = data[:2]
    if magic not in _CHANNELS:
        raise DecodeError(path, "unsupported", f"netpbm variant {magic!r}")
    (width, height, maxval), offset = _tokens(data, 3, path)
    if width < 1 or height < 1:
        raise DecodeError(path, "corrupt", f"invalid size {width}x{height}")
    if not 0 < maxval <= dtype_range(np.uint16)[1]:
        raise DecodeError(path, "corrupt", f"maxval {maxval} outside 1..65535")
    return magic, width, height, maxval, offset


def _info(path: StrPath, magic: bytes, width: int, height: int, maxval: int) -> ImageInfo:
    channels = _CHANNELS[magic]
    return ImageInfo(
        path=str(path),
        format="ppm",
        dtype="uint8" if maxval <= dtype_range(np.uint8)[1] else "uint16",
        channels=channels,
        height=height,
        width=width,
        stored_bits=bits_needed(maxval),
        photometric="gray" if channels == 1 else "rgb",
        extra={"netpbm": magic.decode(), "maxval": maxval},
    )


def probe_netpbm(path: StrPath, handle: BinaryIO) -> ImageInfo:
    """Header facts of a PGM/PPM file (reads the text header only)."""
    magic, width, height, maxval, _ = _header(path, handle.read(_HEADER_LIMIT))
    check_pixel_limit(path, height, width)
    info = _info(path, magic, width, height, maxval)
    check_info_budget(info)
    return info


def decode_netpbm(path: StrPath, data: bytes) -> tuple[Array, ImageInfo]:
    """Decode a PGM/PPM file held in ``data``.

    Returns:
        ``(H, W, 1|3)`` ``uint8`` or ``uint16`` array of the stored values in ``[0, maxval]``.

    Raises:
        DecodeError: ``truncated`` (raster too short), ``corrupt`` (bad header, a sample above
            maxval), ``decompression-bomb``.
    """
    magic, width, height, maxval, offset = _header(path, data)
    check_pixel_limit(path, height, width)
    info = _info(path, magic, width, height, maxval)
    check_info_budget(info)
    count = width * height * info.channels
    if magic in (b"P5", b"P6"):
        big = np.dtype(">u2") if info.dtype == "uint16" else np.dtype(np.uint8)
        raster = data[offset : offset + count * big.itemsize]
        if len(raster) < count * big.itemsize:
            raise DecodeError(
                path, "truncated", f"raster holds {len(raster)} of {count * big.itemsize} bytes"
            )
        values = np.frombuffer(raster, big).astype(info.dtype)
    else:
        try:
            values = np.array(data[offset:].split()[:count], dtype=np.int64)
        except ValueError as exc:
            raise DecodeError(path, "corrupt", f"non-numeric sample: {exc}") from exc
        if values.size < count:
            raise DecodeError(path, "truncated", f"{values.size} of {count} samples")
        if values.min() < 0:
            raise DecodeError(path, "corrupt", "negative sample")
    if values.size and int(values.max()) > maxval:
        raise DecodeError(path, "corrupt", f"sample {int(values.max())} exceeds maxval {maxval}")
    return values.astype(info.dtype).reshape(height, width, info.channels), info
