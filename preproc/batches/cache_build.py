"""Writing the preprocessed cache (see :mod:`preproc.batches.cache` for the layout and rules).

:func:`build_cache` fits the pipeline on the training files, splits the listing into shards and
runs one :func:`write_shard` per shard, in forked processes or on a Dask cluster; each shard and
its sidecar are written atomically, and ``index.json`` last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DecodeError, PreprocError
from ..findings import Finding
from ..io.atomic import TMP_PREFIX, file_sha256, write_bytes
from . import cache as _cache
from .cache import FORMAT, CacheError, config_cut, open_cache, recipe_hash

if TYPE_CHECKING:
    from distributed import Client

    from ..config.model import Config
    from ..dataset.discovery import Discovered
    from ..stages.pipeline import Pipeline
    from ..types import Array, StrPath
    from .workers import ImageJob

#: a shard's sidecar document (also its entry in ``index.json``)
Sidecar = dict[str, Any]

__all__ = ["ShardTask", "build_cache", "plan_cache", "verify_cache", "write_shard"]

#: bytes of images per shard (a shard is written whole, then renamed into place)
SHARD_BYTES = 64 << 20


def _version() -> str:
    return _cache._version()


def verify_cache(folder: StrPath, config: Config) -> list[Finding]:
    """Findings (``cache-stale``) of checking ``folder`` against ``config`` by content hash."""
    from .setup import list_subset, pipeline_for

    pipeline = pipeline_for(config)
    try:
        open_cache(folder, config, pipeline, list_subset(config, None), verify=True)
    except CacheError as exc:
        return [exc.finding]
    return []


@dataclasses.dataclass
class ShardTask:
    """Everything a process (local or on a Dask worker) needs to write one shard."""

    job: ImageJob  # over the full listing, stages up to the cut
    folder: str
    shard: int
    indices: list[int]
    stamp: str
    dtype: str
    shape: tuple[int, ...]
    skip_errors: bool


def shard_name(s: int) -> str:
    return f"shard-{s:05d}"


def write_shard(task: ShardTask) -> Sidecar:
    """Compute and write one shard and its sidecar atomically; return the sidecar."""
    x = np.zeros((len(task.indices),) + tuple(task.shape), task.dtype)
    bad: list[int] = []
    sources: list[list[int | str]] = []  # per file: size, mtime (ns), sha256
    for k, i in enumerate(task.indices):
        path = task.job.paths[i]
        try:
            out, _ = task.job.run(i)
        except DecodeError:
            if not task.skip_errors:
                raise
            bad.append(i)
        else:
            x[k] = _fit_row(out, task, path)
        st = os.stat(path)
        sources.append([st.st_size, st.st_mtime_ns, file_sha256(path)])
    name = shard_name(task.shard)
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    data = buf.getvalue()
    write_bytes(Path(task.folder) / f"{name}.npy", data)
    entry = {"file": f"{name}.npy", "rows": len(task.indices), "stamp": task.stamp,
             "sha256": hashlib.sha256(data).hexdigest(), "sources": sources, "bad": bad}
    write_bytes(Path(task.folder) / f"{name}.json", json.dumps(entry).encode())
    return entry


def _fit_row(out: Array, task: ShardTask, path: str) -> Array:
    if out.shape != tuple(task.shape):
        raise PreprocError(f"{path}: produced shape {out.shape} at the cache's cut, the cache "
                           f"holds {tuple(task.shape)}")
    if out.dtype != np.dtype(task.dtype) and not np.can_cast(out.dtype, task.dtype, "safe"):
        raise PreprocError(f"{path}: produced dtype {out.dtype} at the cache's cut, the cache "
                           f"holds {task.dtype} and a cast would lose values; declare "
                           "source.expect.dtype so every file is read alike")
    return out


def _shard_stamp(recipe: str, paths: list[str], dtype: np.dtype[Any],
                 shape: tuple[int, ...]) -> str:
    digest = hashlib.sha256(f"{recipe}|{_version()}|{dtype}|{list(shape)}".encode())
    for path in paths:
        try:
            st = os.stat(path)
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{path}:missing;".encode())
    return digest.hexdigest()


def _reusable(folder: Path, s: int, stamp: str) -> Sidecar | None:
    name = shard_name(s)
    try:
        entry: Sidecar = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    npy = folder / f"{name}.npy"
    if entry.get("stamp") != stamp or not npy.is_file() or entry.get("sha256") != file_sha256(npy):
        return None
    return entry


@dataclasses.dataclass
class Plan:
    """What a cache build will write: the listing, the job, the shards and their stamps."""

    listing: Discovered
    pipeline: Pipeline
    cut: int
    recipe: str
    dtype: str
    shape: tuple[int, ...]
    shard_images: int
    tasks: list[ShardTask]


def plan_cache(config: Config, folder: StrPath, *, shard_images: int | None = None) -> Plan:
    """Fit, probe and split the listing into shard tasks (nothing is written)."""
    from .flow import flow
    from .setup import list_subset, make_job

    b = config.batches
    if getattr(b, "cache", None) is not None:  # the cache being built is not read meanwhile
        config = config.model_copy(update={"batches": b.model_copy(update={"cache": None})})
    fit_subset = "training" if b.validation_split else None
    # fits on the training files; the cut is the training pipeline's, whatever batches.mode
    probe = flow(config, fit_subset, workers=0, guard="record", mode="training")
    pipeline = probe.pipeline
    cut = config_cut(config, pipeline)
    listing = list_subset(config, None)
    job = make_job(config, listing.filepaths, pipeline.part(0, cut), run_stages=True)
    dtype, shape = _probe_cut(job, pipeline, cut, b.on_error == "skip")
    if shard_images is None:
        shard_images = max(1, min(4096, SHARD_BYTES // max(1, int(np.prod(shape)) * dtype.itemsize)))
    recipe = recipe_hash(config, pipeline, cut)
    tasks: list[ShardTask] = []
    for s, start in enumerate(range(0, listing.samples, shard_images)):
        idx = list(range(start, min(start + shard_images, listing.samples)))
        stamp = _shard_stamp(recipe, [listing.filepaths[i] for i in idx], dtype, shape)
        tasks.append(ShardTask(job, str(folder), s, idx, stamp, dtype.str, tuple(shape),
                               b.on_error == "skip"))
    return Plan(listing, pipeline, cut, recipe, dtype.str, tuple(shape), shard_images, tasks)


def _probe_cut(job: ImageJob, pipeline: Pipeline, cut: int,
               skip: bool) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """dtype and shape at the cut: the declared spec's dtype, else the first readable image's."""
    first: DecodeError | None = None
    for i in range(len(job.paths)):
        try:
            out, _ = job.run(i)
            break
        except DecodeError as exc:
            first = first or exc
            if not skip:
                raise
    else:
        raise first or PreprocError("no image to cache")
    spec = pipeline.specs[cut - 1] if cut else pipeline.entry_spec
    declared = np.dtype(spec.dtype) if spec.dtype else out.dtype
    dtype = np.result_type(declared, out.dtype) if declared != out.dtype else declared
    return np.dtype(dtype), tuple(out.shape)


def build_cache(config: Config, folder: StrPath, *, engine: str = "local",
                scheduler: str | Client | None = None, workers: int | None = None,
                shard_images: int | None = None,
                progress: Callable[[int, int, bool], object] | None = None,
                run_task: Callable[[ShardTask], Sidecar] | None = None) -> dict[str, Any]:
    """Write (or complete) the cache of ``config`` in ``folder``.

    Args:
        config: a loaded config.
        folder: destination (created if missing).
        engine: ``'local'`` (forked processes) or ``'dask'`` (one task per shard on a cluster).
        scheduler: a Dask scheduler address or ``Client`` (default: a ``LocalCluster`` of
            ``workers``).
        workers: processes (default ``batches.workers`` or all cores; ``0``: in-process).
        shard_images: images per shard (default: about 64 MiB per shard).
        progress: optional ``callback(shard, rows, reused)``.
        run_task: the shard writer (default :func:`write_shard`).

    Returns:
        The index document, with ``written`` and ``reused`` shard counts.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(f".*{TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
    plan = plan_cache(config, folder, shard_images=shard_images)
    entries: dict[int, Sidecar] = {}
    todo: list[ShardTask] = []
    for task in plan.tasks:
        entry = _reusable(folder, task.shard, task.stamp)
        if entry is None:
            todo.append(task)
        else:
            entries[task.shard] = entry
            if progress:
                progress(task.shard, entry["rows"], True)
    wanted = workers if workers is not None else config.batches.workers
    for task, entry in _run(todo, engine, scheduler, wanted, run_task or write_shard):
        entries[task.shard] = entry
        if progress:
            progress(task.shard, entry["rows"], False)
    for tmp in folder.glob(f".*{TMP_PREFIX}*"):  # left by a process that died mid-write
        tmp.unlink(missing_ok=True)
    index = _index(plan, [entries[t.shard] for t in plan.tasks])
    write_bytes(folder / "index.json", json.dumps(index).encode())
    index["written"], index["reused"] = len(todo), len(plan.tasks) - len(todo)
    return index


def _run(tasks: list[ShardTask], engine: str, scheduler: str | Client | None,
         workers: int | None, fn: Callable[[ShardTask], Sidecar],
         ) -> Iterator[tuple[ShardTask, Sidecar]]:
    if not tasks:
        return
    if engine == "dask":
        from .cache_dask import run_on_dask

        yield from run_on_dask(tasks, fn, scheduler, workers)
        return
    if engine != "local":
        raise PreprocError(f"unknown cache engine {engine!r}; expected 'local' or 'dask'")
    n = (os.cpu_count() or 1) if workers is None else workers
    if n <= 1 or len(tasks) == 1:
        for task in tasks:
            yield task, fn(task)
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(min(n, len(tasks))) as pool:
        yield from zip(tasks, pool.imap(fn, tasks))


def _index(plan: Plan, entries: list[Sidecar]) -> dict[str, Any]:
    spec = plan.pipeline.specs[plan.cut - 1] if plan.cut else plan.pipeline.entry_spec
    # mean and std belong to the featurewise stage (normalize), not to every Stage
    fitted = {str(s.index): [list(getattr(s, "mean")), list(getattr(s, "std"))]
              for s in plan.pipeline.stages
              if getattr(s, "params", None) is not None
              and getattr(s.params, "mode", None) == "featurewise" and getattr(s, "mean", None)}
    listing = plan.listing
    return {
        "format": FORMAT,
        "preproc_version": _version(),
        "recipe": plan.recipe,
        "cut": plan.cut,
        "stages_cached": [s.name for s in plan.pipeline.stages[: plan.cut]],
        "spec": spec.to_json(),
        "dtype": plan.dtype,
        "image_shape": list(plan.shape),
        "shard_images": plan.shard_images,
        "class_indices": dict(listing.class_indices),
        "files": list(listing.filenames),
        "labels": [int(c) for c in listing.classes],
        "sources": [src for e in entries for src in e["sources"]],
        "bad": sorted(i for e in entries for i in e.get("bad", [])),
        "fitted": fitted,
        "shards": [{"file": e["file"], "rows": e["rows"], "sha256": e["sha256"]} for e in entries],
    }
