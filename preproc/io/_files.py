"""Opening source files read-only, mapping OS errors to :class:`DecodeError`, sniffing formats."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..errors import DecodeError
from ..types import StrPath
from .info import PNG_SIGNATURE, ImageInfo, os_error_reason

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "PNG_SIGNATURE",
    "check_info_budget",
    "check_pixel_limit",
    "is_dicom_file",
    "max_image_bytes",
    "open_source",
    "read_bounded",
    "read_source",
    "set_max_image_bytes",
    "sniff_format",
]

#: The default decode budget: bytes of one decoded image (``source.max_image_bytes``).
DEFAULT_MAX_IMAGE_BYTES = 512 << 20
_BUDGET = {"bytes": DEFAULT_MAX_IMAGE_BYTES}

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NETPBM_MAGICS = tuple(b"P%d" % n for n in range(1, 7))
_DICOM_EXTENSIONS = ("dcm", "dicom")
#: Bytes :func:`sniff_format` needs: the DICOM preamble is 128 bytes, then ``DICM``.
SNIFF_BYTES = 132


def _os_error(path: StrPath, exc: OSError) -> DecodeError:
    reason = os_error_reason(exc, default="corrupt")
    if isinstance(exc, IsADirectoryError):
        return DecodeError(path, reason, "is a directory")
    return DecodeError(path, reason, str(exc) if reason != "corrupt" else f"cannot open: {exc}")


@contextmanager
def open_source(path: StrPath) -> Iterator[BinaryIO]:
    """Open ``path`` read-only after checking it is a non-empty regular file.

    Raises:
        DecodeError: ``not-found``, ``not-a-file``, ``symlink-loop``, ``permission-denied``,
            ``empty``.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block a read forever
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise DecodeError(path, "not-a-file", kind)
    if st.st_size == 0:
        raise DecodeError(path, "empty", "the file has 0 bytes")
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _os_error(path, exc) from exc
    with handle:
        yield handle


def read_source(path: StrPath) -> bytes:
    """Return the whole content of ``path`` (see :func:`open_source` for the errors).

    Raises:
        DecodeError: also ``decompression-bomb`` for a file larger than :func:`read_limit`.
    """
    with open_source(path) as handle:
        return read_bounded(path, handle)


def read_limit() -> int:
    """Bytes a reader may load before any header is validated: the decode budget plus room
    for headers, metadata and incompressible data (an eighth of it, at least 16 MiB)."""
    budget = _BUDGET["bytes"]
    return budget + max(16 << 20, budget // 8)


def read_bounded(path: StrPath, handle: BinaryIO) -> bytes:
    """The rest of ``handle``, refused as ``decompression-bomb`` before reading when the file is
    larger than :func:`read_limit` (a huge or sparse file is never read whole)."""
    limit = read_limit()
    try:
        size = os.fstat(handle.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = None
    if size is not None and size > limit:
        raise _too_big(path, f"the file has {size} bytes, more than the {limit} bytes")
    try:
        data = handle.read(limit + 1)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    if len(data) > limit:  # grew while being read
        raise _too_big(path, f"the file has more than {limit} bytes, the limit of")
    return data


def _too_big(path: StrPath, what: str) -> DecodeError:
    return DecodeError(path, "decompression-bomb",
                       f"{what} read for source.max_image_bytes = {_BUDGET['bytes']}; raise "
                       "source.max_image_bytes if the file is trusted")


def sniff_format(head: bytes, path: StrPath) -> str | None:
    """Format name from the first :data:`SNIFF_BYTES` bytes, else ``None``.

    Extensions only matter for DICOM files without the 128-byte preamble, which have no magic.
    """
    if head[128:132] == b"DICM":  # first: a DICOM preamble may hold a TIFF header
        return "dicom"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(_TIFF_MAGICS):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:2] in _NETPBM_MAGICS and len(head) > 2 and head[2:3].isspace():
        return "ppm"
    if str(path).lower().rsplit(".", 1)[-1] in _DICOM_EXTENSIONS:
        return "dicom"
    return None


def is_dicom_file(path: StrPath) -> bool:
    """Whether ``path`` is a readable file with the DICOM marker ``DICM`` at byte 128.

    Never raises; meant for extension-less files found while listing a dataset.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never block on a FIFO
            return False
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except (OSError, ValueError):
        return False
    return head[128:132] == b"DICM"


def max_pixels() -> int | None:
    """The pixel limit shared by every decoder: Pillow's ``Image.MAX_IMAGE_PIXELS``."""
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def max_image_bytes() -> int:
    """The decode budget in force: bytes one decoded image may take."""
    return _BUDGET["bytes"]


def set_max_image_bytes(value: int | None) -> int:
    """Set the decode budget of this process (and of workers forked later); ``None`` restores
    the default. Returns the previous value."""
    old = _BUDGET["bytes"]
    _BUDGET["bytes"] = DEFAULT_MAX_IMAGE_BYTES if value is None else int(value)
    return old


def check_pixel_limit(
    path: StrPath, height: int, width: int, channels: int = 1, itemsize: int = 1
) -> None:
    """Raise ``DecodeError('decompression-bomb')`` when an image is larger than the limits.

    Two limits: Pillow's pixel count (``PIL.Image.MAX_IMAGE_PIXELS``) and the decode budget in
    bytes (``height x width x channels x itemsize`` against ``source.max_image_bytes``). Called
    with header values before any pixel buffer is allocated.
    """
    nbytes = int(height) * int(width) * max(1, int(channels)) * max(1, int(itemsize))
    budget = _BUDGET["bytes"]
    if nbytes > budget:
        raise DecodeError(
            path,
            "decompression-bomb",
            f"{width}x{height}x{channels} samples of {itemsize} byte(s) decode to {nbytes} bytes, "
            f"more than source.max_image_bytes = {budget}; raise it if the file is trusted",
        )
    limit = max_pixels()
    pixels = int(height) * int(width)
    if limit is not None and pixels > limit:
        raise DecodeError(
            path,
            "decompression-bomb",
            f"{width}x{height} = {pixels} pixels exceeds the limit of {limit} "
            "(PIL.Image.MAX_IMAGE_PIXELS); raise that limit if the file is trusted",
        )


def check_info_budget(info: ImageInfo) -> None:
    """:func:`check_pixel_limit` for a header's :class:`~preproc.io.info.ImageInfo`."""
    import numpy as np

    check_pixel_limit(info.path, info.height, info.width, info.channels,
                      np.dtype(info.dtype).itemsize)
