"""``preproc export --format webdataset``: one epoch as standard WebDataset tar shards.

Each sample is two tar members sharing a key (WebDataset's convention: the key is the member
name up to the first dot of its last path component): ``KEY.npy``, the processed image as an
``.npy`` file (dtype and shape in its header, exactly the batch row), and ``KEY.cls``, the class
index as decimal text. The key is the file's relative path with its extension dropped and any
other dot replaced, so ``cats/0001.png`` gives ``cats/0001.npy`` and ``cats/0001.cls``.

Shard ``k`` holds the samples at positions ``k * samples_per_shard`` up to the next multiple of
the epoch's batch order (shuffled when ``batches.shuffle``); a file skipped with
``on_error: skip`` leaves its shard one sample shorter, so which shard a file lands in never
depends on another file. Members carry the newest modification time of the shard's source
files, so the same config over the same files writes the same bytes.

Writing is atomic and resumable, like ``run --out``: ``export.json`` (written first) records the
recipe (config, dtype, shape, epoch, seed, shard size); each tar is written to a temporary name
and renamed, then its sidecar ``shard-NNNNNN.json`` (planned files, a stamp of their sizes and
mtimes, the tar's sha256). A re-run keeps every shard whose sidecar matches and whose tar still
has the recorded checksum, recomputes the others, and writes ``index.json`` last; so an
interrupted export, run again, ends with the very bytes of an uninterrupted one. A folder
holding an export of another recipe is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import PreprocError
from ..io.atomic import atomic_write, file_sha256, write_bytes
from ..types import Array
from .export import (npy_bytes, read_json, remove_stale_temporaries, remove_unlisted,
                     source_stamp)

if TYPE_CHECKING:
    from .flow import BatchIterator

__all__ = ["ExportMismatch", "export_webdataset", "sample_key"]

FORMAT = "preproc-webdataset/1"
_SHARD = re.compile(r"^shard-(\d{6,})\.(tar|json)$")


class ExportMismatch(PreprocError):
    """The destination holds an export made from another recipe."""


def sample_key(filename: str) -> str:
    """WebDataset key of a listing file name (relative path, ``/``-separated)."""
    stem = filename.replace("\\", "/").rsplit(".", 1)[0] if "." in filename.rsplit("/", 1)[-1] \
        else filename
    head, _, base = stem.rpartition("/")
    base = base.replace(".", "_")
    return f"{head}/{base}" if head else base


def _member(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def _shard_name(k: int) -> str:
    return f"shard-{k:06d}"


def export_webdataset(it: BatchIterator, out_dir: str | Path, *, samples_per_shard: int = 1000,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the current epoch of ``it`` as ``shard-000000.tar``, ... in ``out_dir``.

    Args:
        it: a :class:`~preproc.batches.flow.BatchIterator`.
        out_dir: destination folder (created if missing). A folder holding a complete or
            interrupted export of the same recipe is resumed.
        samples_per_shard: planned samples per tar.
        progress: optional ``callback(batch_index, images_in_batch)`` per batch computed.

    Returns:
        The index document (also ``index.json``): shards, sample count, dtype, shape, classes,
        and how many shards were ``reused`` and ``written``.

    Raises:
        ExportMismatch: ``out_dir`` holds an export of another config, seed or shard size.
    """
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be at least 1, got {samples_per_shard}")
    out = Path(out_dir)
    recipe = _recipe(it, samples_per_shard)
    _claim(out, recipe)
    order = [int(j) for i in range(len(it)) for j in it.batch_indices(i)]
    rows = _Rows(it, order, progress)
    shards, reused = [], 0
    for k, start in enumerate(range(0, max(len(order), 1), samples_per_shard)):
        planned = order[start:start + samples_per_shard]
        names = [it.filename_of(j) for j in planned]
        paths = [it.filepath_of(j) for j in planned]
        stamp = source_stamp(recipe["hash"], paths)
        entry = _reusable(out, k, names, stamp)
        if entry is None:
            shard = _Shard(out / f"{_shard_name(k)}.tar", names, stamp, _newest_mtime(paths))
            entry = shard.write(it, rows.take(start, len(planned)))
        else:
            reused += 1
        shards.append(entry)
    remove_unlisted(out, len(shards), _SHARD)
    index = _index(it, shards)
    write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    index["reused"], index["written"] = reused, len(shards) - reused
    return index


def _recipe(it: BatchIterator, samples_per_shard: int) -> dict[str, Any]:
    """What decides the shards' bytes besides the source files themselves (the seed only where
    it draws something: a shuffle or a random stage)."""
    random = it.shuffle or any(s.traits().random for s in it.pipeline.stages)
    seed = it.seed if random else None
    doc = {"config": it.config.model_dump(mode="json"), "dtype": str(np.dtype(it.dtype)),
           "shape": list(it.image_shape), "epoch": it.epoch, "seed": seed,
           "subset": it.subset, "mode": it.mode, "samples_per_shard": samples_per_shard}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return {"format": FORMAT, "hash": digest, "seed": seed, "epoch": it.epoch, "mode": it.mode,
            "samples_per_shard": samples_per_shard}


def _claim(out: Path, recipe: dict[str, Any]) -> None:
    """Create ``out`` or check that it holds an export of this very recipe; sweep temporaries."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "the export destination must be a folder, this is a file",
                                 str(out))
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "export.json"
    found = read_json(marker) if marker.is_file() else None
    if found is None and any(_SHARD.match(p.name) for p in out.iterdir()):
        raise ExportMismatch(f"{out}: holds shard files but no export.json, so they cannot be "
                             "checked against this config; export into an empty folder or remove "
                             "the shards")
    if found is not None and found.get("hash") != recipe["hash"]:
        raise ExportMismatch(_mismatch(out, found, recipe))
    remove_stale_temporaries(out)
    if found is None:
        write_bytes(marker, json.dumps(recipe, indent=1).encode())


def _mismatch(out: Path, found: dict[str, Any], recipe: dict[str, Any]) -> str:
    why = [f"{key} {found.get(key)!r} there, {recipe[key]!r} now"
           for key in ("format", "mode", "seed", "epoch", "samples_per_shard")
           if found.get(key) != recipe[key]]
    detail = "; ".join(why) if why else "the config or the output dtype/shape differ"
    hint = (" (batches.seed is null, so every run draws a new order: set batches.seed to resume)"
            if "seed" in " ".join(why) else "")
    return (f"{out}: holds an export made from another recipe ({detail}){hint}; a folder "
            "resumes only an export of the same config, seed and shard size. Export into another "
            "folder, or delete this one to start over")


def _reusable(out: Path, k: int, names: list[str], stamp: str) -> dict[str, Any] | None:
    """The sidecar of shard ``k`` if its tar is complete and made from the same, unchanged files."""
    tar, side = out / f"{_shard_name(k)}.tar", out / f"{_shard_name(k)}.json"
    if not (tar.is_file() and side.is_file()):
        return None
    entry = read_json(side)
    if entry is None or entry.get("planned") != names or entry.get("stamp") != stamp:
        return None
    return entry if entry.get("sha256") == file_sha256(tar) else None


class _Rows:
    """The epoch's rows by planned position, computing each batch once (a shard boundary may
    cut a batch in two)."""

    def __init__(self, it: BatchIterator, order: list[int],
                 progress: Callable[[int, int], None] | None) -> None:
        self.it, self.order, self.progress = it, order, progress
        self._batch: tuple[int, dict[int, Array]] | None = None

    def take(self, start: int, count: int) -> Iterator[tuple[int, Array]]:
        """``(listing index, row)`` of the readable samples at positions ``start`` onwards."""
        for pos in range(start, start + count):
            rows = self._rows_of(pos // self.it.batch_size)
            planned = self.order[pos]
            if planned in rows:
                yield planned, rows[planned]

    def _rows_of(self, i: int) -> dict[int, Array]:
        if self._batch is None or self._batch[0] != i:
            x, _, idx = self.it.batch_with_indices(i)
            self._batch = (i, {int(j): row for row, j in zip(x, idx)})
            if self.progress is not None:
                self.progress(i, len(idx))
        return self._batch[1]


class _Shard:
    """One tar and its sidecar. Samples are encoded as the tar is written, one at a time, and
    the tar's checksum is taken from the bytes as they are written, not read back."""

    def __init__(self, path: Path, names: list[str], stamp: str, mtime: int) -> None:
        self.path, self.names, self.stamp, self.mtime = path, names, stamp, mtime

    def write(self, it: BatchIterator, rows: Iterator[tuple[int, Array]]) -> dict[str, Any]:
        digest, samples = hashlib.sha256(), 0

        def write(fh: IO[bytes]) -> None:
            nonlocal samples
            hashing = cast(IO[bytes], _Hashing(fh, digest))  # write and tell: all tarfile uses
            with tarfile.open(fileobj=hashing, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for j, row in rows:
                    key = sample_key(it.filename_of(j))
                    _member(tar, f"{key}.npy", npy_bytes(row), self.mtime)
                    _member(tar, f"{key}.cls", str(it.label_of(j)).encode(), self.mtime)
                    samples += 1

        atomic_write(self.path, write, "wb")
        entry = {"file": self.path.name, "samples": samples, "planned": self.names,
                 "stamp": self.stamp, "sha256": digest.hexdigest()}
        write_bytes(self.path.with_suffix(".json"), json.dumps(entry).encode())
        return entry


class _Hashing:
    """A write-only file that hashes what passes through it."""

    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self.fh, self.digest = fh, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.fh.tell()


def _newest_mtime(paths: list[str]) -> int:
    stamps = []
    for path in paths:
        try:
            stamps.append(int(os.stat(path).st_mtime))
        except OSError:
            continue
    return max(stamps, default=0)


def _index(it: BatchIterator, shards: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": "webdataset", "members": ["npy", "cls"], "epoch": it.epoch,
            "dtype": str(np.dtype(it.dtype)), "image_shape": list(it.image_shape),
            "class_indices": it.class_indices, "samples": sum(s["samples"] for s in shards),
            "shards": [{"file": s["file"], "samples": s["samples"]} for s in shards]}
