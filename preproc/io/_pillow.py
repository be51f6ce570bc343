"""Formats read through Pillow (JPEG, BMP, GIF, PBM); PNG pixels are inflated by
:mod:`preproc.io.png` and only unfiltered by Pillow.

Only modes Pillow hands over without loss are accepted; anything reachable only through an 8-bit
or colour-space conversion raises :class:`LossyDecodeError`. Pillow's exceptions and its
decompression-bomb warning never escape: they become :class:`DecodeError` with the original
message in ``detail``.
"""

from __future__ import annotations

import dataclasses

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..errors import DecodeError, LossyDecodeError
from ._files import check_info_budget, check_pixel_limit
from ..types import Array
from .info import EIGHT_BIT_MODES, ImageInfo

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .readers import Source

__all__ = [
    "EIGHT_BIT_MODES",
    "decode_pillow",
    "image_to_array",
    "jpeg_precision",
    "pillow_errors",
    "probe_pillow",
]

#: Pillow mode -> (channels, photometric, numpy dtype, stored bits).
_LOSSLESS_MODES = {
    "1": (1, "gray", "uint8", 1),
    "L": (1, "gray", "uint8", 8),
    "LA": (2, "gray+alpha", "uint8", 8),
    "RGB": (3, "rgb", "uint8", 8),
    "RGBA": (4, "rgba", "uint8", 8),
    "I;16": (1, "gray", "uint16", 16),
    "I;16L": (1, "gray", "uint16", 16),
    "I;16B": (1, "gray", "uint16", 16),
    "I": (1, "gray", "int32", 32),
    "F": (1, "gray", "float32", 32),
}
_PALETTE_MODES = ("P", "PA")


@contextmanager
def pillow_errors(path: Source) -> Iterator[None]:
    """Turn whatever Pillow raises or warns about into :class:`DecodeError`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(str(path), "decompression-bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise DecodeError(str(path), "corrupt", str(exc)) from exc
    except MemoryError as exc:
        raise DecodeError(str(path), "decompression-bomb", f"out of memory: {exc}") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        reason = "truncated" if "truncat" in str(exc).lower() else "corrupt"
        raise DecodeError(str(path), reason, f"{type(exc).__name__}: {exc}") from exc


def _mode_facts(path: Source, image: PILImage.Image) -> tuple[int, str, str, int]:
    mode = image.mode
    if mode in _PALETTE_MODES:
        alpha = mode == "PA" or "transparency" in image.info
        return (4, "rgba", "uint8", 8) if alpha else (3, "rgb", "uint8", 8)
    if mode in _LOSSLESS_MODES:
        return _LOSSLESS_MODES[mode]
    raise LossyDecodeError(
        str(path),
        "lossy",
        f"Pillow opens this {image.format} file as mode {mode!r}, which can only be turned into "
        "gray or RGB by a lossy conversion",
    )


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_precision(data: bytes) -> int | None:
    """Sample precision from a JPEG's SOF segment (8 or 12 usually), ``None`` if not found."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS:
            return data[pos + 4] if pos + 4 < len(data) else None
        if marker == 0xDA:  # start of scan: no SOF before it
            return None
        pos += 2 + length
    return None


def _unsupported_precision(path: Source, data: bytes) -> None:
    bits = jpeg_precision(data)
    if bits is not None and bits > 8:
        raise DecodeError(
            str(path),
            "unsupported",
            f"{bits}-bit JPEG: Pillow reads only 8-bit JPEG, and no lossless reader is available",
        )


def _jpeg_precision(path: Source, image: PILImage.Image) -> int:
    bits = getattr(image, "bits", 8)
    return int(bits) if bits else 8


def _info_from_image(path: Source, image: PILImage.Image, fmt: str) -> ImageInfo:
    channels, photometric, dtype, bits = _mode_facts(path, image)
    extra: dict[str, Any] = {"pillow_mode": image.mode}
    if fmt == "jpeg":
        bits = _jpeg_precision(path, image)
    if "transparency" in image.info and image.mode not in _PALETTE_MODES:
        extra["transparency"] = image.info["transparency"]
    width, height = image.size
    return ImageInfo(
        path=str(path),
        format=fmt,
        dtype=dtype,
        channels=channels,
        height=height,
        width=width,
        stored_bits=bits,
        photometric=photometric,
        signed=np.dtype(dtype).kind == "i",
        frames=int(getattr(image, "n_frames", 1) or 1),
        extra=extra,
    )


def open_image(handle: BinaryIO) -> PILImage.Image:
    """``PIL.Image.open`` imported lazily (lazy: reads the header only)."""
    from PIL import Image

    image = Image.open(handle)
    return image


def probe_pillow(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    """Header facts via ``PIL.Image.open`` (lazy: no pixel data is decoded)."""
    if fmt == "jpeg":
        _unsupported_precision(path, handle.read(1 << 16))
        handle.seek(0)
    with pillow_errors(path):
        image = open_image(handle)
        with image:
            check_pixel_limit(path, image.size[1], image.size[0])
            info = _info_from_image(path, image, fmt)
            check_info_budget(info)
            return info


def image_to_array(path: Source, image: PILImage.Image, info: ImageInfo) -> Array:
    """A loaded Pillow image as the ``(H, W, C)`` array that ``info`` describes."""
    if image.mode in _PALETTE_MODES:
        image = image.convert("RGBA" if info.channels == 4 else "RGB")
    array = np.asarray(image)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)  # mode '1': 0/1, not 0/255
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype.name != info.dtype or array.shape[2] != info.channels:
        raise DecodeError(str(path), "unsupported", f"Pillow gave {array.dtype}x{array.shape[2]}")
    return np.ascontiguousarray(array)


def decode_pillow(
    path: Source, data: bytes, fmt: str, *, as_image: bool = False,
    draft: tuple[int, int] | None = None,
) -> tuple[PILImage.Image | Array, ImageInfo]:
    """Decode the first frame of a JPEG, BMP, GIF or PBM file held in ``data``.

    With ``as_image``, pixels in one of :data:`EIGHT_BIT_MODES` come as the loaded image.

    Returns:
        ``(H, W, C)`` array in the container Pillow decodes losslessly (``uint8`` for 8-bit
        data; ``uint8`` 0/1 for bilevel images; palette expanded to RGB/RGBA) and its info.

    Raises:
        DecodeError: ``corrupt``, ``truncated``, ``decompression-bomb``, ``unsupported`` (e.g.
            12-bit JPEG, which Pillow cannot read at all: not lossy, unreadable).
        LossyDecodeError: modes such as CMYK that only a lossy conversion could turn into
            gray or RGB.
    """
    if fmt == "jpeg":
        _unsupported_precision(path, data)
    with pillow_errors(path), open_image(io.BytesIO(data)) as image:
        check_pixel_limit(path, image.size[1], image.size[0])
        info = _info_from_image(path, image, fmt)
        check_info_budget(info)
        if draft is not None and fmt == "jpeg":  # scale 1/2..1/8 still covering (w, h)
            drafted = image.draft(image.mode, draft)
            if drafted is not None and drafted[1][2] < info.width:  # box: the source at 1/s
                scale = round(info.width / drafted[1][2])
                info = dataclasses.replace(info, extra={**info.extra, "draft_scale": scale})
        image.load()
        if as_image and image.mode in EIGHT_BIT_MODES:
            return image, info
        return image_to_array(path, image, info), info
