"""One sample, or one batch, of a :class:`~preproc.flow.BatchIterator` computed in the calling process.

A framework's own loader processes (torch ``DataLoader(num_workers=N)``, Keras ``PyDataset``
with ``use_multiprocessing``) are daemonic, so they may not start preproc's worker pool, and a
pool inherited through ``fork`` belongs to the parent. :class:`SampleSource` carries only what
one image needs (file paths or cache shards, the fitted stages, labels): it pickles small,
runs anywhere, and gives element for element what the iterator's batches hold.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike

from ..errors import PreprocError
from ..types import Array
from .batching import labels

if TYPE_CHECKING:
    from .cache import CachedJob
    from .flow import BatchIterator
    from .workers import ImageJob

#: the label of one sample: a one-hot row, or a float32 class index
Label = Array | np.float32

__all__ = ["SampleSource"]


class SampleSource:
    """Samples of an iterator's subset, in listing order (``filenames``/``classes`` order).

    Args:
        it: a :class:`~preproc.flow.BatchIterator`; its shard is ignored (a sampler shards a
            map-style dataset, e.g. ``DistributedSampler``).
    """

    def __init__(self, it: BatchIterator) -> None:
        self.job: ImageJob | CachedJob = dataclasses.replace(it._job, run_stages=True)  # it._job holds the run stages
        self.classes = np.asarray(it._listing.classes)
        self.class_mode, self.num_classes = it.class_mode, it.num_classes
        self.dtype = np.dtype(it.dtype)
        self.filenames = list(it._listing.filenames)
        #: random stages draw from (seed, epoch, file index, stage index), as in the batches
        self.epoch = it.epoch

    def __len__(self) -> int:
        return len(self.classes)

    def x(self, i: SupportsIndex) -> Array:
        """Image ``i`` after every stage, in the batch dtype, as an ``(H, W, C)`` array."""
        out, _ = self.job.run(int(i), False, self.epoch)
        if out.dtype != self.dtype:
            if not np.can_cast(out.dtype, self.dtype, "safe"):
                raise PreprocError(f"{self.filenames[int(i)]}: produced dtype {out.dtype}, the "
                                   f"batches hold {self.dtype}; declare source.expect.dtype")
            out = out.astype(self.dtype)
        return out

    def y(self, i: SupportsIndex) -> Label | None:
        """Label of sample ``i`` as Keras builds it for one row (``None`` without labels)."""
        if self.class_mode in (None, "input"):
            return None
        rows = labels(self.class_mode, self.classes[int(i) : int(i) + 1], self.num_classes, None)
        if rows is None:  # not reached: labels() is None only without a class_mode
            return None
        row: Label = rows[0]
        return row

    def __getitem__(self, i: SupportsIndex) -> Array | tuple[Array, Label | None]:
        x = self.x(i)
        if self.class_mode is None:
            return x
        if self.class_mode == "input":
            return x, x.copy()
        return x, self.y(i)

    def batch(self, indices: ArrayLike) -> tuple[Array, Array | None]:
        """``(x, y or None)`` of the listing entries ``indices``, stacked."""
        idx = np.asarray(indices, dtype=np.int64)
        first = self.x(idx[0]) if len(idx) else None
        shape = first.shape if first is not None else (0, 0, 0)
        x = np.empty((len(idx),) + tuple(shape), self.dtype)
        for k, j in enumerate(idx):
            x[k] = first if k == 0 else self.x(j)
        return x, labels(self.class_mode, self.classes[idx], self.num_classes, x)
