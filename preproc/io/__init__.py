"""Reading image files losslessly, through one entrance: :func:`read`.

``read(path, "header")`` reads only headers; ``read(path)`` returns an ``(H, W, C)`` array in
the file's own container dtype plus the same :class:`ImageInfo`; ``read(path,
"pillow-or-array")`` may hand 8-bit pixels over as the loaded ``PIL.Image``. ``probe`` and
``decode`` are the first two spelled as functions. Formats are recognised by their magic bytes:
PNG, JPEG, BMP, GIF, netpbm (PBM/PGM/PPM), TIFF, DICOM (needs ``pydicom``); the table
:data:`READERS` maps each to its reader. Heavy readers (tifffile, pydicom, Pillow) are imported
on first use.
"""

from ._files import is_dicom_file
from .info import (
    CHANNELS_BY_COLOR_MODE,
    DECODE_REASONS,
    EIGHT_BIT_MODES,
    FORMATS,
    PILLOW_MODE_BY_CHANNELS,
    PNG_SIGNATURE,
    SUPPORTED_EXTENSIONS,
    ImageInfo,
    os_error_reason,
)
from .readers import READERS, WANTS, FormatReader, decode, probe, read

__all__ = [
    "CHANNELS_BY_COLOR_MODE",
    "DECODE_REASONS",
    "EIGHT_BIT_MODES",
    "FORMATS",
    "PILLOW_MODE_BY_CHANNELS",
    "PNG_SIGNATURE",
    "READERS",
    "SUPPORTED_EXTENSIONS",
    "WANTS",
    "FormatReader",
    "ImageInfo",
    "decode",
    "is_dicom_file",
    "os_error_reason",
    "probe",
    "read",
]
