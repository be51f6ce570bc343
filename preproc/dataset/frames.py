"""Every frame its own sample: the listing hook of ``source.dicom.frames: all``.

:func:`expand_frames` reads the header of each listed file (no pixels) and replaces a
multi-frame DICOM file by one entry per frame, named ``file#k`` (k from 0), with the file's
class. Single-frame files and other formats keep their entry and name. The expansion runs after
the validation split, so all frames of one file stay in one subset. A file whose header cannot
be read keeps its entry: decoding it reports the problem where it belongs.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..errors import DecodeError
from ..io.frames import frame_name
from .discovery import Discovered

__all__ = ["expand_frames", "frame_count"]


def frame_count(path: str) -> int:
    """NumberOfFrames of a DICOM file from its header; 1 for anything else or on error."""
    from ..io import is_dicom_file, probe

    if not path.lower().endswith(".dcm") and not is_dicom_file(path):
        return 1
    try:
        info = probe(path)
    except DecodeError:
        return 1
    return info.frames if info.format == "dicom" else 1


def expand_frames(listing: Discovered) -> Discovered:
    """A :class:`~preproc.dataset.discovery.Discovered` listing with every frame listed.

    Returns:
        A copy of ``listing`` whose multi-frame files appear once per frame as ``name#k``.
    """
    names: list[str] = []
    labels: list[int] = []
    for name, label in zip(listing.filenames, listing.classes):
        count = frame_count(os.path.join(listing.directory, name))
        names.extend([name] if count == 1 else [frame_name(name, k) for k in range(count)])
        labels.extend([int(label)] * count)
    return dataclasses.replace(listing, filenames=names,
                               classes=np.asarray(labels, dtype=np.int32))
