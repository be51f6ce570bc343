"""TIFF through tifffile: integer and float samples of any width, planar or chunky, either byte
order; first page of multi-page files.

tifffile is imported lazily. Compressions it cannot decode without the optional ``imagecodecs``
package (LZW, PackBits, JPEG, ...) are retried through Pillow, accepted only when Pillow gives
the same dtype and channel count tifffile reports; otherwise ``compressed-unsupported``.

Decisions:
    * ``MinIsWhite`` data is not inverted; ``photometric`` says ``'miniswhite'``.
    * Palette images expand through their 16-bit colormap to ``uint16`` RGB.
    * Separated (CMYK), YCbCr, CIELab and other colour spaces raise :class:`LossyDecodeError`:
      turning them into gray or RGB is a lossy colour conversion.
    * Bilevel (1-bit) images decode to ``uint8`` 0/1 with ``stored_bits = 1``.
"""

from __future__ import annotations

import enum
import io
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..dtypes import normalize_dtype
from ..errors import DecodeError, LossyDecodeError
from ..types import Array, StrPath
from ._files import check_info_budget, check_pixel_limit
from .info import ImageInfo

if TYPE_CHECKING:
    from tifffile import TiffFile, TiffPage

__all__ = ["decode_tiff", "probe_tiff"]

_KEEP = {"MINISBLACK": None, "MINISWHITE": "miniswhite", "RGB": None, "PALETTE": "palette"}
_BY_CHANNELS = {1: "gray", 2: "gray+alpha", 3: "rgb", 4: "rgba"}


def _photometric(path: StrPath, page: TiffPage) -> tuple[str, int]:
    """(photometric, channels after palette expansion) of a tifffile page."""
    import tifffile

    name = _enum_name(tifffile.PHOTOMETRIC, page.photometric).upper()
    samples = int(page.samplesperpixel)
    if name not in _KEEP:
        raise LossyDecodeError(
            path,
            "lossy",
            f"TIFF photometric {name} can only be read as gray or RGB by a lossy colour conversion",
        )
    if name == "PALETTE":
        return "rgb", 3
    if samples > 4:
        raise DecodeError(path, "unsupported", f"{samples} samples per pixel")
    if name == "MINISWHITE":
        return "miniswhite", samples
    return _BY_CHANNELS[samples], samples


def _layout(path: StrPath, page: TiffPage) -> tuple[int, int]:
    axes = page.axes
    if not set(axes) <= set("YXS") or "Y" not in axes or "X" not in axes:
        raise DecodeError(
            path, "unsupported", f"TIFF page with axes {axes!r} (volumetric or tiled depth)"
        )
    return int(page.shape[axes.index("Y")]), int(page.shape[axes.index("X")])


def _enum_name(enum: type[enum.IntEnum], value: int) -> str:
    """Lower-case tifffile enum name of a tag value (tifffile keeps unknown values as ints)."""
    try:
        return enum(int(value)).name.lower()
    except ValueError:
        return str(int(value))


def _page_info(path: StrPath, tif: TiffFile, page: TiffPage) -> ImageInfo:
    import tifffile

    height, width = _layout(path, page)
    check_pixel_limit(path, height, width)
    photometric, channels = _photometric(path, page)
    # tifffile's dtype is None for sample formats it cannot map; np.dtype(None) reads float64
    # there, which numpy's stubs do not allow (kept as it is)
    dtype = ("uint8" if page.dtype == np.bool_
             else normalize_dtype(page.dtype))  # type: ignore[arg-type]
    extra: dict[str, Any] = {
        "compression": _enum_name(tifffile.COMPRESSION, page.compression),
        "planar": _enum_name(tifffile.PLANARCONFIG, page.planarconfig),
        "byteorder": tif.byteorder,
        "sample_format": _enum_name(tifffile.SAMPLEFORMAT, page.sampleformat),
    }
    if photometric == "rgb" and int(page.photometric) == tifffile.PHOTOMETRIC.PALETTE:
        extra["palette_bits"] = int(page.bitspersample)
        dtype = "uint16"
        stored = 16
    else:
        stored = int(page.bitspersample)
    info = ImageInfo(
        path=str(path),
        format="tiff",
        dtype=dtype,
        channels=channels,
        height=height,
        width=width,
        stored_bits=stored,
        photometric=photometric,
        signed=np.dtype(dtype).kind == "i",
        frames=len(tif.pages),
        extra=extra,
    )
    check_info_budget(info)
    return info


def _tiff_errors(path: StrPath, exc: Exception) -> DecodeError:
    text = f"{type(exc).__name__}: {exc}"
    if "imagecodecs" in str(exc) or "COMPRESSION" in str(exc):
        return DecodeError(path, "compressed-unsupported", text + "; install imagecodecs")
    if isinstance(exc, (EOFError,)) or "truncat" in str(exc).lower() or "EOF" in str(exc):
        return DecodeError(path, "truncated", text)
    return DecodeError(path, "corrupt", text)


def _first_page(path: StrPath, tif: TiffFile) -> TiffPage:
    if not len(tif.pages):
        raise DecodeError(path, "corrupt", "TIFF without pages")
    return tif.pages.first


def probe_tiff(path: StrPath, handle: BinaryIO) -> ImageInfo:
    """Header facts of a TIFF's first page from its tags; no strip or tile is read."""
    import tifffile

    try:
        with tifffile.TiffFile(handle) as tif:
            return _page_info(path, tif, _first_page(path, tif))
    except DecodeError:
        raise
    except (
        Exception
    ) as exc:  # tifffile raises TiffFileError, ValueError, KeyError, struct.error ...
        raise _tiff_errors(path, exc) from exc


def _check_extent(path: StrPath, page: TiffPage, size: int) -> None:
    """tifffile fills missing strips with zeros; a file that ends early is an error here."""
    for offset, count in zip(page.dataoffsets, page.databytecounts):
        if count and offset + count > size:
            raise DecodeError(
                path, "truncated", f"image data at {offset}+{count} past end of file ({size})"
            )


def _to_hwc(page: TiffPage, array: Array) -> Array:
    axes = page.axes
    if "S" not in axes:
        return array[:, :, None]
    return np.moveaxis(array, axes.index("S"), -1) if axes.index("S") != 2 else array


def _pillow_fallback(path: StrPath, data: bytes, info: ImageInfo, cause: DecodeError) -> Array:
    from ._pillow import open_image, pillow_errors

    with pillow_errors(path), open_image(io.BytesIO(data)) as image:
        image.load()
        array = np.asarray(image)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    array = array.astype(array.dtype.newbyteorder("="), copy=False)  # Pillow keeps I;16B big-endian
    array = array.reshape(info.height, info.width, -1)
    if array.dtype.name != info.dtype or array.shape[2] != info.channels:
        raise cause
    return array


def decode_tiff(path: StrPath, data: bytes) -> tuple[Array, ImageInfo]:
    """Decode the first page of a TIFF held in ``data``.

    Returns:
        ``(H, W, C)`` array in the file's sample type (``uint8``..``uint32``, ``int8``..
        ``int32``, ``float32``, ``float64``), native byte order; ``uint8`` 0/1 for bilevel;
        ``uint16`` RGB for palette images.

    Raises:
        DecodeError: ``corrupt``, ``truncated``, ``unsupported``, ``compressed-unsupported``,
            ``decompression-bomb``.
        LossyDecodeError: colour spaces other than gray, RGB and palette.
    """
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = _first_page(path, tif)
            info = _page_info(path, tif, page)
            _check_extent(path, page, len(data))
            try:
                array = page.asarray()
            except Exception as exc:
                cause = _tiff_errors(path, exc)
                if cause.reason != "compressed-unsupported":
                    raise cause from exc
                return _pillow_fallback(path, data, info, cause), info
            if int(page.photometric) == tifffile.PHOTOMETRIC.PALETTE:
                colormap = page.colormap
                if colormap is None:  # tifffile has no colormap for this page: as corrupt as before
                    raise DecodeError(path, "corrupt", "palette TIFF without a colormap")
                array = np.moveaxis(colormap[:, array], 0, -1).astype(np.uint16)
            else:
                array = _to_hwc(page, array)
    except DecodeError:
        raise
    except Exception as exc:
        raise _tiff_errors(path, exc) from exc
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.shape != (info.height, info.width, info.channels):
        raise DecodeError(path, "corrupt", f"decoded shape {array.shape} does not match the tags")
    return np.ascontiguousarray(array), info
