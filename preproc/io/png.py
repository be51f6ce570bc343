"""PNG: header probe by chunk parsing, and lossless decoding of every bit depth and colour type.

Routing (see :func:`decode_png`): the image data is always inflated here (ISA-L where installed,
see :mod:`preproc.io.inflate`). 8-bit images, 8-bit palette indices and 16-bit grayscale are then
reconstructed by Pillow's C unfilter, which keeps them exactly (16-bit gray arrives as mode
``I;16``); so are 16-bit RGB and RGBA, in two passes that each keep one byte of every sample
(Pillow has no 16-bit colour mode). What is left goes through :mod:`preproc.io.pngfilter`:
16-bit gray+alpha and 1/2/4-bit images (Pillow scales 2/4-bit gray to 0-255 and gives 1-bit as
bool).

Decisions:
    * Bit depths below 8 decode to ``uint8`` holding the stored values 0..2**b-1, not scaled
      to the 8-bit range, with ``stored_bits = b``.
    * Palette images expand to ``uint8`` RGB, or RGBA when a tRNS chunk is present;
      ``stored_bits`` is 8 (palette entries are 8-bit), ``extra['palette_bits']`` the index depth.
    * Gray and RGB images keep their channels even with a tRNS colour key; the key is in
      ``extra['transparency']``.
    * ``stored_bits`` is the largest sBIT value when an sBIT chunk is present (per channel in
      ``extra['sbit']``), else the IHDR bit depth. An sBIT that is out of range is ignored and
      reported in ``extra['sbit_invalid']``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..dtypes import dtype_range
from ..errors import DecodeError
from ..types import Array, StrPath
from . import pngfilter
from ._files import PNG_SIGNATURE, check_info_budget, check_pixel_limit
from .inflate import CorruptStream, TruncatedStream, crc32, inflate, stored_stream
from .info import ImageInfo

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PngHeader", "decode_png", "parse_png", "pillow_image", "pillow_keeps", "probe_png"]

_VALID_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PHOTOMETRIC = {0: "gray", 2: "rgb", 4: "gray+alpha", 6: "rgba"}
_MAX_DIMENSION = 2**31 - 1
#: Inflated image data above this size is read by Pillow itself, streaming: the inflate-here
#: path holds the inflated rows and their stored-block copy at once (so its extra memory stays
#: under 128 MiB), and Pillow's zlib glue counts one call's input in 32 bits.
_FAST_PATH_MAX_BYTES = 64 << 20
#: 16-bit colour types Pillow can unfilter although it has no 16-bit colour mode (see
#: :func:`_reconstruct_16bit_colour`); gray+alpha has no little-endian unpacker and stays in NumPy
_PILLOW_16BIT_COLOUR = {2: "RGB", 6: "RGBA"}
#: (bit depth, colour type) -> (Pillow mode, raw mode) of the images Pillow reconstructs unchanged
_PILLOW_MODES = {
    (8, 0): ("L", "L"),
    (8, 2): ("RGB", "RGB"),
    (8, 4): ("LA", "LA"),
    (8, 6): ("RGBA", "RGBA"),
    (16, 0): ("I;16", "I;16B"),
}


@dataclass
class PngHeader:
    """Facts from the chunks before the image data."""

    width: int = 0
    height: int = 0
    bit_depth: int = 0
    color_type: int = 0
    interlaced: bool = False
    palette: bytes | None = None
    trns: bytes | None = None
    sbit: bytes | None = None
    frames: int = 1
    idat: list[bytes] = field(default_factory=list)


def _chunk_error(path: StrPath, message: str) -> DecodeError:
    return DecodeError(path, "corrupt", message)


def _parse_ihdr(path: StrPath, data: bytes, header: PngHeader) -> None:
    if len(data) != 13:
        raise _chunk_error(path, f"IHDR has {len(data)} bytes, expected 13")
    w, h, depth, ctype, compression, filt, interlace = struct.unpack(">IIBBBBB", data)
    if not (0 < w <= _MAX_DIMENSION and 0 < h <= _MAX_DIMENSION):
        raise _chunk_error(path, f"invalid size {w}x{h}")
    if depth not in _VALID_DEPTHS.get(ctype, ()):
        raise _chunk_error(path, f"invalid bit depth {depth} for colour type {ctype}")
    if compression or filt or interlace > 1:
        raise _chunk_error(path, "unknown compression, filter or interlace method")
    header.width, header.height, header.bit_depth, header.color_type = w, h, depth, ctype
    header.interlaced = bool(interlace)


def _reader(source: BinaryIO | bytes) -> Callable[[int], bytes]:
    """A ``read(n)`` over an open file or a bytes object."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        return source.read
    view = memoryview(source)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = view[pos : pos + n]
        pos += n
        return bytes(chunk)

    return read


def _store_chunk(path: StrPath, header: PngHeader, kind: bytes, data: bytes) -> None:
    if kind == b"IHDR":
        _parse_ihdr(path, data, header)
    elif kind == b"PLTE":
        if header.color_type == 3 and not 3 <= len(data) <= 3 * 256:
            raise _chunk_error(path, f"PLTE has {len(data)} bytes; a palette holds 1-256 entries")
        header.palette = data
    elif kind == b"tRNS":
        header.trns = data
    elif kind == b"sBIT":
        header.sbit = data
    elif kind == b"acTL" and len(data) >= 4:
        header.frames = max(1, struct.unpack(">I", data[:4])[0])
    elif kind == b"IDAT":
        header.idat.append(data)


def parse_png(path: StrPath, source: BinaryIO | bytes, *, read_pixels: bool) -> PngHeader:
    """Walk the chunks of a PNG.

    Args:
        path: for error messages.
        source: an open binary file positioned at 0, or the whole file as ``bytes``.
        read_pixels: collect the IDAT payloads and verify every CRC up to IEND; when false, stop
            at the first IDAT (probe: a few hundred bytes are read).

    Raises:
        DecodeError: ``truncated`` when the file ends inside a chunk or before IEND,
            ``corrupt`` for bad signatures, CRCs, chunk order or IHDR fields.
    """
    read = _reader(source)
    if read(8) != PNG_SIGNATURE:
        raise DecodeError(path, "corrupt", "not a PNG signature")
    header = PngHeader()
    while True:
        head = read(8)
        if len(head) < 8:
            raise DecodeError(path, "truncated", "file ends before the IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        if length > _MAX_DIMENSION:
            raise _chunk_error(path, f"chunk length {length} out of range")
        if header.width == 0 and kind != b"IHDR":
            raise _chunk_error(path, "first chunk is not IHDR")
        if kind == b"IEND" or (kind == b"IDAT" and not read_pixels):
            break
        body = read(length + 4)
        if len(body) < length + 4:
            raise DecodeError(path, "truncated", f"file ends inside a {kind!r} chunk")
        data, crc = body[:length], struct.unpack(">I", body[length:])[0]
        if crc32(data, crc32(kind)) != crc:
            raise _chunk_error(path, f"CRC mismatch in {kind.decode('latin-1')} chunk")
        _store_chunk(path, header, kind, data)
    if header.color_type == 3 and header.palette is None:
        raise _chunk_error(path, "palette image without a PLTE chunk")
    if read_pixels and not header.idat:
        raise _chunk_error(path, "no IDAT chunk")
    return header


def _info(path: StrPath, h: PngHeader) -> ImageInfo:
    extra: dict[str, Any] = {"bit_depth": h.bit_depth, "interlaced": h.interlaced}
    stored = 8 if h.color_type == 3 else h.bit_depth
    if h.sbit is not None:
        limit = stored
        values = tuple(h.sbit)
        if values and all(0 < v <= limit for v in values):
            extra["sbit"] = values
            stored = max(values)
        else:
            extra["sbit_invalid"] = values
    if h.color_type == 3:
        extra["palette_bits"] = h.bit_depth
        channels = 4 if h.trns is not None else 3
        photometric = "rgba" if h.trns is not None else "rgb"
    else:
        channels = pngfilter.SAMPLES_PER_PIXEL[h.color_type]
        photometric = _PHOTOMETRIC[h.color_type]
        if h.trns is not None:
            extra["transparency"] = tuple(
                struct.unpack(f">{len(h.trns) // 2}H", h.trns[: len(h.trns) // 2 * 2])
            )
    return ImageInfo(
        path=str(path),
        format="png",
        dtype="uint16" if h.bit_depth == 16 else "uint8",
        channels=channels,
        height=h.height,
        width=h.width,
        stored_bits=stored,
        photometric=photometric,
        frames=h.frames,
        extra=extra,
    )


def probe_png(path: StrPath, handle: BinaryIO) -> ImageInfo:
    """Header facts of a PNG from the chunks before the first IDAT; no pixel data is read."""
    header = parse_png(path, handle, read_pixels=False)
    check_pixel_limit(path, header.height, header.width)
    info = _info(path, header)
    check_info_budget(info)
    return info


def _expand_palette(indices: Array, header: PngHeader) -> Array:
    """``uint8`` indices ``(h, w, 1)`` to RGB or RGBA; indices past the palette read as black."""
    palette = header.palette
    assert palette is not None  # parse_png refuses a palette image without a PLTE chunk
    entries = np.frombuffer(palette, np.uint8)[: len(palette) // 3 * 3].reshape(-1, 3)
    table = np.zeros((256, 4 if header.trns is not None else 3), np.uint8)
    table[: len(entries), :3] = entries
    if header.trns is not None:
        table[:, 3] = int(dtype_range(np.uint8)[1])  # entries without tRNS alpha are opaque
        alpha = np.frombuffer(header.trns, np.uint8)[:256]
        table[: len(alpha), 3] = alpha
    expanded: Array = table[indices[:, :, 0]]
    return expanded


def _inflate(path: StrPath, header: PngHeader) -> bytes:
    try:
        return inflate(b"".join(header.idat), _raw_size(header))
    except TruncatedStream as exc:
        raise DecodeError(path, "truncated", str(exc)) from exc
    except CorruptStream as exc:
        raise DecodeError(path, "corrupt", f"image data: {exc}") from exc
    except MemoryError as exc:
        raise DecodeError(path, "decompression-bomb", f"out of memory: {exc}") from exc


def pillow_keeps(bit_depth: int, color_type: int) -> bool:
    """Whether :func:`pillow_image` returns images of this IHDR bit depth and colour type."""
    return (bit_depth, color_type) in _PILLOW_MODES


def pillow_image(path: StrPath, header: PngHeader, data: bytes) -> Image.Image | None:
    """The pixels of a parsed PNG as a loaded ``PIL.Image``, for the modes Pillow keeps exactly.

    The image data is inflated here (ISA-L, see :mod:`preproc.io.inflate`) and reconstructed by
    Pillow's C unfilter, Adam7 included; a gray or RGB colour key (tRNS) is set in
    ``image.info['transparency']`` as ``PIL.Image.open`` does, so ``convert('RGBA')`` applies it.
    Images with more than 64 MiB of inflated data are read by Pillow from ``data`` instead,
    streaming (see :data:`_FAST_PATH_MAX_BYTES`). Returns ``None`` for 16-bit colour, sub-byte
    depths and palettes, which Pillow would alter or which need their palette applied.

    Args:
        path: for error messages.
        header: from :func:`parse_png` with ``read_pixels=True``.
        data: the whole file.

    Raises:
        DecodeError: ``truncated`` or ``corrupt`` image data, ``decompression-bomb`` when
            memory runs out.
    """
    if not pillow_keeps(header.bit_depth, header.color_type):
        return None
    modes = _PILLOW_MODES[(header.bit_depth, header.color_type)]
    if _raw_size(header) > _FAST_PATH_MAX_BYTES:
        return _pillow_streaming(path, data, modes[0])
    image = _reconstruct_in_pillow(path, header, *modes)
    _keep_colour_key(image, header)
    return image


def _raw_size(header: PngHeader) -> int:
    return pngfilter.data_size(
        header.height, header.width, header.bit_depth, header.color_type, header.interlaced
    )


def _keep_colour_key(image: Image.Image, header: PngHeader) -> None:
    """tRNS of a gray or RGB image into ``image.info``, in ``PIL.Image.open``'s form."""
    trns = header.trns
    if trns is None or header.color_type not in (0, 2):
        return
    if header.color_type == 0 and len(trns) >= 2:
        image.info["transparency"] = struct.unpack(">H", trns[:2])[0]
    elif header.color_type == 2 and len(trns) >= 6:
        image.info["transparency"] = struct.unpack(">3H", trns[:6])


def _pillow_streaming(path: StrPath, data: bytes, mode: str) -> Image.Image:
    """Pillow's own PNG reader, for images too large for the inflate-here path."""
    from ._pillow import open_image, pillow_errors

    with pillow_errors(path):
        image: Image.Image = open_image(io.BytesIO(data))
        image.load()
    if image.mode != mode and not (mode == "I;16" and image.mode in ("I;16B", "I;16L")):
        raise DecodeError(path, "unsupported", f"Pillow reads this PNG as mode {image.mode!r}")
    return image


def _reconstruct_in_pillow(
    path: StrPath, header: PngHeader, mode: str, rawmode: str
) -> Image.Image:
    from ._pillow import pillow_errors

    raw = _inflate(path, header)
    with pillow_errors(path):  # MemoryError included: decompression-bomb
        stream = stored_stream(raw)
        del raw  # the peak is the inflated data plus its copy, bounded by the 64 MiB limit
        return _unfilter(header, stream, mode, rawmode)


def _unfilter(header: PngHeader, stream: bytes, mode: str, rawmode: str) -> Image.Image:
    """Pillow's PNG decoder on a stored-block stream: unfilter (and de-interlace), then unpack."""
    from PIL import Image

    size = (header.width, header.height)
    return Image.frombytes(mode, size, stream, "zip", rawmode, int(header.interlaced))


def _reconstruct_16bit_colour(path: StrPath, header: PngHeader, raw: bytes, mode: str) -> Array:
    """16-bit RGB or RGBA samples, unfiltered by Pillow's C code in two passes.

    The unfilter works on whole 6- or 8-byte pixels whatever the unpacking after it. Unpacking
    the samples as big-endian (``RGB;16B``) keeps the high byte of each, as little-endian
    (``RGB;16L``) the byte Pillow then takes for the high one, which in PNG's big-endian data is
    the low byte; together they are the 16-bit samples. On Average and Paeth rows this is ~3x
    faster than the NumPy unfilter, which sweeps them diagonal by diagonal.
    """
    from ._pillow import pillow_errors

    with pillow_errors(path):  # MemoryError included: decompression-bomb
        stream = stored_stream(raw)
        high, low = (np.asarray(_unfilter(header, stream, mode, f"{mode};16{order}"))
                     for order in "BL")
        samples = high.astype(np.uint16) << 8
        samples |= low
    return samples


def _row_filters_only(raw: bytes, header: PngHeader) -> bool:
    """Whether every row of a non-interlaced image uses None, Sub or Up (NumPy's fast case)."""
    if header.interlaced:
        return False
    rows = np.frombuffer(raw, np.uint8)[:: len(raw) // header.height]
    return int(rows.max()) < 3  # 3 and 4: Average and Paeth need the left neighbour's result


def decode_png(
    path: StrPath, data: bytes, *, as_image: bool = False
) -> tuple[Array | Image.Image, ImageInfo]:
    """Decode a PNG held in ``data`` losslessly.

    Args:
        path: for error messages.
        data: the whole file.
        as_image: 8-bit gray, gray+alpha, RGB and RGBA pixels come as the loaded ``PIL.Image``
            they were reconstructed into instead of an array (see
            ``preproc.io.read(path, "pillow-or-array")``).

    Returns:
        ``(H, W, C)`` array: ``uint16`` for 16-bit files, else ``uint8`` (values 0..2**b-1 for
        b-bit gray; palette expanded to RGB/RGBA), or that ``PIL.Image``; and its
        :class:`ImageInfo`.

    Raises:
        DecodeError: ``truncated``, ``corrupt``, ``decompression-bomb`` (also when memory runs
            out).
    """
    header = parse_png(path, data, read_pixels=True)
    info = _info(path, header)
    check_pixel_limit(path, header.height, header.width)
    check_info_budget(info)
    image = pillow_image(path, header, data)
    if image is not None:
        from ._pillow import EIGHT_BIT_MODES, image_to_array, pillow_errors

        if as_image and image.mode in EIGHT_BIT_MODES:
            return image, info
        with pillow_errors(path):
            return image_to_array(path, image, info), info
    small = _raw_size(header) <= _FAST_PATH_MAX_BYTES
    if small and header.color_type == 3 and header.bit_depth == 8:  # indices: Pillow unfilters
        indices = np.asarray(_reconstruct_in_pillow(path, header, "L", "L"))[:, :, None]
        return np.ascontiguousarray(_expand_palette(indices, header)), info
    raw = _inflate(path, header)
    mode = _PILLOW_16BIT_COLOUR.get(header.color_type) if header.bit_depth == 16 else None
    if small and mode is not None and not _row_filters_only(raw, header):
        return _reconstruct_16bit_colour(path, header, raw, mode), info
    try:
        array = pngfilter.reconstruct(
            raw,
            height=header.height,
            width=header.width,
            bit_depth=header.bit_depth,
            color_type=header.color_type,
            interlaced=header.interlaced,
        )
    except pngfilter.FilterError as exc:
        raise DecodeError(path, "corrupt", f"image data: {exc}") from exc
    except MemoryError as exc:
        raise DecodeError(path, "decompression-bomb", f"out of memory: {exc}") from exc
    if header.color_type == 3:
        array = _expand_palette(array, header)
    return np.ascontiguousarray(array), info
