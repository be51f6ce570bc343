"""``preproc.flow``: a ``flow_from_directory``-compatible batch iterator.

:class:`BatchIterator` behaves like a Keras ``Sequence``: ``len()``, indexing, iteration,
``on_epoch_end()``, ``filenames``, ``classes``, ``class_indices``, ``samples``. Batches are
``(x, y)`` (``x`` alone with ``class_mode: null``) with ``y`` as Keras builds it.

Order and determinism:

* the file order of an epoch is Keras' own: with ``shuffle``, epoch ``e`` is
  ``np.random.RandomState(seed + e * len(full)).permutation(n)``, which is the order Keras'
  iterator yields when it is consumed batch after batch (``next()``), epoch after epoch;
* iterating over the iterator yields the current epoch and then advances to the next one;
  indexing never advances, ``on_epoch_end()`` / ``set_epoch()`` do;
* every image is computed by pure functions and placed at its position in the batch, so
  batches are identical for any number of workers;
* ``shard=(rank, world_size)`` gives each rank the slice ``order[rank::world_size]`` of the
  same epoch order: disjoint, covering the epoch, reshuffled per epoch alike on every rank
  (ranks may differ by one sample, never repeat one).

The runtime guard checks the first ``checks.runtime.sample_batches`` batches of every epoch:
each stage's output min and max against the stage's inferred interval. A violation becomes a
``runtime-range-violation`` finding in :attr:`BatchIterator.findings` and, by default, a
:class:`RuntimeRangeWarning` (``guard='raise'`` raises :class:`~preproc.errors.StageError`,
``guard='record'`` only records).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import DecodeError, PreprocError, StageError, WorkerError
from ..findings import Finding
from ..stages.augment_draw import draw_seed
from . import batching
from .setup import (batch_dtype, can_fork, check_batch_memory, check_mode, check_shard,
                    list_subset, make_job, open_cache_for, pipeline_for)

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..config.model import Config
    from ..spec import ValueSpec
    from ..stages.pipeline import Pipeline
    from ..types import Array
    from .batching import ImageStats
    from .cache import CachedJob
    from .workers import ImageJob, InlineEngine, ProcessEngine, Result, Window

    #: what ``flow`` accepts as a config: a loaded one, a YAML path, or a mapping
    ConfigLike = Config | str | os.PathLike[str] | Mapping[str, Any]
    #: one batch as a Sequence yields it: ``x``, or ``(x, y)``
    Batch = Array | tuple[Array, Array]
    #: per-image guard statistics of one batch (``None`` for an image not measured)
    Stats = list[ImageStats | None]
    #: a computed batch: ``(x, stats or None, kept positions or None, rows proven finite)``
    Finished = tuple[Array, Stats | None, list[int] | None, bool]

__all__ = ["BatchIterator", "RuntimeRangeWarning", "flow"]

GUARD_POLICIES = ("warn", "raise", "record")


class RuntimeRangeWarning(UserWarning):
    """A sampled batch held values outside a stage's inferred interval."""


class DecodeSkipWarning(UserWarning):
    """``on_error: skip`` dropped an unreadable file from a batch."""


def flow(config: ConfigLike, subset: str | None = None, *, check: bool = True,
         mode: str | None = None, **kwargs: Any) -> BatchIterator:
    """Batches of a config, as Keras' ``flow_from_directory`` would yield them.

    The config is checked first, as ``preproc check`` checks it: a config whose findings reach
    ``checks.fail_on`` produces no batch.

    Args:
        config: a :class:`~preproc.config.Config`, the path of a YAML file, or a mapping.
        subset: ``None``, ``'training'`` or ``'validation'`` (with ``batches.validation_split``).
        check: ``False`` skips the static check (to run a failing config on purpose).
        mode: ``'training'`` (random stages run) or ``'evaluation'`` (the deterministic stages
            alone, as on the validation subset); default ``batches.mode``. The validation
            subset always evaluates.
        **kwargs: see :class:`BatchIterator` (``shard``, ``workers``, ``prefetch``, ``guard``).

    Returns:
        A :class:`BatchIterator`; close it (or use it as a context manager) to stop its workers.

    Raises:
        CheckFailed: the check found problems at or above ``checks.fail_on``; the error holds
            the findings and prints them as ``preproc check`` does.
    """
    from ..config.model import as_config

    config = as_config(config)
    if check:
        from ..analysis import require_check

        # the check has sampled the headers already: its source spec builds the pipeline
        from ..stages.pipeline import pipeline_mode

        check_mode(subset, mode)
        wanted = pipeline_mode(subset, mode or config.batches.mode)
        kwargs.setdefault("source", require_check(config, mode=wanted)[1])
    return BatchIterator(config, subset, mode=mode, **kwargs)


class BatchIterator:
    """Keras-``Sequence``-like iterator over the batches of a config.

    Args:
        config: a loaded config.
        subset: ``None``, ``'training'`` or ``'validation'``.
        mode: ``'training'`` or ``'evaluation'`` (default ``batches.mode``); see :func:`flow`.
        shard: ``(rank, world_size)`` for data-parallel training, or ``None``. Shards are
            disjoint and together cover every epoch, reshuffled per epoch alike on all ranks;
            so ranks may differ by one sample, hence by one batch: with DDP, stop every rank
            after ``min`` of the ranks' ``len()`` batches, or use ``batch_size`` dividing
            ``samples // world_size``. ``filenames``/``classes`` list the current epoch's members.
        workers: worker processes (``0``: in-process); default ``batches.workers`` or all cores.
        prefetch: batches prepared ahead; default ``batches.prefetch``.
        guard: ``'warn'`` (default), ``'raise'`` or ``'record'`` on a runtime range violation.
        pipeline: a ready :class:`~preproc.stages.pipeline.Pipeline` (default: built from ``config``).
        source: the source spec to build the pipeline on (``flow`` passes the one its check
            resolved; default: ``source.expect``, else sampled headers).
        cache: a folder written by ``preproc cache`` (default ``batches.cache``): samples are
            read from its shards and only the stages after its cut run.

    Attributes:
        filenames, filepaths, classes, class_indices, num_classes, samples, batch_size: as Keras.
        dtype: dtype of ``x``; image_shape: ``(H, W, C)`` of one image.
        epoch: the current epoch (starts at 0).
        findings: runtime-guard findings so far.
        skipped: ``{path: reason}`` of files dropped with ``on_error: skip``.
    """

    def __init__(self, config: Config, subset: str | None = None, *,
                 shard: tuple[int, int] | None = None, workers: int | None = None,
                 prefetch: int | None = None, guard: str = "warn",
                 pipeline: Pipeline | None = None, cache: str | Path | None = None,
                 source: ValueSpec | None = None, mode: str | None = None) -> None:
        if guard not in GUARD_POLICIES:
            raise ValueError(f"guard must be one of {GUARD_POLICIES}, got {guard!r}")
        self.config, self.subset, self.guard = config, subset, guard
        check_mode(subset, mode)
        b = config.batches
        from ..io._files import set_max_image_bytes

        set_max_image_bytes(config.source.max_image_bytes)  # workers forked later inherit it
        self._listing = list_subset(config, subset)
        # an unseeded run draws its seed once, so every worker count still sees one order and
        # one set of augmentations; `seed` reports it so the run can be replayed
        self._seed = b.seed if b.seed is not None else draw_seed()
        self.pipeline = pipeline or pipeline_for(config, subset, self._seed, source, mode)
        #: ``training`` (random stages run) or ``evaluation`` (deterministic stages alone)
        self.mode: str = self.pipeline.mode
        self.batch_size, self.shuffle, self.class_mode = b.batch_size, b.shuffle, b.class_mode
        self._on_error = b.on_error
        self._shard = check_shard(shard, b)
        random = any(s.traits().random for s in self.pipeline.stages)
        if self._shard is not None and b.seed is None and random:
            raise ValueError("sharded augmentation needs batches.seed, so every rank draws alike")
        wanted = workers if workers is not None else b.workers
        self._workers = (os.cpu_count() or 1) if wanted is None else wanted
        self._prefetch = b.prefetch if prefetch is None else prefetch
        self._sample_batches = config.checks.runtime.sample_batches
        self.findings: list[Finding] = []
        self.skipped: dict[str, str] = {}
        self.epoch = 0
        self._engine: InlineEngine | ProcessEngine | None = None
        #: per row dtype, whether the batch-wide stages are proven to give finite rows
        self._finite_by_dtype: dict[np.dtype[Any], bool] = {}
        self._window: Window | None = None
        #: the epoch of the last batch computed, and whether a later fetch came from another
        #: epoch (then batches of the next epoch are prepared ahead; see :meth:`_key_after`)
        self._fetched_epoch: int | None = None
        self._epochs_follow = False
        self._job = self._build_job(cache)
        self._probe()
        self._set_order()

    def _build_job(self, cache: str | Path | None) -> ImageJob | CachedJob:
        """The per-image work of every batch, from the files or from a cache, and what the
        parent runs on the batch (``_run``: the stages after the cache's cut, or them all)."""
        self._cache = open_cache_for(self.config, cache, self.pipeline, self._listing)
        if self.pipeline.needs_fit and self._cache is None:
            self._fit()  # replaces the featurewise stages with fitted ones: build the job after
        self._run = self.pipeline if self._cache is None else self._cache.tail(self.pipeline)
        self._stages = self._run.stages
        self._batched = batching.batchable(self._stages)
        if self._cache is not None:
            return self._cache.job(self._listing, self._run, run_stages=not self._batched)
        return make_job(self.config, self._listing.filepaths, self.pipeline,
                        run_stages=not self._batched)

    # ----------------------------------------------------------------- Keras-like attributes
    @property
    def seed(self) -> int:
        """The seed of shuffling and augmentation (drawn at start when ``batches.seed`` is null)."""
        return self._seed

    @property
    def directory(self) -> str:
        return self._listing.directory

    @property
    def class_indices(self) -> dict[str, int]:
        return dict(self._listing.class_indices)

    @property
    def num_classes(self) -> int:
        return len(self._listing.class_indices)

    @property
    def filenames(self) -> list[str]:
        """Files of this subset (and shard), in listing order."""
        return [self._listing.filenames[i] for i in self._members]

    @property
    def filepaths(self) -> list[str]:
        return [self._job.paths[i] for i in self._members]

    @property
    def classes(self) -> Array:
        classes: Array = self._listing.classes[self._members]
        return classes

    @property
    def samples(self) -> int:
        return len(self._members)

    @property
    def index_array(self) -> Array:
        """Listing indices of the current epoch, in batch order."""
        return self._order

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self.batch_size)

    # ---------------------------------------------------------------------------- ordering
    @property
    def _members(self) -> Array:
        """Listing indices this iterator yields in the current epoch, in listing order.

        A shard's members change with each epoch's shuffle (as with ``DistributedSampler``).
        """
        n = self._listing.samples
        if self._shard is None:
            return np.arange(n)
        return np.sort(self.epoch_order(self.epoch))

    def epoch_order(self, epoch: int) -> Array:
        """Listing indices of ``epoch`` for this shard, in batch order (Keras' permutation)."""
        n = self._listing.samples
        if self.shuffle:
            full_len = math.ceil(n / self.batch_size)
            order = np.random.RandomState(self._seed + epoch * full_len).permutation(n)
        else:
            order = np.arange(n)
        if self._shard is not None:
            rank, world = self._shard
            order = order[rank::world]
        return order

    def _set_order(self) -> None:
        self._order = self.epoch_order(self.epoch)

    def on_epoch_end(self) -> None:
        """Advance to the next epoch (new shuffle)."""
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch`` (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)
        self._set_order()

    def batch_indices(self, i: int, epoch: int | None = None) -> Array:
        """Listing indices of batch ``i`` of ``epoch`` (default: the current one)."""
        order = self._order if epoch is None or epoch == self.epoch else self.epoch_order(epoch)
        return order[i * self.batch_size : (i + 1) * self.batch_size]

    # ----------------------------------------------------------------------------- batches
    def __getitem__(self, i: int) -> Batch:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"batch {i} out of range: the iterator has {n} batches")
        return self._batch(i)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self)):
            yield self._batch(i)
        self.on_epoch_end()

    def _batch(self, i: int) -> Batch:
        x, y, _ = self.batch_with_indices(i)
        return x if y is None else (x, y)

    def batch_with_indices(self, i: int) -> tuple[Array, Array | None, Array]:
        """Batch ``i`` of the current epoch as ``(x, y or None, listing indices of its rows)``.

        The indices exclude files dropped with ``on_error: skip``.
        """
        idx = self.batch_indices(i)
        guard = i < self._sample_batches
        x, stats, keep, finite = self._compute(i, idx, guard)
        if keep is not None:
            idx = idx[keep]
        if guard and stats is not None:
            self._check_ranges(i, idx, stats)
        if not finite:  # rows the value model proves finite need no scan
            self._check_finite(i, idx, x)
        y = batching.labels(self.class_mode, self._listing.classes[idx], self.num_classes, x)
        return x, y, idx

    def label_of(self, index: int) -> int:
        """Class index of listing entry ``index``."""
        return int(self._listing.classes[index])

    def filename_of(self, index: int) -> str:
        """Relative file name of listing entry ``index``."""
        return self._listing.filenames[index]

    def filepath_of(self, index: int) -> str:
        """Full path of listing entry ``index``."""
        return self._job.paths[index]

    def _compute(self, i: int, idx: Array, guard: bool) -> Finished:
        """Batch ``i`` as :meth:`_finish` returns it."""
        finish = functools.partial(self._finish, i, guard)
        engine = self._get_engine()
        if self._window is None:  # no window: the engine runs in this process
            raw = np.empty((len(idx),) + self._slot_shape, self._slot_dtype)
            inline = cast("InlineEngine", engine)
            return finish(raw, inline.run_batch(idx, guard, raw, self.epoch))
        if self._fetched_epoch not in (None, self.epoch):
            self._epochs_follow = True
        self._fetched_epoch = self.epoch
        ahead = [key for k in range(1, self._prefetch + 1)
                 if (key := self._key_after(i, k)) is not None]
        try:
            fetched: Finished = self._window.fetch(
                (self.epoch, i), ahead, self._task, finish)
            return fetched
        except WorkerError:
            self.close()  # a dead or stuck pool is killed; the next batch starts a new one
            raise

    def _finish(self, i: int, guard: bool, view: Array, results: list[Result]) -> Finished:
        """Turn a filled slot into the batch ``(x, per-image stats or None, kept positions or
        None, whether the value model proves its rows finite)``; must not keep a reference to
        ``view``."""
        keep = self._handle_errors(i, results)
        if keep is None and not any(r.array is not None for r in results):
            rows = view
        else:
            rows = batching.assemble(view, results, keep)
        if self._batched:
            finite = self._proven_finite(rows.dtype)
            x, measured = batching.apply_stages(self._run, rows, guard, self.dtype, finite=finite)
            return x, cast("Stats | None", measured), keep, finite
        if not np.can_cast(rows.dtype, self.dtype, "safe"):
            raise PreprocError(f"batch {i}: an image produced dtype {rows.dtype}, the batch dtype "
                               f"is {self.dtype}; declare source.expect.dtype or add to_dtype")
        x = rows.astype(self.dtype, copy=rows is view or rows.dtype != self.dtype)
        stats: Stats = [results[k].stats for k in (range(len(results)) if keep is None else keep)]
        return x, stats, keep, False

    def _proven_finite(self, dtype: np.dtype[Any]) -> bool:
        """Whether batch-wide stages on rows of ``dtype`` can only produce finite values
        (decided once per dtype; see :func:`preproc.batches.guard.finite_by_construction`)."""
        from .guard import finite_by_construction

        if dtype not in self._finite_by_dtype:
            self._finite_by_dtype[dtype] = finite_by_construction(self._run, dtype, self.dtype)
        return self._finite_by_dtype[dtype]

    def _key_after(self, i: int, k: int) -> tuple[int, int] | None:
        """The batch ``k`` places after batch ``i`` of this epoch, to prepare ahead; ``None``
        past the epoch's end until a consumer has come back for another epoch.

        A single pass (evaluation, ``run``, an export, one epoch of a benchmark) would leave the
        workers decoding batches nobody asks for, on the cores the last batches need; a consumer
        that has already moved to another epoch is training, and the next epoch's first batches
        are then ready when it arrives.
        """
        epoch, j = self.epoch, i + k
        while j >= len(self):
            if not self._epochs_follow or len(self) == 0:
                return None
            epoch, j = epoch + 1, j - len(self)
        return (epoch, j)

    def _task(self, key: tuple[int, int]) -> tuple[Array, bool, int]:
        epoch, i = key
        return self.batch_indices(i, epoch), i < self._sample_batches, epoch

    # ------------------------------------------------------------------ errors and guard
    def _handle_errors(self, i: int, results: list[Result]) -> list[int] | None:
        bad = [k for k, r in enumerate(results) if r.status != "ok"]
        if not bad:
            return None
        for k in bad:
            err = cast(BaseException, results[k].error)  # status != "ok" carries its error
            if not (isinstance(err, DecodeError) and self._on_error == "skip"):
                _locate(err, i, self.epoch)
                raise err
            if not self.skipped:
                warnings.warn(f"skipping unreadable file {err.path} ({err.reason}) in batch {i}; "
                              "further skips are listed in .skipped", DecodeSkipWarning,
                              stacklevel=4)
            self.skipped.setdefault(err.path, err.reason)
        return [k for k in range(len(results)) if k not in bad]

    def _check_ranges(self, i: int, idx: Array, stats: Stats) -> None:
        from .guard import check_batch

        if self._cache is not None:  # stages before the cut were measured when the cache was made
            stats = [None if s is None else [_PASS] * self._cache.cut + list(s) for s in stats]
        found = check_batch(self.pipeline, self.config, i, self.epoch,
                            [self._job.paths[j] for j in idx], stats)
        for finding in found:
            self.findings.append(finding)
            if self.guard == "raise":
                raise StageError(finding.message, stage=finding.stage,
                                 stage_name=finding.stage_name or "")
            if self.guard == "warn":
                warnings.warn(finding.message, RuntimeRangeWarning, stacklevel=4)

    def _check_finite(self, i: int, idx: Array, x: Array) -> None:
        from ..errors import printable
        from .guard import check_finite

        finding = check_finite(x, [printable(self._listing.filenames[j]) for j in idx], i,
                               self.epoch, self.config)
        if finding is None:
            return
        self.findings.append(finding)
        if self.guard == "raise":
            raise StageError(finding.message)
        if self.guard == "warn":
            warnings.warn(finding.message, RuntimeRangeWarning, stacklevel=4)

    # ------------------------------------------------------------------- setup, workers
    def _fit(self) -> None:
        """Featurewise statistics from the training files (all of them, whatever the shard)."""
        training = self._listing if self.subset != "validation" else list_subset(self.config, "training")
        paths = training.filepaths
        job = make_job(self.config, paths, self.pipeline, run_stages=False)

        def images() -> Iterator[Array]:
            for k in range(len(paths)):
                try:
                    yield job.load(k)
                except DecodeError:
                    if self._on_error != "skip":
                        raise

        self.pipeline.fit(images())

    def _probe(self) -> None:
        """Shapes and dtypes of the batch and of a worker slot, from the first readable file."""
        if self._listing.samples == 0 and self.subset is not None:
            self._empty_subset()  # e.g. validation_split 0.2 of 3 files per class: len 0, as Keras
            return
        first = None
        # with `skip`, bad files may fill the start of the listing: look until one reads
        limit = self._listing.samples if self._on_error == "skip" else min(self._listing.samples, 16)
        for k in range(limit):
            try:
                raw = self._job.load(k)
            except DecodeError as exc:
                first = first or exc
                continue
            out = self._run.apply(raw, file=self._job.paths[k], index=k)
            self.image_shape = tuple(out.shape)
            self.dtype = batch_dtype(self.pipeline, out.dtype)
            self._slot_shape = tuple(raw.shape) if self._batched else self.image_shape
            self._slot_dtype = raw.dtype if self._batched else self.dtype
            return
        if first is None:
            raise PreprocError(f"{self.directory}: no image to batch")
        raise first

    def _empty_subset(self) -> None:
        b = self.config.batches
        self.image_shape = tuple(b.target_size) + (self.config.channels,)
        entry = self.pipeline.entry_spec.dtype or "float32"
        self.dtype = batch_dtype(self.pipeline, np.dtype(entry))
        self._slot_shape, self._slot_dtype = self.image_shape, self.dtype

    def preview(self, n: int = 8) -> tuple[Array, Array]:
        """``(augmented, plain)`` arrays of the first ``n`` images of the current epoch.

        The augmented images are exactly those the batches hold; the plain ones went through
        the deterministic stages alone (as validation does). See :mod:`preproc.batches.preview`.
        """
        from .preview import samples

        return samples(self, n)

    def start(self) -> BatchIterator:
        """Start the worker processes now (they start on the first batch otherwise)."""
        self._get_engine()
        return self

    def _get_engine(self) -> InlineEngine | ProcessEngine:
        from .workers import InlineEngine, ProcessEngine, Window

        if self._engine is None:
            # cached rows of elementwise pipelines are a memory copy: workers would only add IPC
            inline = self._cache is not None and self._batched
            slots = 1 if self._workers <= 0 or inline or not can_fork() else self._prefetch + 1
            check_batch_memory((self.batch_size,) + self._slot_shape, self._slot_dtype,
                                self.dtype, slots)
            job = cast("ImageJob", self._job)  # a CachedJob offers ImageJob's interface
            if self._workers <= 0 or inline or not can_fork():
                self._engine = InlineEngine(job)
            else:
                slots = self._prefetch + 1
                self._engine = ProcessEngine(job, self._workers, slots,
                                             (self.batch_size,) + self._slot_shape,
                                             self._slot_dtype,
                                             timeout=self.config.batches.worker_timeout)
                self._window = Window(self._engine, slots)
        return self._engine

    def close(self) -> None:
        """Stop the worker processes (a later batch restarts them)."""
        if self._engine is not None:
            self._engine.close()
        self._engine = None
        self._window = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"BatchIterator({self.samples} images, {self.num_classes} classes, "
                f"{len(self)} batches of {self.batch_size}, epoch {self.epoch})")


#: guard statistics that pass any interval (for stages whose output the cache holds)
_PASS = (math.inf, -math.inf, False)


def _locate(err: BaseException, batch: int, epoch: int) -> None:
    """Add the batch to an error's message (kept as attributes too)."""
    if isinstance(err, PreprocError) and getattr(err, "batch", None) is None:
        located: Any = err  # PreprocError declares no batch attributes: added where it is known
        located.batch, located.epoch = batch, epoch
        err.message = f"{err.message} [batch {batch} of epoch {epoch}]"
