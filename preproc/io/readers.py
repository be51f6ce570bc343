"""The one entrance for reading an image file: :func:`read`, over the table :data:`READERS`.

The route is decided once: the file's magic bytes name its format (never its extension, except
for DICOM files without a preamble), the format names its reader in :data:`READERS`, and
``want`` says how much of the file to read. A reader's own choices (PNG's inflate-here path or
Pillow's streaming reader for very large images, TIFF's Pillow fallback) are made inside the
reader from the header, never by trying one way and re-reading the file another way: every
error a reader raises reaches the caller.

Readers import their heavy libraries (tifffile, pydicom, Pillow) on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, TypeAlias, overload

from ..errors import DecodeError
from ._files import SNIFF_BYTES, open_source, read_source, sniff_format
from .info import ImageInfo

__all__ = ["READERS", "WANTS", "FormatReader", "decode", "probe", "read"]

#: What :func:`read` can return, from the least work to the most general.
WANTS = ("header", "pillow-or-array", "array")

Want = Literal["header", "pillow-or-array", "array"]
#: A file name as the readers take it.
Source: TypeAlias = "str | os.PathLike[str]"
#: What ``decode`` returns: ``(pixels, info)``, pixels an array or a loaded ``PIL.Image``.
Decoded: TypeAlias = tuple[Any, ImageInfo]


@dataclass(frozen=True)
class FormatReader:
    """How one format is read.

    Attributes:
        probe: ``probe(path, handle, fmt) -> ImageInfo`` from the header alone; ``handle`` is
            the open file at offset 0.
        decode: ``decode(path, data, fmt, *, as_image, **options) -> (pixels, info)`` for the
            whole file in ``data``. With ``as_image``, pixels Pillow holds unchanged in an 8-bit
            mode (:data:`preproc.io.info.EIGHT_BIT_MODES`) may come as the loaded ``PIL.Image``.
        options: keyword options of ``decode`` beyond ``as_image`` (e.g. DICOM's
            ``modality_lut``); :func:`read` passes each reader only the options it declares.
    """

    probe: Callable[..., ImageInfo]
    decode: Callable[..., Decoded]
    options: frozenset[str] = field(default_factory=frozenset)


def _probe_png(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    from .png import probe_png

    return probe_png(path, handle)


def _decode_png(path: Source, data: bytes, fmt: str, *, as_image: bool) -> Decoded:
    from .png import decode_png

    return decode_png(path, data, as_image=as_image)


def _probe_pillow(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    from ._pillow import probe_pillow

    return probe_pillow(path, handle, fmt)


def _decode_pillow(
    path: Source, data: bytes, fmt: str, *, as_image: bool, draft: Any = None
) -> Decoded:
    from ._pillow import decode_pillow

    decoded: Decoded = decode_pillow(path, data, fmt, as_image=as_image, draft=draft)
    return decoded


def _probe_tiff(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    from .tiff import probe_tiff

    return probe_tiff(path, handle)


def _decode_tiff(path: Source, data: bytes, fmt: str, *, as_image: bool) -> Decoded:
    from .tiff import decode_tiff

    return decode_tiff(path, data)


def _probe_dicom(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    from .dicom import probe_dicom

    return probe_dicom(path, handle)


def _decode_dicom(
    path: Source,
    data: bytes,
    fmt: str,
    *,
    as_image: bool,
    modality_lut: bool = False,
    dicom: Any = None,
    frame: int | None = None,
) -> Decoded:
    from .dicom import decode_dicom

    decoded: Decoded = decode_dicom(
        path, data, modality_lut=modality_lut, options=dicom, frame=frame
    )
    return decoded


def _is_bitmap(head: bytes) -> bool:
    """PBM (P1/P4): Pillow reads these as 0/1 samples; the netpbm reader takes PGM and PPM."""
    from .netpbm import BITMAP_MAGICS

    return head[:2] in BITMAP_MAGICS


def _probe_netpbm(path: Source, handle: BinaryIO, fmt: str) -> ImageInfo:
    head = handle.read(2)
    handle.seek(0)
    if _is_bitmap(head):
        return _probe_pillow(path, handle, fmt)
    from .netpbm import probe_netpbm

    return probe_netpbm(path, handle)


def _decode_netpbm(path: Source, data: bytes, fmt: str, *, as_image: bool) -> Decoded:
    if _is_bitmap(data):
        return _decode_pillow(path, data, fmt, as_image=as_image)
    from .netpbm import decode_netpbm

    return decode_netpbm(path, data)


_PILLOW = FormatReader(_probe_pillow, _decode_pillow)

#: Format (a value of :data:`preproc.io.FORMATS`) -> its reader.
READERS: dict[str, FormatReader] = {
    "png": FormatReader(_probe_png, _decode_png),
    "jpeg": FormatReader(_probe_pillow, _decode_pillow, frozenset({"draft"})),
    "bmp": _PILLOW,
    "gif": _PILLOW,
    "ppm": FormatReader(_probe_netpbm, _decode_netpbm),
    "tiff": FormatReader(_probe_tiff, _decode_tiff),
    "dicom": FormatReader(
        _probe_dicom, _decode_dicom, frozenset({"modality_lut", "dicom", "frame"})
    ),
}


def _route(path: Source, head: bytes) -> tuple[str, FormatReader]:
    fmt = sniff_format(head, path)
    if fmt is None:
        raise DecodeError(
            os.fspath(path),
            "unsupported",
            f"unknown file signature {head[:8]!r}; not PNG, JPEG, BMP, GIF, netpbm, TIFF or DICOM",
        )
    return fmt, READERS[fmt]


def _check_options(options: dict[str, Any]) -> None:
    known = frozenset().union(*(reader.options for reader in READERS.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"read() got unknown options {unknown}; known: {sorted(known)}")


@overload
def read(path: Source, want: Literal["header"], **options: Any) -> ImageInfo: ...


@overload
def read(
    path: Source, want: Literal["array", "pillow-or-array"] = ..., **options: Any
) -> Decoded: ...


def read(path: Source, want: Want = "array", **options: Any) -> Any:
    """Read an image file: its header, or its first frame's pixels without losing bits.

    Args:
        path: the file; the format comes from its magic bytes (a PNG named ``.jpg`` is a PNG).
        want: ``'header'``: only the :class:`ImageInfo`, no pixel data decoded. ``'array'``:
            ``(array, info)``. ``'pillow-or-array'``: as ``'array'``, except that pixels Pillow
            holds unchanged in mode ``L``, ``LA``, ``RGB`` or ``RGBA`` (8-bit PNG, JPEG, BMP,
            ...; not palette images) come as the loaded ``PIL.Image``, sparing callers that
            work in Pillow (resizing, histograms) a full-size copy.
        **options: format options, passed to the readers that take them (DICOM, see
            :func:`preproc.io.dicom.decode_dicom`): ``modality_lut`` (apply
            RescaleSlope/Intercept to grayscale images), ``dicom`` (an object with the
            attributes of the config's ``source.dicom``: ``modality_lut``, ``voi``,
            ``monochrome1``; replaces ``modality_lut``) and ``frame`` (0-based frame of a
            multi-frame file; a format with one frame raises ``no-frame`` for any other);
            JPEG: ``draft=(width, height)`` decodes at the smallest of the 1/1, 1/2, 1/4, 1/8
            scales still covering that size (Pillow's ``draft``: faster, no longer exact; the
            pixels, not ``info``, are then smaller).

    Returns:
        ``info`` for ``'header'``; else ``(pixels, info)``: pixels of shape ``(H, W, C)`` in
        native byte order and the file's own container dtype (``uint8``, ``uint16``, ``int16``,
        ``float32``, ...), nothing scaled or clipped, or the ``PIL.Image`` of ``info.height``
        rows, ``info.width`` columns and ``info.channels`` bands of ``uint8``. A header's
        ``info`` equals the decoded one except DICOM colour files, whose decoded
        ``photometric`` is the converted colour space.

    Raises:
        DecodeError: the file is missing, unreadable, empty, truncated, corrupt, of an
            unsupported format or larger than the pixel limit; ``reason`` is one of
            :data:`preproc.io.DECODE_REASONS`.
        LossyDecodeError: the file can only be read by losing bits or channels.
        MissingDependencyError: a DICOM file and pydicom is not installed.
        ValueError: ``want`` is not one of :data:`WANTS`.
        TypeError: an option no reader takes.
    """
    if want not in WANTS:
        raise ValueError(f"want must be one of {WANTS}, not {want!r}")
    if options:
        _check_options(options)
    if want == "header":
        with open_source(path) as handle:
            try:
                head = handle.read(SNIFF_BYTES)
                handle.seek(0)
            except OSError as exc:
                raise DecodeError(os.fspath(path), "corrupt", f"cannot read: {exc}") from exc
            fmt, reader = _route(path, head)
            return reader.probe(path, handle, fmt)
    data = read_source(path)
    fmt, reader = _route(path, data[:SNIFF_BYTES])
    frame = options.get("frame")
    if frame and "frame" not in reader.options:
        raise DecodeError(os.fspath(path), "no-frame", f"frame {frame} asked for; a {fmt} file has one")
    mine = {name: value for name, value in options.items() if name in reader.options}
    return reader.decode(path, data, fmt, as_image=want == "pillow-or-array", **mine)


def probe(path: Source) -> ImageInfo:
    """``read(path, "header")``: the header facts, no pixel data decoded."""
    return read(path, "header")


def decode(path: Source, **options: Any) -> Decoded:
    """``read(path, "array", **options)``: ``(array, info)`` of the first frame, no bit lost."""
    return read(path, "array", **options)
