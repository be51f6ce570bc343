"""How preproc shows a path to a person: relative to the working folder when it lies inside it."""

from __future__ import annotations

import os
from typing import overload

from ..errors import printable
from ..types import StrPath

__all__ = ["display_path", "printable"]


@overload
def display_path(path: StrPath) -> str: ...


@overload
def display_path(path: None) -> None: ...


def display_path(path: StrPath | None) -> str | None:
    """``path`` relative to the current folder, or as given when it lies outside (``None`` stays)."""
    if path is None:
        return None
    path = os.fspath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return printable(path)
    return printable(path if rel.startswith("..") else rel)
