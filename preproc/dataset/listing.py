"""Which files an audit reads.

* A **config**: exactly the files ``flow`` will read (:func:`preproc.dataset.discovery.list_files`,
  Keras semantics), with every class of ``class_indices``.
* A **bare directory**: every file below it whose extension :mod:`preproc.io` supports, files in
  its root (they belong to no class), and extension-less files that carry the DICOM preamble.
  Classes are the top-level sub-folders. Symbolic links to files are listed (a dangling or looping
  link becomes an ``unreadable-file``); links to folders are not followed, as Keras does by
  default. A folder that cannot be listed becomes an error entry instead of stopping the audit.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..io.info import os_error_reason
from ..types import StrPath

if TYPE_CHECKING:
    from ..config.model import Config

__all__ = ["FileList", "list_config", "list_directory"]


@dataclass
class FileList:
    """Files to audit.

    Attributes:
        root: dataset root (absolute).
        items: ``(relative path, class or None)`` per file, in a stable order.
        classes: class names that should hold images.
        problems: ``(relative path, class, reason, detail)`` for folders that could not be read.
        ignored: image files in the class folders that ``source.extensions`` leaves out, as
            ``{extension: (count, first relative paths)}`` (``""``: DICOM without extension).
    """

    root: str
    items: list[tuple[str, str | None]]
    classes: list[str]
    problems: list[tuple[str, str | None, str, str]] = field(default_factory=list)
    ignored: dict[str, tuple[int, list[str]]] = field(default_factory=dict)


def list_config(cfg: Config) -> FileList:
    """The files ``flow`` reads for ``cfg`` (all subsets), with their class names."""
    from ..errors import PreprocError
    from .discovery import KERAS_EXTENSIONS, list_files

    directory = cfg.source.directory
    if directory is None:
        raise PreprocError(f"{cfg.path}: source.directory is not set; nothing to audit")
    root = os.path.abspath(os.fspath(directory))
    problems: list[tuple[str, str | None, str, str]] = []

    # the audit always completes: report, don't stop
    def note(path: str, reason: str, message: str) -> None:
        rel = _posix(os.path.relpath(path, root))
        problems.append((rel + "/", rel.split("/", 1)[0], reason, message))

    with warnings.catch_warnings():  # empty classes become `empty-class` findings instead
        warnings.simplefilter("ignore")
        found = list_files(directory, classes=cfg.batches.classes,
                           extensions=cfg.source.extensions,
                           follow_links=cfg.batches.follow_links, on_problem=note)
    names = list(found.class_indices)
    items: list[tuple[str, str | None]] = [
        (_posix(f), names[int(c)]) for f, c in zip(found.filenames, found.classes)
    ]
    listing = FileList(root, items, names)
    listing.problems.extend(problems)
    listing.ignored = _ignored(root, names, cfg.source.extensions or KERAS_EXTENSIONS,
                               cfg.batches.follow_links)
    return listing


def _ignored(root: str, classes: list[str], extensions: Iterable[str], follow_links: bool,
             keep: int = 10) -> dict[str, tuple[int, list[str]]]:
    """Image files in the class folders that the Keras suffix rule over ``extensions`` skips."""
    suffixes = tuple(e.lower().lstrip(".") for e in extensions)
    out: dict[str, tuple[int, list[str]]] = {}
    for name in classes:
        for folder, dirs, files in os.walk(os.path.join(root, name), followlinks=follow_links):
            dirs.sort()
            for fname in sorted(files):
                if fname.lower().endswith(suffixes) or not _wanted(os.path.join(folder, fname), fname):
                    continue
                stem, dot, ext = fname.rpartition(".")
                ext = ext.lower() if dot and stem else ""
                count, examples = out.get(ext, (0, []))
                if len(examples) < keep:
                    examples.append(_posix(os.path.relpath(os.path.join(folder, fname), root)))
                out[ext] = (count + 1, examples)
    return out


def list_directory(directory: StrPath) -> FileList:
    """Every supported file below ``directory`` (see the module docstring)."""
    from ..errors import PreprocError

    root = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(root):
        raise PreprocError(f"{directory}: not a directory")
    listing = FileList(root, [], [])
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise PreprocError(f"{directory}: cannot list the directory: {exc.strerror}") from exc
    for entry in entries:
        if _is_dir(entry):
            listing.classes.append(entry.name)
        elif _wanted(entry.path, entry.name):
            listing.items.append((entry.name, None))
    for name in listing.classes:
        _walk_class(listing, name)
    return listing


def _walk_class(listing: FileList, name: str) -> None:
    def failed(exc: OSError) -> None:
        rel = _posix(os.path.relpath(exc.filename or os.path.join(listing.root, name),
                                     listing.root)) + "/"
        reason = os_error_reason(exc, default="cannot-list")
        listing.problems.append((rel, name, reason, f"cannot list folder: {exc.strerror}"))

    top = os.path.join(listing.root, name)
    for folder, dirs, files in os.walk(top, onerror=failed):
        dirs.sort()
        for fname in sorted(files):
            path = os.path.join(folder, fname)
            if _wanted(path, fname):
                listing.items.append((_posix(os.path.relpath(path, listing.root)), name))


def _wanted(path: str, name: str) -> bool:
    from ..io import SUPPORTED_EXTENSIONS, is_dicom_file

    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return ext.lower() in SUPPORTED_EXTENSIONS
    return is_dicom_file(path)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _posix(rel: str) -> str:
    return rel.replace(os.sep, "/")
