"""``preproc run --out DIR``: the processed arrays of one epoch as ``.npy`` shards plus an index.

Layout of ``DIR``::

    batch-00000.npy    x of batch 0, exactly as flow yields it (dtype and shape in the header)
    batch-00000.json   sidecar: rows, file names, class indices, sha256 of the .npy, and a
                       stamp of the config and of each source file's size and mtime
    ...
    index.json         every shard with its files and labels, the class names, dtype, shape
    index.csv          one row per image: shard, row, filename, class, label

Every file is written atomically: to a temporary name in the same folder, flushed, fsynced, then
``os.replace``-d onto its final name, so an interrupted run never leaves a half-written file
under a final name. A re-run keeps each shard whose sidecar matches the planned files, the config
and the files' sizes and mtimes, and whose
``.npy`` still has the recorded checksum, recomputes the others and writes the index last.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.atomic import TMP_PREFIX, file_sha256, write_bytes
from ..types import Array

if TYPE_CHECKING:
    from .flow import BatchIterator

__all__ = ["export_epoch", "npy_bytes", "read_json", "remove_stale_temporaries", "remove_unlisted",
           "source_stamp"]


def npy_bytes(x: Array) -> bytes:
    """``x`` as the bytes of an ``.npy`` file (C order, no pickled objects)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x), allow_pickle=False)
    return buf.getvalue()


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a sidecar or marker file, or ``None`` when it is unreadable, not
    JSON, nested too deep or not an object (a damaged export is redone, never trusted)."""
    from ..io.smallfile import read_capped

    try:
        doc = json.loads(read_capped(path, 256 << 20))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def remove_unlisted(out: Path, count: int, pattern: re.Pattern[str]) -> None:
    """Shards (file names matching ``pattern``, their number in group 1) at or past ``count``
    are removed, so the folder holds exactly what the index just written lists (a re-run with
    a larger batch or shard size makes fewer). The index is replaced first, atomically: a
    reader never sees it list a missing shard."""
    for path in out.iterdir():
        match = pattern.match(path.name)
        if match and int(match.group(1)) >= count:
            path.unlink(missing_ok=True)


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files an interrupted atomic write left in ``out``."""
    for tmp in out.glob(f".*{TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)


def export_epoch(it: BatchIterator, out_dir: str | Path, *,
                 progress: Callable[[int, int, bool], object] | None = None) -> dict[str, Any]:
    """Write the current epoch of ``it`` (a :class:`~preproc.flow.BatchIterator`) to ``out_dir``.

    Args:
        it: the batch iterator; its current epoch is written in batch order.
        out_dir: destination folder (created if missing).
        progress: optional ``callback(batch_index, images_in_batch, reused)``.

    Returns:
        The index document (also written as ``index.json``), with ``reused`` and ``written``
        shard counts.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "--out must be a folder, this is a file", str(out))
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    shards, reused = [], 0
    recipe = _recipe(it)
    for i in range(len(it)):
        idx = it.batch_indices(i)
        planned = [it.filename_of(int(j)) for j in idx]
        stamp = source_stamp(recipe, [it.filepath_of(int(j)) for j in idx])
        entry = _reusable(out, i, planned, stamp)
        was_reused = entry is not None
        if entry is None:
            entry = _write_shard(it, out, i, planned, stamp)
        reused += was_reused
        shards.append(entry)
        if progress is not None:
            progress(i, entry["rows"], was_reused)
    index = _index(it, shards)
    names = {v: k for k, v in it.class_indices.items()}
    write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    write_bytes(out / "index.csv", _csv(shards, names).encode("utf-8", "surrogateescape"))
    remove_unlisted(out, len(shards), _SHARD)
    index["reused"], index["written"] = reused, len(shards) - reused
    return index


def _shard_name(i: int) -> str:
    return f"batch-{i:05d}"


def _recipe(it: BatchIterator) -> str:
    """What shapes the pixels besides the files: the config, the output dtype and shape."""
    doc = {"config": it.config.model_dump(mode="json"), "dtype": str(np.dtype(it.dtype)),
           "shape": list(it.image_shape)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def source_stamp(recipe: str, paths: list[str]) -> str:
    """Recipe plus each source file's size and modification time, so the output of a changed
    (or vanished) file is redone on the next run instead of being kept."""
    digest = hashlib.sha256(recipe.encode())
    for path in paths:
        try:
            st = os.stat(path)
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns};".encode("utf-8", "surrogateescape"))
        except OSError:
            digest.update(f"{path}:missing;".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _write_shard(it: BatchIterator, out: Path, i: int, planned: list[str], stamp: str) -> dict[str, Any]:
    x, _, idx = it.batch_with_indices(i)
    name = _shard_name(i)
    data = npy_bytes(x)
    write_bytes(out / f"{name}.npy", data)
    entry = {
        "file": f"{name}.npy",
        "rows": len(idx),
        "sha256": hashlib.sha256(data).hexdigest(),
        "planned": planned,
        "stamp": stamp,
        "filenames": [it.filename_of(int(j)) for j in idx],
        "labels": [it.label_of(int(j)) for j in idx],
    }
    write_bytes(out / f"{name}.json", json.dumps(entry).encode())
    return entry


def _reusable(out: Path, i: int, planned: list[str], stamp: str) -> dict[str, Any] | None:
    """The sidecar of shard ``i`` if the shard is complete and was made the same way from the
    same, unchanged files."""
    name = _shard_name(i)
    npy, side = out / f"{name}.npy", out / f"{name}.json"
    if not (npy.is_file() and side.is_file()):
        return None
    entry = read_json(side)
    if entry is None:
        return None
    if entry.get("planned") != planned or entry.get("stamp") != stamp \
            or entry.get("sha256") != file_sha256(npy):
        return None
    return entry


_SHARD = re.compile(r"^batch-(\d{5,})\.(npy|json)$")


def _index(it: BatchIterator, shards: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "preproc-npy-shards/1",
        "epoch": it.epoch,
        "dtype": str(np.dtype(it.dtype)),
        "image_shape": list(it.image_shape),
        "class_indices": it.class_indices,
        "class_mode": it.class_mode,
        "images": sum(s["rows"] for s in shards),
        "shards": [{k: s[k] for k in ("file", "rows", "sha256", "filenames", "labels")}
                   for s in shards],
    }


def _csv(shards: list[dict[str, Any]], names: dict[int, str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["shard", "row", "filename", "class", "label"])
    for s in shards:
        for row, (fname, label) in enumerate(zip(s["filenames"], s["labels"])):
            writer.writerow([s["file"], row, fname, names.get(label, ""), label])
    return buf.getvalue()
