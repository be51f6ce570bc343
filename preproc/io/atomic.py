"""Atomic file writes: a file is either absent, old, or complete, never half written.

Every output preproc writes (audit reports, stats files, ``run --out`` shards and indexes) goes
through :func:`atomic_write`: a temporary file beside the target (same folder, so the rename
stays on one file system), flushed and fsynced, then ``os.replace``-d onto the final name, and
the folder fsynced. The final file gets the permissions of a plainly created one (umask
respected), not the 0600 of ``mkstemp``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO, overload

__all__ = ["TMP_PREFIX", "atomic_write", "file_sha256", "write_bytes"]

#: temporary files are ``.{name}.preproc-tmp-*``: recognisable, hidden, and never a final name
TMP_PREFIX = ".preproc-tmp-"


@overload
def atomic_write(
    path: str | Path, write: Callable[[TextIO], object], mode: Literal["w"] = "w"
) -> None: ...


@overload
def atomic_write(
    path: str | Path, write: Callable[[BinaryIO], object], mode: Literal["wb"]
) -> None: ...


def atomic_write(path: str | Path, write: Callable[[Any], object], mode: str = "w") -> None:
    """Write ``path`` through ``write(handle)`` atomically.

    Args:
        path: the final file; its folder is created if missing.
        write: called with an open handle (text mode writes UTF-8 without newline translation).
        mode: ``"w"`` for text, ``"wb"`` for bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_PREFIX}")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        kwargs: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with open(fd, mode, **kwargs) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """:func:`atomic_write` of a bytes object."""
    atomic_write(path, lambda fh: fh.write(data), "wb")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks: how an output written earlier is
    recognised as complete and unchanged before it is reused."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
