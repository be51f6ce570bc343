"""A fast path for the common cases: 8-bit PNG, JPEG and BMP files and 16-bit grayscale PNGs,
which Pillow reads as they are.

The batch generator resizes 8-bit images with Pillow anyway; handing it the Pillow image skips
two full-size copies (Pillow to NumPy and back). For every file it also skips the chunk walk that
:func:`decode` does for its own checks. Anything unusual (other bit depths, palettes, 16-bit
color, other modes, any error) returns ``None`` and the caller falls back to
:func:`preproc.io.decode`, which reads every file losslessly and reports problems precisely.
"""

from __future__ import annotations

import struct

__all__ = ["open_8bit"]

_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # 8-bit, not palette
_MODES = {"L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L"}


def _eligible(head: bytes) -> bool:
    if head.startswith(_PNG):
        if len(head) < 29 or head[12:16] != b"IHDR":
            return False
        bit_depth, color_type, _, _, interlace = struct.unpack(">5B", head[24:29])
        if interlace != 0:
            return False
        return (bit_depth == 8 and color_type in _PNG_COLOR_TYPES) or (
            bit_depth == 16 and color_type == 0)
    return head.startswith(b"\xff\xd8") or head.startswith(b"BM")


def open_8bit(path):
    """A loaded ``PIL.Image`` in mode L, LA, RGB, RGBA or I;16, or ``None`` to use :func:`decode`.

    Only files whose samples Pillow returns unchanged qualify (8-bit images, and 16-bit
    grayscale PNGs as I;16); the result holds exactly the values :func:`decode` would return.

    Raises:
        DecodeError: the file is missing, not a regular file, empty or not readable (the same
            errors and reasons as :func:`decode`).
    """
    from ._files import open_source

    with open_source(path) as fh:  # regular, non-empty, readable file, or a DecodeError
        return _open(fh)


def _open(fh):
    head = fh.read(32)
    if not _eligible(head):
        return None
    fh.seek(0)
    from PIL import Image

    from ._files import max_pixels

    try:
        image = Image.open(fh)  # not a `with`: closing an image frees its pixels
        limit = max_pixels()
        if image.mode not in _MODES or getattr(image, "n_frames", 1) != 1:
            return None
        if limit is not None and image.size[0] * image.size[1] > limit:
            return None
        image.load()  # pixels now live in memory; the file closes in the caller
    except Exception:  # noqa: BLE001 - decode() will name the problem precisely
        return None
    return image
