"""``preproc export --format webdataset``: one epoch as standard WebDataset tar shards.

Each sample is two tar members sharing a key (WebDataset's convention: the key is the member
name up to the first dot of its last path component): ``KEY.npy``, the processed image as an
``.npy`` file (dtype and shape in its header, exactly the batch row), and ``KEY.cls``, the class
index as decimal text. The key is the file's relative path with its extension dropped and any
other dot replaced, so ``cats/0001.png`` gives ``cats/0001.npy`` and ``cats/0001.cls``. Samples
follow the epoch's batch order (shuffled when ``batches.shuffle``), ``samples_per_shard`` per tar.
Each tar is written atomically; ``index.json`` (written last) lists them.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write, write_bytes

__all__ = ["export_webdataset", "sample_key"]


def sample_key(filename: str) -> str:
    """WebDataset key of a listing file name (relative path, ``/``-separated)."""
    stem = filename.replace("\\", "/").rsplit(".", 1)[0] if "." in filename.rsplit("/", 1)[-1] \
        else filename
    head, _, base = stem.rpartition("/")
    base = base.replace(".", "_")
    return f"{head}/{base}" if head else base


def _member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x), allow_pickle=False)
    return buf.getvalue()


def export_webdataset(it, out_dir, *, samples_per_shard: int = 1000, progress=None) -> dict:
    """Write the current epoch of ``it`` as ``shard-000000.tar``, ... in ``out_dir``.

    Args:
        it: a :class:`~preproc.batches.flow.BatchIterator`.
        out_dir: destination folder (created if missing).
        samples_per_shard: samples per tar.
        progress: optional ``callback(batch_index, images_in_batch)``.

    Returns:
        The index document (also ``index.json``): shards, sample count, dtype, shape, classes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    pending: list[tuple[str, bytes, bytes]] = []
    now = time.time()

    def flush():
        name = f"shard-{len(shards):06d}.tar"

        def write(fh):
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for key, npy, cls in pending:
                    _member(tar, f"{key}.npy", npy, now)
                    _member(tar, f"{key}.cls", cls, now)

        atomic_write(out / name, write, "wb")
        shards.append({"file": name, "samples": len(pending)})
        pending.clear()

    for i in range(len(it)):
        x, _, idx = it.batch_with_indices(i)
        for row, j in zip(x, idx):
            key = sample_key(it.filename_of(int(j)))
            pending.append((key, _npy(row), str(it.label_of(int(j))).encode()))
            if len(pending) == samples_per_shard:
                flush()
        if progress is not None:
            progress(i, len(idx))
    if pending or not shards:
        flush()
    index = {"format": "webdataset", "members": ["npy", "cls"], "epoch": it.epoch,
             "dtype": str(np.dtype(it.dtype)), "image_shape": list(it.image_shape),
             "class_indices": it.class_indices, "samples": sum(s["samples"] for s in shards),
             "shards": shards}
    write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    return index
