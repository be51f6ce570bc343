"""The two entry points: :func:`probe` (headers only) and :func:`decode` (pixels).

Both pick the reader from the file's magic bytes, never from its extension, and both raise only
:class:`DecodeError` (or its subclass :class:`LossyDecodeError`) for a bad file, plus
:class:`MissingDependencyError` when reading DICOM without pydicom.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DecodeError
from ._files import SNIFF_BYTES, open_source, read_source, sniff_format
from .info import ImageInfo

__all__ = ["decode", "probe"]


def _unsupported(path, head: bytes) -> DecodeError:
    return DecodeError(
        path, "unsupported", f"unknown file signature {head[:8]!r}; not PNG, JPEG, BMP, GIF, netpbm, TIFF or DICOM"
    )


def _is_bitmap(head: bytes) -> bool:
    from .netpbm import BITMAP_MAGICS

    return head[:2] in BITMAP_MAGICS


def probe(path: str | os.PathLike) -> ImageInfo:
    """Read the header of an image file without decoding its pixel data.

    Args:
        path: the file; format detected from its magic bytes.

    Returns:
        The :class:`ImageInfo` that :func:`decode` would return for this file (DICOM colour
        files may differ in ``photometric``: decode reports the converted colour space).

    Raises:
        DecodeError: the file is missing, unreadable, empty, truncated in its header, corrupt,
            of an unsupported format, or larger than the pixel limit.
        LossyDecodeError: the file could only be decoded lossily.
        MissingDependencyError: a DICOM file and pydicom is not installed.
    """
    with open_source(path) as handle:
        try:
            head = handle.read(SNIFF_BYTES)
            handle.seek(0)
        except OSError as exc:
            raise DecodeError(path, "corrupt", f"cannot read: {exc}") from exc
        fmt = sniff_format(head, path)
        if fmt == "png":
            from .png import probe_png

            return probe_png(path, handle)
        if fmt == "tiff":
            from .tiff import probe_tiff

            return probe_tiff(path, handle)
        if fmt == "dicom":
            from .dicom import probe_dicom

            return probe_dicom(path, handle)
        if fmt == "ppm" and not _is_bitmap(head):
            from .netpbm import probe_netpbm

            return probe_netpbm(path, handle)
        if fmt is not None:
            from ._pillow import probe_pillow

            return probe_pillow(path, handle, fmt)
        raise _unsupported(path, head)


def decode(path: str | os.PathLike, *, modality_lut: bool = False) -> tuple[np.ndarray, ImageInfo]:
    """Decode the first frame of an image file without losing bits.

    Args:
        path: the file; format detected from its magic bytes (a PNG named ``.jpg`` is a PNG).
        modality_lut: DICOM only: apply the modality LUT (RescaleSlope/Intercept) to grayscale
            images, giving modality units (see :mod:`preproc.io.dicom` for the dtype).

    Returns:
        ``(array, info)``: ``array`` has shape ``(H, W, C)``, native byte order and the file's
        own container dtype (``uint8``, ``uint16``, ``int16``, ``float32``, ...): nothing is
        scaled or clipped. ``info`` describes the array.

    Raises:
        DecodeError: with ``reason`` one of :data:`preproc.io.DECODE_REASONS`.
        LossyDecodeError: the file can only be read by losing bits or channels.
        MissingDependencyError: a DICOM file and pydicom is not installed.
    """
    data = read_source(path)
    fmt = sniff_format(data[:SNIFF_BYTES], path)
    if fmt == "png":
        from .png import decode_png

        return decode_png(path, data)
    if fmt == "tiff":
        from .tiff import decode_tiff

        return decode_tiff(path, data)
    if fmt == "dicom":
        from .dicom import decode_dicom

        return decode_dicom(path, data, modality_lut=modality_lut)
    if fmt == "ppm" and not _is_bitmap(data):
        from .netpbm import decode_netpbm

        return decode_netpbm(path, data)
    if fmt is not None:
        from ._pillow import decode_pillow

        return decode_pillow(path, data, fmt)
    raise _unsupported(path, data)
