"""Reading image files losslessly: header probes and decoders.

``probe(path)`` reads only headers; ``decode(path)`` returns an ``(H, W, C)`` array in the
file's own container dtype plus the same :class:`ImageInfo`. Formats are recognised by their
magic bytes: PNG, JPEG, BMP, GIF, netpbm (PBM/PGM/PPM), TIFF, DICOM (needs ``pydicom``).
Heavy readers (tifffile, pydicom, Pillow) are imported on first use.
"""

from ._files import is_dicom_file
from .decode import decode, probe, read_pixels
from .info import DECODE_REASONS, FORMATS, SUPPORTED_EXTENSIONS, ImageInfo

__all__ = [
    "DECODE_REASONS",
    "FORMATS",
    "SUPPORTED_EXTENSIONS",
    "ImageInfo",
    "decode",
    "is_dicom_file",
    "probe",
    "read_pixels",
]
