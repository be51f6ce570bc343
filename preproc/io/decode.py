"""The two entry points: :func:`probe` (headers only) and :func:`decode` (pixels).

Both pick the reader from the file's magic bytes, never from its extension, and both raise only
:class:`DecodeError` (or its subclass :class:`LossyDecodeError`) for a bad file, plus
:class:`MissingDependencyError` when reading DICOM without pydicom.
"""

from __future__ import annotations

import os
from importlib import import_module

import numpy as np

from ..errors import DecodeError
from ._files import SNIFF_BYTES, open_source, read_source, sniff_format
from .info import ImageInfo

__all__ = ["decode", "probe", "read_pixels"]


def _unsupported(path, head: bytes) -> DecodeError:
    return DecodeError(
        path,
        "unsupported",
        f"unknown file signature {head[:8]!r}; not PNG, JPEG, BMP, GIF, netpbm, TIFF or DICOM",
    )


#: format -> module of this package holding ``probe_<module>`` and ``decode_<module>``.
_READERS = {"png": "png", "tiff": "tiff", "dicom": "dicom", "ppm": "netpbm"}


def _reader(path, head: bytes):
    """``(format, module, suffix)`` of the reader for a file starting with ``head``."""
    fmt = sniff_format(head, path)
    if fmt is None:
        raise _unsupported(path, head)
    module = _READERS.get(fmt, "_pillow")
    if module == "netpbm" and head[:2] in (b"P1", b"P4"):  # bitmaps: Pillow reads them as 0/1
        module = "_pillow"
    name = "pillow" if module == "_pillow" else module
    return fmt, import_module(f".{module}", __package__), name


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
        fmt, module, name = _reader(path, head)
        if name == "pillow":
            return module.probe_pillow(path, handle, fmt)
        return getattr(module, f"probe_{name}")(path, handle)


def decode(path: str | os.PathLike, *, modality_lut: bool = False, dicom=None,
           frame: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode the first frame (or frame ``frame``) of an image file without losing bits.

    Args:
        path: the file; format detected from its magic bytes (a PNG named ``.jpg`` is a PNG).
        modality_lut: DICOM only: apply the modality LUT (RescaleSlope/Intercept) to grayscale
            images, giving modality units (see :mod:`preproc.io.dicom` for the dtype).
        dicom: DICOM only: what grayscale pixels should mean, an object with the attributes
            of the config's ``source.dicom`` (``modality_lut``, ``voi``, ``monochrome1``);
            replaces ``modality_lut`` (see :func:`preproc.io.dicom.decode_dicom`).
        frame: 0-based frame of a multi-frame DICOM file; other formats only have frame 0.

    Returns:
        ``(array, info)``: ``array`` has shape ``(H, W, C)``, native byte order and the file's
        own container dtype (``uint8``, ``uint16``, ``int16``, ``float32``, ...): nothing is
        scaled or clipped. ``info`` describes the array.

    Raises:
        DecodeError: with ``reason`` one of :data:`preproc.io.DECODE_REASONS`.
        LossyDecodeError: the file can only be read by losing bits or channels.
        MissingDependencyError: a DICOM file and pydicom is not installed.
    """
    return _decode(path, read_source(path), modality_lut=modality_lut, as_image=False,
                   dicom=dicom, frame=frame)


def _decode(path, data: bytes, *, modality_lut: bool, as_image: bool, dicom=None,
            frame: int | None = None):
    fmt, module, name = _reader(path, data[:SNIFF_BYTES])
    if frame and name != "dicom":
        raise DecodeError(path, "no-frame", f"frame {frame} asked for; a {fmt} file has one")
    if name == "pillow":
        return module.decode_pillow(path, data, fmt, as_image=as_image)
    if name == "png":
        return module.decode_png(path, data, as_image=as_image)
    if name == "dicom":
        return module.decode_dicom(path, data, modality_lut=modality_lut, options=dicom,
                                   frame=frame)
    return getattr(module, f"decode_{name}")(path, data)


def read_pixels(path: str | os.PathLike):
    """:func:`decode`, except that 8-bit pixels may come as the loaded ``PIL.Image``.

    Files whose samples Pillow holds unchanged in mode ``L``, ``LA``, ``RGB`` or ``RGBA`` (8-bit
    PNG, JPEG, BMP, ...; not palette images) are returned as that image, skipping the copy into NumPy; callers that can work
    on Pillow images (the audit takes histograms in Pillow) save that copy. Everything else,
    and every error, is exactly as :func:`decode`.

    Returns:
        ``(pixels, info)``: an ``(H, W, C)`` array or a ``PIL.Image`` of ``info.height`` rows,
        ``info.width`` columns and ``info.channels`` bands of ``uint8``.
    """
    return _decode(path, read_source(path), modality_lut=False, as_image=True)
