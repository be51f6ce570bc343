"""What a decoder knows about a file: :class:`ImageInfo`, the supported extensions, the reasons,
and the image facts every layer above shares (PNG signature, 8-bit Pillow modes, channels of a
colour mode, the reason for an OS error). Each is defined here and nowhere else.

This module imports nothing heavy, so ``import preproc.io`` stays cheap.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "CHANNELS_BY_COLOR_MODE",
    "DECODE_REASONS",
    "EIGHT_BIT_MODES",
    "FORMATS",
    "PILLOW_MODE_BY_CHANNELS",
    "PNG_SIGNATURE",
    "SUPPORTED_EXTENSIONS",
    "ImageInfo",
    "os_error_reason",
]

#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Channels -> the Pillow mode holding that many 8-bit samples per pixel unchanged.
PILLOW_MODE_BY_CHANNELS: dict[int, str] = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

#: Pillow modes of 8-bit samples: images in these modes may be handed over as ``PIL.Image``.
EIGHT_BIT_MODES: tuple[str, ...] = tuple(PILLOW_MODE_BY_CHANNELS.values())

#: ``batches.color_mode`` -> channels of the images it makes.
CHANNELS_BY_COLOR_MODE: dict[str, int] = {"grayscale": 1, "rgb": 3, "rgba": 4}

#: Lower-case extensions (no dot) the decoders accept. Format detection itself uses magic bytes.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {"png", "jpg", "jpeg", "bmp", "ppm", "pgm", "pbm", "gif", "tif", "tiff", "dcm"}
)

#: Values of :attr:`ImageInfo.format`.
FORMATS = ("png", "jpeg", "bmp", "ppm", "gif", "tiff", "dicom")

#: Values of :attr:`preproc.errors.DecodeError.reason` raised by this package.
DECODE_REASONS = (
    "empty",  # zero-byte file
    "truncated",  # the file ends before the image data does
    "corrupt",  # bad structure, checksum or compressed stream
    "unsupported",  # not an image format preproc reads, or a variant of one it does not
    "decompression-bomb",  # header claims more pixels than PIL.Image.MAX_IMAGE_PIXELS
    "permission-denied",
    "not-found",  # missing file or dangling symbolic link
    "not-a-file",  # directory, FIFO, device
    "symlink-loop",
    "no-pixel-data",  # DICOM without PixelData
    "compressed-unsupported",  # compression no installed codec handles
    "no-frame",  # a frame index past the file's NumberOfFrames
    "no-voi-window",  # source.dicom.voi: header and the file has no window or VOI LUT
    "monochrome1-refused",  # source.dicom.monochrome1: error and the file is MONOCHROME1
    "lossy",  # LossyDecodeError: only a conversion that drops bits or channels reads it
)


def os_error_reason(exc: OSError, default: str = "os-error") -> str:
    """The reason (a :data:`DECODE_REASONS` value where one fits) for an ``OSError``.

    Args:
        exc: raised while opening, reading or listing a file or folder.
        default: the reason for errors none of the specific ones describe.
    """
    if isinstance(exc, PermissionError):
        return "permission-denied"
    if isinstance(exc, FileNotFoundError):
        return "not-found"
    if isinstance(exc, IsADirectoryError):
        return "not-a-file"
    if exc.errno == errno.ELOOP:
        return "symlink-loop"
    return default


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of one image file, as :func:`preproc.io.probe` and ``decode`` report them.

    Attributes:
        path: the file, as given.
        format: one of :data:`FORMATS` (from the magic bytes, not the extension).
        dtype: canonical numpy name of the decoded array's container (``'uint16'``, ...).
        channels: channels of the decoded array: 1 gray, 2 gray+alpha, 3 rgb, 4 rgba (palette
            images are reported after expansion to rgb/rgba).
        height: rows.
        width: columns.
        stored_bits: meaningful bits per sample from the header (PNG sBIT, else the IHDR bit
            depth; TIFF BitsPerSample; DICOM BitsStored; netpbm: bits of maxval).
        photometric: colour model: ``'gray'``, ``'gray+alpha'``, ``'rgb'``, ``'rgba'``,
            ``'palette'`` (only while unexpanded), ``'cmyk'``, ``'miniswhite'``; DICOM keeps its
            own names (``'MONOCHROME1'``, ``'MONOCHROME2'``, ``'RGB'``, ``'YBR_FULL'``, ...).
        signed: samples are signed integers (DICOM PixelRepresentation 1, TIFF SampleFormat 2).
        frames: frames or pages in the file; only the first is decoded.
        extra: format-specific facts, e.g. ``sbit`` (per channel), ``transparency``,
            ``rescale_slope``, ``rescale_intercept``, ``window_center``, ``transfer_syntax``;
            ``draft_scale`` (``s``) for a JPEG Pillow decoded at ``1/s`` of its size.
    """

    path: str
    format: str
    dtype: str
    channels: int
    height: int
    width: int
    stored_bits: int
    photometric: str
    signed: bool = False
    frames: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> ImageInfo:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)
