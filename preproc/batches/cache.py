"""The preprocessed cache, read side: the deterministic part of a pipeline computed once, read every epoch.

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
every shard whose sidecar matches and whose bytes have the recorded checksum
(:mod:`preproc.batches.cache_build` writes it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np

from ..errors import DecodeError, PreprocError
from ..findings import Finding, Location
from ..io.atomic import file_sha256
from ..types import Array, StrPath

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from ..config.model import Config
    from ..dataset.discovery import Discovered
    from ..spec import ValueSpec
    from ..stages.base import Stage
    from ..stages.pipeline import Pipeline
    from .batching import ImageStats

__all__ = ["Cache", "CacheError", "CachedJob", "cut_index", "open_cache", "recipe_hash"]

FORMAT = "preproc-cache/1"


class CacheError(PreprocError):
    """A cache cannot be used for this config; ``finding`` says why (code ``cache-stale``)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.message}; {finding.hint}")
        self.finding = finding


@runtime_checkable
class _Fittable(Protocol):
    """A stage that takes statistics of the training files (``normalize``, featurewise)."""

    @property
    def needs_fit(self) -> bool: ...

    def fitted(self, mean: list[float], std: list[float]) -> Stage: ...


def _trait(stage: object, name: str) -> bool:
    """A stage's trait (``random`` counts as absent where stages do not declare it)."""
    traits = getattr(stage, "traits", None)
    if callable(traits):
        return bool(getattr(traits(), name, False))
    return bool(getattr(stage, name, False))


def cut_index(stages: Sequence[object]) -> int:
    """How many leading stages the cache holds (see the module docstring)."""
    k = next((i for i, s in enumerate(stages) if _trait(s, "random")), len(stages))
    while k > 0 and _trait(stages[k - 1], "elementwise"):
        k -= 1
    return k


def config_cut(config: Config, pipeline: Pipeline) -> int:
    """The cut of ``config``, the same for every subset and mode.

    Random stages run in the training pipeline only (the evaluation pipeline drops them or runs
    their evaluation twin), and ``apply_to`` may keep any stage out of one pipeline; so the cut
    is taken on the stages both pipelines run alike, in order, before the first random one.
    """
    from ..stages.pipeline import Pipeline

    def build(mode: str) -> Pipeline:
        if getattr(pipeline, "mode", "training") == mode:
            return pipeline
        return Pipeline.from_config(config, source=pipeline.source_spec, mode=mode)

    train, evaluation = build("training").stages, build("evaluation").stages
    common = 0
    while (common < min(len(train), len(evaluation))
           and (train[common].index, train[common].name)
           == (evaluation[common].index, evaluation[common].name)):
        common += 1
    return cut_index(train[:common])


def recipe_hash(config: Config, pipeline: Pipeline, cut: int) -> str:
    """What shapes the cached pixels besides the files themselves."""
    b = config.batches
    decode = getattr(b, "decode", None)
    doc = {
        "source": config.source.model_dump(mode="json"),
        "plugins": list(config.plugins),
        "batches": {k: getattr(b, k) for k in ("target_size", "color_mode", "interpolation",
                                               "keep_aspect_ratio", "classes", "follow_links")},
        "decode": decode.model_dump(mode="json") if decode is not None else None,
        "stages": [e.as_yaml() if hasattr(e, "as_yaml") else e for e in config.stages[:cut]],
        # fitted statistics come from the training subset
        "split": b.validation_split if _fits(pipeline) else None,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _fits(pipeline: Pipeline) -> bool:
    """Whether a stage takes statistics from the training files (fitted already or not)."""
    return pipeline.needs_fit or any(
        getattr(getattr(s, "params", None), "mode", None) == "featurewise" for s in pipeline.stages)


def _version() -> str:
    from .._version import __version__

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
    rows: Array
    shard_images: int
    shard_files: list[str]
    dtype: str
    shape: tuple[int, ...]
    stages: list[Stage]
    specs: list[ValueSpec]
    run_stages: bool = True
    bad: frozenset[int] = frozenset()
    seed: int = 0
    subset: str | None = None

    def __post_init__(self) -> None:
        #: shard -> (descriptor, data offset, pid of the process that opened it)
        self._open_shards: dict[int, tuple[int, int, int]] = {}

    def __del__(self) -> None:
        for fd, _, pid in getattr(self, "_open_shards", {}).values():
            if pid == os.getpid():
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __getstate__(self) -> dict[str, Any]:
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

    def load(self, i: int) -> Array:
        """Image ``i`` at the cut, in the cache's dtype."""
        row = int(self.rows[i])
        if row in self.bad:
            raise DecodeError(self.paths[i], "unreadable", "when the cache was made")
        s, k = divmod(row, self.shard_images)
        fd, offset = self._shard(s)
        out = np.empty(self.shape, self.dtype)
        # (numpy's stubs declare the buffer protocol of arrays from Python 3.12 on only)
        if os.preadv(fd, [cast("Buffer", out)], offset + k * out.nbytes) != out.nbytes:
            raise PreprocError(f"{self.folder}/{self.shard_files[s]} is truncated; "
                               "run `preproc cache` again to rewrite it")
        return out

    def run(self, i: int, guard: bool = False, epoch: int = 0) -> tuple[Array, ImageStats | None]:
        """Image ``i`` after the stages past the cut, for ``epoch`` (random stages draw from
        ``(seed, epoch, i, stage index)``, as :class:`~preproc.batches.workers.ImageJob`)."""
        from ..stages.augment_draw import stage_rng
        from ..stages.base import RunContext
        from .workers import _minmax

        x = self.load(i)
        if not self.run_stages:
            return x, None
        stats: ImageStats | None = [] if guard else None
        for k, stage in enumerate(self.stages):
            rng = stage_rng(self.seed, epoch, i, stage.index) if _trait(stage, "random") else None
            x = stage(x, RunContext(spec=self.specs[k], subset=self.subset, epoch=epoch, index=i,
                                    file=self.paths[i], rng=rng))
            if stats is not None:
                stats.append(_minmax(x))
        return x, stats


@dataclasses.dataclass
class Cache:
    """An opened, validated cache."""

    folder: Path
    index: dict[str, Any]
    cut: int
    row_of: dict[str, int]

    def tail(self, pipeline: Pipeline) -> Pipeline:
        """The stages after the cut, as a pipeline bound to the specs they have in ``pipeline``."""
        return pipeline.part(self.cut)

    def job(self, listing: Discovered, tail: Pipeline, *, run_stages: bool) -> CachedJob:
        """A job over the cache rows of ``listing``'s files (a subset of the cached listing),
        running the pipeline ``tail``."""
        rows = np.array([self.row_of[f] for f in listing.filenames], dtype=np.int64)
        ix = self.index
        return CachedJob(list(listing.filepaths), str(self.folder), rows, ix["shard_images"],
                         [s["file"] for s in ix["shards"]], ix["dtype"], tuple(ix["image_shape"]),
                         list(tail.stages), list(tail.inputs), run_stages,
                         frozenset(ix.get("bad", [])), getattr(tail, "seed", 0),
                         getattr(tail, "subset", None))


def _stale(folder: Path, config: Config, message: str, hint: str | None = None,
           files: Sequence[str] = ()) -> CacheError:
    path = getattr(config, "path", None)
    finding = Finding(
        "cache-stale", f"cache {folder}: {message}",
        hint or f"rebuild it with `preproc cache {path or 'CONFIG'} {folder}`, or remove "
        "batches.cache to read the files",
        location=Location(file=str(path) if path else None, path="batches.cache"),
        files=tuple(str(f) for f in files[:20]), count=len(files) or None)
    return CacheError(finding)


def _read_index(folder: Path, config: Config) -> dict[str, Any]:
    try:
        index: dict[str, Any] = json.loads((folder / "index.json").read_text())
    except FileNotFoundError:
        raise _stale(folder, config, "holds no complete cache (index.json is missing)") from None
    except (OSError, ValueError) as exc:
        raise _stale(folder, config, f"index.json is unreadable ({exc})") from None
    if index.get("format") != FORMAT:
        raise _stale(folder, config, f"is not a {FORMAT} cache (format {index.get('format')!r})")
    return index


def open_cache(folder: StrPath, config: Config, pipeline: Pipeline, listing: Discovered, *,
               verify: bool = False) -> Cache:
    """Open the cache at ``folder`` for ``listing``'s files, or raise :class:`CacheError`.

    Sets the fitted statistics the cache was made with on ``pipeline``'s unfitted stages.
    """
    folder = Path(folder)
    index = _read_index(folder, config)
    if index.get("preproc_version") != _version():
        raise _stale(folder, config, f"was made by preproc {index.get('preproc_version')}, "
                     f"this is {_version()}")
    cut = config_cut(config, pipeline)
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
    # keyed by the stage's config index: the evaluation pipeline may leave random stages out
    position = {stage.index: k for k, stage in enumerate(pipeline.stages)}
    for key, (mean, std) in index.get("fitted", {}).items():
        k = position.get(int(key))
        stage = pipeline.stages[k] if k is not None else None
        if k is not None and isinstance(stage, _Fittable) and stage.needs_fit:
            pipeline.stages[k] = stage.fitted(mean, std)
    pipeline._bind()
    return Cache(folder, index, cut, row_of)


def _changed(paths: list[str], recorded: list[list[Any]], verify: bool) -> list[str]:
    changed: list[str] = []
    for path, (size, mtime, digest) in zip(paths, recorded):
        try:
            st = os.stat(path)
        except OSError:
            changed.append(path)
            continue
        if verify:
            if file_sha256(path) != digest:
                changed.append(path)
        elif st.st_size != size or st.st_mtime_ns != mtime:
            changed.append(path)
    return changed
