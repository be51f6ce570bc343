"""zlib streams of PNG files: inflate, checksums, and the hand-over to Pillow's unfilter.

Inflating the image data is most of the cost of reading a PNG (about 3 ms of 3.7 for a 400 KB
RGB image with the zlib that Python and Pillow use). ISA-L's inflate, through ``python-isal``,
does the same work 2-3x faster, so PNG pixels are inflated here and only the reconstruction
(PNG's per-row filters, in C) is left to Pillow: the inflated rows are handed to Pillow's PNG
decoder wrapped in *stored* deflate blocks, which it copies instead of decompressing. Where
``python-isal`` is not installed, the standard library's zlib does the inflating; the results
are identical either way.
"""

from __future__ import annotations

import struct
import zlib
from typing import Protocol


class Inflater(Protocol):
    """A decompressor object of a zlib-like module (``zlib.decompressobj()``)."""

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


class ZlibModule(Protocol):
    """What this module uses of ``zlib`` or ISA-L's ``isal_zlib``."""

    def crc32(self, data: bytes, value: int = 0, /) -> int: ...

    def adler32(self, data: bytes, value: int = 1, /) -> int: ...

    def decompressobj(self) -> Inflater: ...


_zlib: ZlibModule
try:
    from isal import isal_zlib

    _zlib = isal_zlib
    BACKEND = "isal"
except ImportError:  # pragma: no cover - isal is a dependency; this keeps exotic platforms going
    _zlib = zlib
    BACKEND = "zlib"

__all__ = [
    "BACKEND",
    "CorruptStream",
    "Inflater",
    "TruncatedStream",
    "ZlibModule",
    "crc32",
    "inflate",
    "stored_stream",
]

_STORED_MAX = 0xFFFF  # a stored deflate block holds at most 65,535 bytes


class TruncatedStream(EOFError):
    """The zlib stream ends before the data the header announces."""


class CorruptStream(ValueError):
    """The zlib stream is invalid, or holds less data than announced although complete."""


def crc32(data: bytes, value: int = 0) -> int:
    """CRC-32 as in zlib (PNG chunk checksums)."""
    return _zlib.crc32(data, value)


def inflate(compressed: bytes, expected: int, *, backend: ZlibModule | None = None) -> bytes:
    """Inflate a zlib stream, producing at most ``expected`` bytes.

    The bound is what makes a zlib bomb harmless: output beyond what the header announces is
    never produced.

    Args:
        compressed: a whole zlib stream (header, deflate data, Adler-32).
        expected: bytes the caller needs.
        backend: a zlib-like module, for tests; default ISA-L when installed, else zlib.

    Raises:
        TruncatedStream: the stream stops early.
        CorruptStream: the stream is invalid, or ends (complete) with fewer bytes than expected.
        MemoryError: as raised, for the caller to report.
    """
    module = backend or _zlib
    inflater = module.decompressobj()
    try:
        raw = inflater.decompress(compressed, expected)
    except MemoryError:
        raise
    except Exception as exc:  # zlib.error, isal's IsalError: both mean invalid data
        raise CorruptStream(f"invalid zlib data ({exc})") from exc
    if len(raw) < expected:
        if not inflater.eof:
            raise TruncatedStream(f"image data stream ends after {len(raw)} of {expected} bytes")
        raise CorruptStream(f"image data holds {len(raw)} bytes, the header implies {expected}")
    return raw


def stored_stream(raw: bytes) -> bytes:
    """``raw`` as a zlib stream of stored (uncompressed) blocks, which inflates at copy speed."""
    view = memoryview(raw)
    size = len(raw)
    parts: list[bytes | memoryview] = [b"\x78\x01"]
    for start in range(0, size, _STORED_MAX):
        length = min(_STORED_MAX, size - start)
        final = 1 if start + length >= size else 0
        parts.append(struct.pack("<BHH", final, length, length ^ 0xFFFF))
        parts.append(view[start : start + length])
    if not size:
        parts.append(struct.pack("<BHH", 1, 0, 0xFFFF))
    parts.append(struct.pack(">I", _zlib.adler32(raw)))
    return b"".join(parts)
