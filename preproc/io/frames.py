"""Names of single frames of multi-frame files: ``path#k`` (k counts from 0).

With ``source.dicom.frames: all`` every frame of a multi-frame DICOM file is its own sample,
named by the file's name, ``#`` and the frame index. Listed file names end with an image
extension, so a name ending in ``#`` and digits is never a file name of the listing itself.
"""

from __future__ import annotations

import os
import re

__all__ = ["FRAME_SEPARATOR", "frame_name", "split_frame"]

FRAME_SEPARATOR = "#"
_FRAME = re.compile(r"^(.*)#(\d+)$", re.DOTALL)


def frame_name(name: str, index: int) -> str:
    """``name#index``."""
    return f"{name}{FRAME_SEPARATOR}{int(index)}"


def split_frame(name: str | os.PathLike[str]) -> tuple[str, int | None]:
    """``('a/b.dcm', 3)`` for ``'a/b.dcm#3'``; ``(name, None)`` for a plain name."""
    text = str(name)
    match = _FRAME.match(text)
    if match is None:
        return text, None
    return match.group(1), int(match.group(2))
