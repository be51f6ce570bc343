"""File discovery with the exact semantics of Keras 3's ``flow_from_directory``.

The listing rules, all taken from Keras' legacy ``DirectoryIterator``:

* classes are the sub-folders of the root sorted as strings (an explicit ``classes`` list keeps
  its own order); a folder counts when ``os.path.isdir`` says so, symbolic links included;
* each class folder is walked recursively; the walk's folders are sorted by their full path
  string (so ``sub`` < ``sub-2`` < ``sub/deeper``) and the files of each folder by name;
* a file is listed when its lower-cased name ends with one of the extensions (a plain suffix
  test, without the dot, exactly as Keras does);
* ``follow_links`` follows symbolic links to folders while walking;
* with ``validation_split`` and a subset, each class's first ``int(split * n)`` files are the
  validation subset and the rest the training subset.

Where Keras hangs or stays silent, this module raises :class:`preproc.errors.PreprocError`
with a message that names the folder: a symbolic-link loop, a folder that cannot be listed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np

from ..errors import PreprocError
from ..types import Array

__all__ = ["KERAS_EXTENSIONS", "Discovered", "list_files"]

#: The extensions Keras' ``flow_from_directory`` accepts, in its own order.
KERAS_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")

SUBSETS = ("training", "validation")

#: ``on_problem(path, reason, message)``: told about a folder the walk leaves out.
ProblemHandler: TypeAlias = Callable[[str, str, str], object]


@dataclass(frozen=True)
class Discovered:
    """The files of one subset, in Keras order.

    Attributes:
        directory: the dataset root, as given.
        filenames: paths relative to ``directory``, ``class/[sub/]file``, as Keras' ``filenames``.
        classes: class index of every file, int32, as Keras' ``classes``.
        class_indices: class folder name -> index.
        empty_classes: class folders that hold no listed file (before any split).
    """

    directory: str
    filenames: list[str]
    classes: Array
    class_indices: dict[str, int]
    empty_classes: tuple[str, ...] = field(default=())

    @property
    def filepaths(self) -> list[str]:
        """Full path of every file: ``os.path.join(directory, filename)``."""
        return [os.path.join(self.directory, f) for f in self.filenames]

    @property
    def samples(self) -> int:
        return len(self.filenames)


def list_files(
    directory: str | Path,
    *,
    classes: list[str] | None = None,
    extensions: list[str] | tuple[str, ...] | None = None,
    follow_links: bool = False,
    validation_split: float = 0.0,
    subset: str | None = None,
    on_problem: ProblemHandler | None = None,
) -> Discovered:
    """List the images under ``directory`` exactly as Keras' ``flow_from_directory`` does.

    Args:
        directory: dataset root with one sub-folder per class.
        classes: class folders in index order; ``None`` or empty: the sorted sub-folders.
        extensions: lower-case extensions without dot; ``None``: :data:`KERAS_EXTENSIONS`.
        follow_links: follow symbolic links to folders.
        validation_split: fraction of each class reserved for the validation subset.
        subset: ``None`` (all files), ``"training"`` or ``"validation"``.
        on_problem: ``None`` to raise on a folder that cannot be listed or a symbolic-link
            loop; else called as ``on_problem(path, reason, message)`` and the walk goes on
            without that folder (the audit reports such folders instead of stopping).

    Returns:
        The :class:`Discovered`.

    Raises:
        PreprocError: the root is missing or unreadable, a class folder is missing, a folder
            cannot be listed, or a symbolic-link loop is found.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise PreprocError(f"{directory}: source directory does not exist or is not a folder")
    split = _split_bounds(validation_split, subset)
    names = list(classes) if classes else _class_folders(directory)
    class_indices = {name: i for i, name in enumerate(names)}
    suffixes = tuple(e.lower().lstrip(".") for e in (extensions or KERAS_EXTENSIONS))
    filenames: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for name in names:
        class_dir = os.path.join(directory, name)
        if not os.path.isdir(class_dir):
            raise PreprocError(f"{class_dir}: class folder listed in `classes` does not exist")
        found = _class_files(class_dir, suffixes, follow_links, on_problem)
        if not found:
            empty.append(name)
        if split is not None:
            found = found[_part(split, len(found))]
        filenames.extend(os.path.join(name, rel) for rel in found)
        labels.extend([class_indices[name]] * len(found))
    if empty:
        warnings.warn(
            f"{directory}: class folder(s) with no image ({', '.join(empty)}); "
            f"extensions searched: {', '.join(suffixes)}",
            stacklevel=2,
        )
    return Discovered(directory, filenames, np.asarray(labels, dtype=np.int32), class_indices,
                   tuple(empty))


def subset_slice(n: int, validation_split: float, subset: str) -> slice:
    """The files of ``subset`` among ``n`` files of one class, as Keras splits them: the
    validation subset is the first ``int(validation_split * n)``, training the rest."""
    bounds = _split_bounds(validation_split, subset)
    assert bounds is not None, "a subset was named"
    return _part(bounds, n)


def _part(bounds: tuple[float, float], n: int) -> slice:
    return slice(int(bounds[0] * n), int(bounds[1] * n))


def _split_bounds(validation_split: float, subset: str | None) -> tuple[float, float] | None:
    if subset is None:
        return None
    if subset not in SUBSETS:
        raise PreprocError(f"unknown subset {subset!r}; expected 'training' or 'validation'")
    if not 0.0 <= validation_split < 1.0:
        raise PreprocError(f"validation_split must be in [0, 1), got {validation_split}")
    return (0.0, validation_split) if subset == "validation" else (validation_split, 1.0)


def _class_folders(directory: str) -> list[str]:
    try:
        entries = sorted(os.listdir(directory))
    except OSError as exc:
        raise PreprocError(f"{directory}: cannot list the source directory: {exc.strerror}") from exc
    return [e for e in entries if os.path.isdir(os.path.join(directory, e))]


def _class_files(class_dir: str, suffixes: tuple[str, ...], follow_links: bool,
                 on_problem: ProblemHandler | None = None) -> list[str]:
    """Files of one class folder, relative to it, in Keras order."""
    walked = sorted(_walk(class_dir, follow_links, on_problem), key=lambda item: item[0])
    out = []
    for root, files in walked:
        for fname in sorted(files):
            if fname.lower().endswith(suffixes):
                out.append(os.path.relpath(os.path.join(root, fname), class_dir))
    return out


def _walk(
    top: str, follow_links: bool, on_problem: ProblemHandler | None = None
) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(folder, file names)`` like ``os.walk`` but failing loudly.

    Folder paths are built as ``os.walk`` builds them, so sorting them reproduces Keras' order.
    A folder that cannot be listed raises instead of being skipped silently; with
    ``follow_links``, a link back to an enclosing folder raises instead of recursing forever.
    """
    stack: list[tuple[str, tuple[tuple[int, int], ...]]] = [(top, (_identity(top),))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            message = f"{folder}: cannot list folder: {exc.strerror or exc}"
            if on_problem is None:
                raise PreprocError(message) from exc
            on_problem(folder, "unlistable-folder", message)
            continue
        files: list[str] = []
        for entry in entries:
            if not _is_dir(entry):
                files.append(entry.name)
                continue
            path = os.path.join(folder, entry.name)
            if entry.is_symlink() and not follow_links:
                continue
            ident = _identity(path)
            if ident in ancestors:
                message = (f"{path}: symbolic-link loop (it leads back to an enclosing folder); "
                           "remove the link or set batches.follow_links: false")
                if on_problem is None:
                    raise PreprocError(message)
                on_problem(path, "symlink-loop", message)
                continue
            stack.append((path, ancestors + (ident,)))
        yield folder, files


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)
