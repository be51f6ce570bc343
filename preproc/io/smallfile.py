"""Reading the small text files a user names (configs, stats files, sidecars) with a cap.

A config path may be mistyped, or point at ``/dev/zero``, ``/dev/urandom`` or a FIFO: reading
such a "file" to its end never finishes or exhausts memory. :func:`read_capped` reads only
regular files (a device or a pipe is refused before the first byte) and at most ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat

from ..types import StrPath

__all__ = ["MAX_TEXT_BYTES", "NotARegularFile", "TooLarge", "read_capped"]

#: The default cap: far above any config or stats file.
MAX_TEXT_BYTES = 16 << 20


class NotARegularFile(OSError):
    """The path names a device, a pipe, a socket or a directory."""


class TooLarge(OSError):
    """The file holds more than the cap."""


def read_capped(path: StrPath, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        FileNotFoundError, PermissionError, ...: as ``open``.
        NotARegularFile: ``path`` is a device, FIFO, socket or directory.
        TooLarge: the file is larger than ``limit`` bytes.
        ValueError: ``path`` holds a NUL character.
    """
    if "\x00" in os.fspath(path):
        raise ValueError("the path holds a NUL character")
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "is a directory", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(f"{path} is not a regular file (a device, pipe or socket)")
    if st.st_size > limit:
        raise TooLarge(f"{path} has {st.st_size} bytes, more than the {limit} allowed")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{path} has more than the {limit} bytes allowed")
    return data
