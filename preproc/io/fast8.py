"""A fast path for the common cases: 8-bit PNG, JPEG and BMP files and 16-bit grayscale PNGs,
whose samples Pillow holds unchanged.

The batch generator resizes these with Pillow anyway; handing it the Pillow image skips two
full-size copies (Pillow to NumPy and back). PNGs are inflated with ISA-L and unfiltered by
Pillow (:func:`preproc.io.png.pillow_image`), about twice as fast as Pillow reading the file.
Anything unusual (other bit depths, palettes, 16-bit color, other modes, APNG, any error)
returns ``None`` and the caller falls back to :func:`preproc.io.decode`, which reads every file
losslessly and reports problems precisely.
"""

from __future__ import annotations

__all__ = ["open_8bit"]

_PNG = b"\x89PNG\r\n\x1a\n"
_MODES = {"L", "LA", "RGB", "RGBA"}  # JPEG and BMP modes whose samples Pillow keeps


def _is_jpeg_or_bmp(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8") or head.startswith(b"BM")


def open_8bit(path, draft=None):
    """A loaded ``PIL.Image`` in mode L, LA, RGB, RGBA or I;16, or ``None`` to use :func:`decode`.

    Only files whose samples Pillow returns unchanged qualify (8-bit images, and 16-bit
    grayscale PNGs as I;16); the result holds exactly the values :func:`decode` would return.
    With ``draft=(width, height)``, a JPEG is decoded at the smallest of its 1/1, 1/2, 1/4 and
    1/8 scales that still covers that size (Pillow's ``draft``): faster, no longer exact.

    Raises:
        DecodeError: the file is missing, not a regular file, empty or not readable (the same
            errors and reasons as :func:`decode`).
    """
    from ._files import open_source

    with open_source(path) as fh:  # regular, non-empty, readable file, or a DecodeError
        return _open(path, fh, draft)


def _open(path, fh, draft=None):
    head = fh.read(32)
    fh.seek(0)
    if head.startswith(_PNG):
        from .png import pillow_keeps

        # IHDR's depth and colour type are in the first 32 bytes: files the fast path would
        # refuse anyway (16-bit colour, palettes, sub-byte depths) are not read twice
        if head[12:16] != b"IHDR" or not pillow_keeps(head[24], head[25]):
            return None
        return _open_png(path, fh)
    if not _is_jpeg_or_bmp(head):
        return None
    from PIL import Image

    from ._files import check_pixel_limit, max_pixels

    try:
        image = Image.open(fh)  # not a `with`: closing an image frees its pixels
        limit = max_pixels()
        if image.mode not in _MODES or getattr(image, "n_frames", 1) != 1:
            return None
        if limit is not None and image.size[0] * image.size[1] > limit:
            return None
        check_pixel_limit(path, image.size[1], image.size[0], len(image.getbands()))
        if draft is not None and image.format == "JPEG":
            image.draft(image.mode, draft)
        image.load()  # pixels now live in memory; the file closes in the caller
    except Exception:  # noqa: BLE001 - decode() will name the problem precisely
        return None
    return image


def _open_png(path, fh):
    """PNG chunks walked and inflated here, unfiltered by Pillow (see :mod:`.inflate`)."""
    from ._files import check_pixel_limit, read_bounded
    from .png import parse_png, pillow_image

    try:
        data = read_bounded(path, fh)
        header = parse_png(path, data, read_pixels=True)
        if header.frames != 1:
            return None
        check_pixel_limit(path, header.height, header.width, 4)  # at most 4 bytes a pixel
        return pillow_image(path, header, data)
    except Exception:  # noqa: BLE001 - decode() will name the problem, as for any file
        return None
