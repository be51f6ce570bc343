"""Group-level validation splits: every group (a patient, a study) lands wholly in one subset.

``batches.split_by`` names what groups files: ``{dicom: KEYWORD}`` reads that header element
(``PatientID``, ``StudyInstanceUID``, any keyword of the DICOM dictionary), ``{pattern: REGEX}``
takes the named group ``group`` of a regular expression searched in the file's path relative to
``source.directory`` (with ``/`` separators).

Decisions:
    * The assignment is global, not per class: a patient with images in two classes still sits
      in one subset. Classes are not stratified.
    * Groups are ordered by their key, shuffled with ``numpy.random.RandomState(seed)`` (seed 0
      when ``batches.seed`` is unset, so the split never changes between runs), and the
      validation subset is the subset of groups whose file count is closest to
      ``validation_split * files`` (ties: the smaller), found by an exact subset-sum over the
      shuffled order; for very large problems a greedy pass over the same order takes its place.
    * A DICOM file without the element, or a file that is not DICOM, is its own group; a path
      the pattern does not match is an error, since that is a mistake in the pattern, and so is
      an element that no file holds.
    * Without ``split_by`` none of this runs: the split stays Keras' per-class slice.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MissingDependencyError, PreprocError
from ..types import Array

if TYPE_CHECKING:
    from ..config.model import SplitBy
    from .discovery import Discovered

__all__ = ["assign_validation", "group_keys", "select_subset"]

#: Above this many ``groups x files`` cells, the exact subset-sum gives way to a greedy pass.
EXACT_LIMIT = 50_000_000


def assign_validation(groups: Sequence[str], validation_split: float,
                      seed: int | None = None) -> Array:
    """Which files go to the validation subset, keeping every group on one side.

    Args:
        groups: the group key of every file.
        validation_split: wanted fraction of files in the validation subset, in [0, 1).
        seed: shuffles which groups are chosen; ``None`` means 0.

    Returns:
        A boolean array, ``True`` for validation files, as long as ``groups``.
    """
    keys = sorted(set(groups))
    sizes = {k: 0 for k in keys}
    for g in groups:
        sizes[g] += 1
    order = [keys[i] for i in np.random.RandomState(seed or 0).permutation(len(keys))]
    target = validation_split * len(groups)
    chosen = _closest_subset([sizes[k] for k in order], target)
    picked = {order[i] for i in chosen}
    return np.fromiter((g in picked for g in groups), dtype=bool, count=len(groups))


def _closest_subset(sizes: list[int], target: float) -> list[int]:
    """Indices of ``sizes`` whose sum is closest to ``target`` (ties: the smaller sum)."""
    if target <= 0 or not sizes:
        return []
    cap = int(np.ceil(target)) + 1
    if len(sizes) * cap > EXACT_LIMIT:
        return _greedy(sizes, target)
    reach = np.zeros(cap + 1, dtype=bool)
    reach[0] = True
    parent = np.full(cap + 1, -1, dtype=np.int64)
    for i, size in enumerate(sizes):
        if size > cap:
            continue
        new = np.flatnonzero(reach[: cap + 1 - size] & ~reach[size:]) + size
        reach[new] = True
        parent[new] = i  # first reached with group i: the rest of the chain uses earlier groups
    sums = np.flatnonzero(reach)
    best = int(sums[np.argmin(np.abs(sums - target))])  # argmin takes the first, the smaller
    out: list[int] = []
    while best > 0:
        i = int(parent[best])
        out.append(i)
        best -= sizes[i]
    return out


def _greedy(sizes: list[int], target: float) -> list[int]:
    """Take groups in order whenever they bring the sum closer to ``target``."""
    total = 0
    out: list[int] = []
    for i, size in enumerate(sizes):
        if abs(total + size - target) < abs(total - target):
            total += size
            out.append(i)
    return out


def group_keys(directory: str, filenames: Sequence[str], split_by: SplitBy) -> list[str]:
    """The group of every file, from ``split_by.dicom`` or ``split_by.pattern``.

    Raises:
        PreprocError: an unknown DICOM keyword, or a path the pattern does not match.
        MissingDependencyError: ``dicom`` grouping without pydicom installed.
    """
    pattern = getattr(split_by, "pattern", None)
    if pattern:
        return _pattern_keys(filenames, re.compile(pattern))
    assert split_by.dicom is not None  # a SplitBy holds exactly one of dicom and pattern
    return _dicom_keys(directory, filenames, split_by.dicom)


def _pattern_keys(filenames: Iterable[str], regex: re.Pattern[str]) -> list[str]:
    out = []
    for name in filenames:
        rel = name.replace(os.sep, "/")
        match = regex.search(rel)
        if match is None or match.group("group") is None:
            raise PreprocError(
                f"batches.split_by.pattern {regex.pattern!r} does not match {rel!r}; every file "
                "path (relative to source.directory) must yield the named group `group`")
        out.append("pattern:" + match.group("group"))
    return out


def _dicom_keys(directory: str, filenames: Iterable[str], keyword: str) -> list[str]:
    try:
        import pydicom
        from pydicom.datadict import keyword_dict, tag_for_keyword
    except ImportError as exc:
        raise MissingDependencyError("pydicom", "dicom", "batches.split_by: {dicom: ...}") from exc
    if tag_for_keyword(keyword) is None:
        near = difflib.get_close_matches(keyword, list(keyword_dict), n=1)
        hint = f"; did you mean `{near[0]}`?" if near else ""
        raise PreprocError(f"batches.split_by.dicom: {keyword!r} is not a DICOM keyword{hint}")
    out = []
    for name in filenames:
        value = _read_element(pydicom, os.path.join(directory, name), keyword)
        out.append(f"dicom:{value}" if value else "file:" + name.replace(os.sep, "/"))
    if out and all(key.startswith("file:") for key in out):
        raise PreprocError(
            f"batches.split_by.dicom: no file holds {keyword}, so every file would be its own "
            "group; name an element the files have, or use split_by: {pattern: REGEX}")
    return out


def _read_element(pydicom: ModuleType, path: str, keyword: str) -> str:
    """The element's value as text, or ``''`` when the file or the element cannot be read."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[keyword], force=True)
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is decoded
        return ""
    return "" if value is None else str(value).strip()


def select_subset(listing: Discovered, split_by: SplitBy, validation_split: float,
                  subset: str | None, seed: int | None) -> Discovered:
    """The files of ``subset`` from a listing of all files, split by group.

    Args:
        listing: a :class:`~preproc.dataset.discovery.Discovered` of every file (no subset).
        split_by: the config's ``batches.split_by``.
        validation_split: fraction for the validation subset.
        subset: ``'training'``, ``'validation'`` or ``None`` (the listing unchanged).
        seed: the config's ``batches.seed``.

    Returns:
        A listing of the subset's files, in the listing's order.
    """
    if subset is None:
        return listing
    if subset not in ("training", "validation"):
        raise PreprocError(f"unknown subset {subset!r}; expected 'training' or 'validation'")
    from dataclasses import replace

    groups = group_keys(listing.directory, listing.filenames, split_by)
    validation = assign_validation(groups, validation_split, seed)
    keep = validation if subset == "validation" else ~validation
    return replace(listing, filenames=[f for f, k in zip(listing.filenames, keep) if k],
                   classes=listing.classes[keep])
