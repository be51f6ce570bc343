"""The preprocessed cache: the deterministic part of a pipeline computed once, read every epoch.

``preproc cache CONFIG DIR`` decodes every file of the listing (both subsets), converts its
colour, resizes it and runs the stages up to the **cut**, then writes the results as
memory-mappable ``.npy`` shards in the dtype the cut produces (uint8, uint16, float32: the
container, never a lossy cast). ``flow`` with ``batches.cache: DIR`` reads each sample back from
its shard (random access, so any shuffle works) and runs only the stages after the cut.

The cut is the first random stage (all stages when there is none), moved back over the
elementwise stages just before it (rescale, normalize, clip...): those cost less to recompute
on the whole batch than float32 shards cost to read.

Layout of ``DIR``::

    shard-00000.npy    (n, H, W, C) images of listing entries [0, n), at the cut
    shard-00000.json   sidecar: the shard's stamp (recipe + its files' size and mtime), sha256
    ...
    index.json         written last: files, labels, recipe hash, preproc version, value spec
                       at the cut, each source's size, mtime and sha256, fitted statistics

A cache whose recipe (the config's pixel-shaping keys and the stages before the cut), preproc
version or source files (size and mtime; content hash with ``verify``) differ is refused with a
``cache-stale`` finding, never used. Writing is atomic per file and resumable: a re-run keeps
every shard whose sidecar matches and whose bytes have the recorded checksum.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..io.atomic import TMP_PREFIX, write_bytes
from ..errors import DecodeError, PreprocError
from ..findings import Finding, Location

__all__ = ["CacheError", "CachedJob", "build_cache", "cut_index", "open_cache", "verify_cache"]

FORMAT = "preproc-cache/1"
#: bytes of images per shard (a shard is written whole, then renamed into place)
SHARD_BYTES = 64 << 20


class CacheError(PreprocError):
    """A cache cannot be used for this config; ``finding`` says why (code ``cache-stale``)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.message}; {finding.hint}")
        self.finding = finding


def _is_random(stage) -> bool:
    traits = getattr(stage, "traits", None)
    if callable(traits):
        t = traits()
        return bool(t.get("random") if isinstance(t, dict) else getattr(t, "random", False))
    return bool(getattr(stage, "random", False))


def cut_index(stages) -> int:
    """How many leading stages the cache holds (see the module docstring)."""
    k = next((i for i, s in enumerate(stages) if _is_random(s)), len(stages))
    while k > 0 and getattr(stages[k - 1], "elementwise", False):
        k -= 1
    return k


def recipe_hash(config, pipeline, cut: int) -> str:
    """What shapes the cached pixels besides the files themselves."""
    b = config.batches
    decode = getattr(b, "decode", None)
    doc = {
        "source": config.source.model_dump(mode="json"),
        "plugins": list(config.plugins),
        "batches": {k: getattr(b, k) for k in ("target_size", "color_mode", "interpolation",
                                               "keep_aspect_ratio", "classes", "follow_links")},
        "decode": decode.model_dump(mode="json") if decode is not None else None,
        "stages": config.stages[:cut],
        # fitted statistics come from the training subset
        "split": b.validation_split if pipeline.needs_fit else None,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _version() -> str:
    from .. import __version__

    return __version__


# ----------------------------------------------------------------------------------- reading
@dataclasses.dataclass
class CachedJob:
    """:class:`~preproc.workers.ImageJob`'s interface over cache shards.

    ``load(i)`` reads row ``rows[i]`` with one ``pread`` (the page cache holds the shard, the
    process does not: memory stays flat in the dataset size); ``run`` applies ``stages``.
    """

    paths: list[str]
    folder: str
    rows: np.ndarray
    shard_images: int
    shard_files: list[str]
    dtype: str
    shape: tuple
    stages: list
    run_stages: bool = True
    bad: frozenset = frozenset()

    def __post_init__(self) -> None:
        self._open_shards: dict = {}

    def __del__(self) -> None:
        for fd, _, pid in getattr(self, "_open_shards", {}).values():
            if pid == os.getpid():
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open_shards"] = {}  # descriptors stay in their process
        return state

    def _shard(self, s: int) -> tuple[int, int]:
        got = self._open_shards.get(s)
        if got is None or got[2] != os.getpid():
            fd = os.open(os.path.join(self.folder, self.shard_files[s]), os.O_RDONLY)
            with os.fdopen(os.dup(fd), "rb") as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    np.lib.format.read_array_header_1_0(fh)
                else:
                    np.lib.format.read_array_header_2_0(fh)
                offset = fh.tell()
            got = self._open_shards[s] = (fd, offset, os.getpid())
        return got[0], got[1]

    def load(self, i: int) -> np.ndarray:
        """Image ``i`` at the cut, in the cache's dtype."""
        row = int(self.rows[i])
        if row in self.bad:
            raise DecodeError(self.paths[i], "unreadable", "when the cache was made")
        s, k = divmod(row, self.shard_images)
        fd, offset = self._shard(s)
        out = np.empty(self.shape, self.dtype)
        if os.preadv(fd, [out], offset + k * out.nbytes) != out.nbytes:
            raise PreprocError(f"{self.folder}/{self.shard_files[s]} is truncated; "
                               "run `preproc cache` again to rewrite it")
        return out

    def run(self, i: int, guard: bool = False):
        from .workers import _minmax

        x = self.load(i)
        if not self.run_stages:
            return x, None
        stats = [] if guard else None
        for stage in self.stages:
            x = stage(x, file=self.paths[i])
            if guard:
                stats.append(_minmax(x))
        return x, stats


@dataclasses.dataclass
class Cache:
    """An opened, validated cache."""

    folder: Path
    index: dict
    cut: int
    row_of: dict

    def job(self, listing, stages, *, run_stages: bool) -> CachedJob:
        """A job over the cache rows of ``listing``'s files (a subset of the cached listing)."""
        rows = np.array([self.row_of[f] for f in listing.filenames], dtype=np.int64)
        ix = self.index
        return CachedJob(list(listing.filepaths), str(self.folder), rows, ix["shard_images"],
                         [s["file"] for s in ix["shards"]], ix["dtype"], tuple(ix["image_shape"]),
                         list(stages), run_stages, frozenset(ix.get("bad", [])))


def _stale(folder, config, message: str, hint: str | None = None, files=()) -> CacheError:
    path = getattr(config, "path", None)
    finding = Finding(
        "cache-stale", f"cache {folder}: {message}",
        hint or f"rebuild it with `preproc cache {path or 'CONFIG'} {folder}`, or remove "
        "batches.cache to read the files",
        location=Location(file=str(path) if path else None, path="batches.cache"),
        files=tuple(str(f) for f in files[:20]), count=len(files) or None)
    return CacheError(finding)


def _read_index(folder: Path, config) -> dict:
    try:
        index = json.loads((folder / "index.json").read_text())
    except FileNotFoundError:
        raise _stale(folder, config, "holds no complete cache (index.json is missing)") from None
    except (OSError, ValueError) as exc:
        raise _stale(folder, config, f"index.json is unreadable ({exc})") from None
    if index.get("format") != FORMAT:
        raise _stale(folder, config, f"is not a {FORMAT} cache (format {index.get('format')!r})")
    return index


def open_cache(folder, config, pipeline, listing, *, verify: bool = False) -> Cache:
    """Open the cache at ``folder`` for ``listing``'s files, or raise :class:`CacheError`.

    Sets the fitted statistics the cache was made with on ``pipeline``'s unfitted stages.
    """
    folder = Path(folder)
    index = _read_index(folder, config)
    if index.get("preproc_version") != _version():
        raise _stale(folder, config, f"was made by preproc {index.get('preproc_version')}, "
                     f"this is {_version()}")
    cut = cut_index(pipeline.stages)
    if index.get("cut") != cut or index.get("recipe") != recipe_hash(config, pipeline, cut):
        raise _stale(folder, config, "was made from another config (source, batches sizes and "
                     "modes, or the stages before the cut differ)")
    row_of = {f: k for k, f in enumerate(index["files"])}
    missing = [f for f in listing.filenames if f not in row_of]
    if missing:
        raise _stale(folder, config, f"{len(missing)} file(s) of the dataset are not in it "
                     f"(added since), e.g. {missing[0]}", files=missing)
    rows = [row_of[f] for f in listing.filenames]
    changed = _changed(listing.filepaths, [index["sources"][r] for r in rows], verify)
    if changed:
        how = "content" if verify else "size or modification time"
        raise _stale(folder, config, f"{len(changed)} source file(s) changed ({how}) since it "
                     f"was made, e.g. {changed[0]}", files=changed)
    for k, (mean, std) in index.get("fitted", {}).items():
        stage = pipeline.stages[int(k)]
        if getattr(stage, "needs_fit", False):
            stage.set_stats(mean, std)
    pipeline._bind()
    return Cache(folder, index, cut, row_of)


def _changed(paths, recorded, verify: bool) -> list[str]:
    changed = []
    for path, (size, mtime, digest) in zip(paths, recorded):
        try:
            st = os.stat(path)
        except OSError:
            changed.append(path)
            continue
        if verify:
            if _file_sha256(path) != digest:
                changed.append(path)
        elif st.st_size != size or st.st_mtime_ns != mtime:
            changed.append(path)
    return changed


def verify_cache(folder, config) -> list[Finding]:
    """Findings (``cache-stale``) of checking ``folder`` against ``config`` by content hash."""
    from .flow import _list, _pipeline_for

    pipeline = _pipeline_for(config)
    try:
        open_cache(folder, config, pipeline, _list(config, None), verify=True)
    except CacheError as exc:
        return [exc.finding]
    return []


# ----------------------------------------------------------------------------------- writing
def _file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class ShardTask:
    """Everything a process (local or on a Dask worker) needs to write one shard."""

    job: object  # an ImageJob over the full listing, stages up to the cut
    folder: str
    shard: int
    indices: list[int]
    stamp: str
    dtype: str
    shape: tuple
    skip_errors: bool


def shard_name(s: int) -> str:
    return f"shard-{s:05d}"


def write_shard(task: ShardTask) -> dict:
    """Compute and write one shard and its sidecar atomically; return the sidecar."""
    x = np.zeros((len(task.indices),) + tuple(task.shape), task.dtype)
    bad, sources = [], []
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
        sources.append([st.st_size, st.st_mtime_ns, _file_sha256(path)])
    name = shard_name(task.shard)
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    data = buf.getvalue()
    write_bytes(Path(task.folder) / f"{name}.npy", data)
    entry = {"file": f"{name}.npy", "rows": len(task.indices), "stamp": task.stamp,
             "sha256": hashlib.sha256(data).hexdigest(), "sources": sources, "bad": bad}
    write_bytes(Path(task.folder) / f"{name}.json", json.dumps(entry).encode())
    return entry


def _fit_row(out: np.ndarray, task: ShardTask, path: str) -> np.ndarray:
    if out.shape != tuple(task.shape):
        raise PreprocError(f"{path}: produced shape {out.shape} at the cache's cut, the cache "
                           f"holds {tuple(task.shape)}")
    if out.dtype != np.dtype(task.dtype) and not np.can_cast(out.dtype, task.dtype, "safe"):
        raise PreprocError(f"{path}: produced dtype {out.dtype} at the cache's cut, the cache "
                           f"holds {task.dtype} and a cast would lose values; declare "
                           "source.expect.dtype so every file is read alike")
    return out


def _shard_stamp(recipe: str, paths: list[str], dtype, shape) -> str:
    digest = hashlib.sha256(f"{recipe}|{_version()}|{dtype}|{list(shape)}".encode())
    for path in paths:
        try:
            st = os.stat(path)
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{path}:missing;".encode())
    return digest.hexdigest()


def _reusable(folder: Path, s: int, stamp: str) -> dict | None:
    name = shard_name(s)
    try:
        entry = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    npy = folder / f"{name}.npy"
    if entry.get("stamp") != stamp or not npy.is_file() or entry.get("sha256") != _file_sha256(npy):
        return None
    return entry


@dataclasses.dataclass
class Plan:
    """What a cache build will write: the listing, the job, the shards and their stamps."""

    listing: object
    pipeline: object
    cut: int
    recipe: str
    dtype: str
    shape: tuple
    shard_images: int
    tasks: list[ShardTask]


def plan_cache(config, folder, *, shard_images: int | None = None) -> Plan:
    """Fit, probe and split the listing into shard tasks (nothing is written)."""
    from .flow import _list, _make_job, flow

    b = config.batches
    if getattr(b, "cache", None) is not None:  # the cache being built is not read meanwhile
        config = config.model_copy(update={"batches": b.model_copy(update={"cache": None})})
    fit_subset = "training" if b.validation_split else None
    probe = flow(config, fit_subset, workers=0, guard="record")  # fits on the training files
    pipeline = probe.pipeline
    cut = cut_index(pipeline.stages)
    listing = _list(config, None)
    job = _make_job(config, listing.filepaths, pipeline.stages[:cut], run_stages=True)
    dtype, shape = _probe_cut(job, pipeline, cut, b.on_error == "skip")
    if shard_images is None:
        shard_images = max(1, min(4096, SHARD_BYTES // max(1, int(np.prod(shape)) * dtype.itemsize)))
    recipe = recipe_hash(config, pipeline, cut)
    tasks = []
    for s, start in enumerate(range(0, listing.samples, shard_images)):
        idx = list(range(start, min(start + shard_images, listing.samples)))
        stamp = _shard_stamp(recipe, [listing.filepaths[i] for i in idx], dtype, shape)
        tasks.append(ShardTask(job, str(folder), s, idx, stamp, dtype.str, tuple(shape),
                               b.on_error == "skip"))
    return Plan(listing, pipeline, cut, recipe, dtype.str, tuple(shape), shard_images, tasks)


def _probe_cut(job, pipeline, cut: int, skip: bool):
    """dtype and shape at the cut: the declared spec's dtype, else the first readable image's."""
    first = None
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


def build_cache(config, folder, *, engine: str = "local", scheduler: str | None = None,
                workers: int | None = None, shard_images: int | None = None,
                progress=None, run_task=None) -> dict:
    """Write (or complete) the cache of ``config`` in ``folder``.

    Args:
        config: a loaded config.
        folder: destination (created if missing).
        engine: ``'local'`` (forked processes) or ``'dask'`` (one task per shard on a cluster).
        scheduler: a Dask scheduler address (default: a ``LocalCluster`` of ``workers``).
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
    entries: dict[int, dict] = {}
    todo = []
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
    index = _index(config, plan, [entries[t.shard] for t in plan.tasks])
    write_bytes(folder / "index.json", json.dumps(index).encode())
    index["written"], index["reused"] = len(todo), len(plan.tasks) - len(todo)
    return index


def _run(tasks, engine, scheduler, workers, fn):
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


def _index(config, plan: Plan, entries: list[dict]) -> dict:
    spec = plan.pipeline.specs[plan.cut - 1] if plan.cut else plan.pipeline.entry_spec
    fitted = {str(k): [list(s.mean), list(s.std)] for k, s in enumerate(plan.pipeline.stages)
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
