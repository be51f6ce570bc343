"""Framework adapters for a :class:`~preproc.flow.BatchIterator`; each imports its framework lazily.

Two ways into torch:

* :func:`torch_dataset`: a map-style ``torch.utils.data.Dataset`` over **samples**: item ``i``
  is image ``i`` of the subset (listing order) with its label, decoded and run through the
  stages in the calling process. The torch ``DataLoader`` then does the rest with its own tools:
  ``batch_size``, ``shuffle``, ``num_workers``, ``DistributedSampler``, ``pin_memory``,
  ``persistent_workers``. Nothing of preproc's worker pool is used or inherited.
* :func:`torch_iterable`: an ``IterableDataset`` over **batches** made by preproc's own workers
  (its shuffle, shard, prefetch and runtime guard); each pass is one epoch and advances the
  epoch. Use it with ``DataLoader(ds, batch_size=None, num_workers=0)``.

Tensors are channels-first, ``(C, H, W)`` per sample and ``(N, C, H, W)`` per batch, made from
the arrays without copying; ``channels_last=True`` keeps preproc's ``(H, W, C)`` layout.

:func:`keras_dataset` gives a Keras 3 ``keras.utils.PyDataset`` over batches. With the default
``workers=1`` the batches come from preproc's pool; with ``workers > 1`` (threads) calls are
serialized onto that pool; with ``use_multiprocessing=True`` each Keras process computes its
batches itself, in-process, element for element equal to the pool's.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, SupportsIndex, TypeAlias

from ..errors import MissingDependencyError, PreprocError
from ..types import Array

if TYPE_CHECKING:
    from torch import Tensor
    from torch.utils.data import Dataset, IterableDataset

    from .flow import BatchIterator
    from .samples import Label, SampleSource

    #: what the torch adapters yield: ``x``, or ``(x, y)``, as tensors
    TorchItem: TypeAlias = Tensor | tuple[Tensor, ...]

__all__ = ["keras_dataset", "torch_dataset", "torch_iterable"]


def _import_torch() -> ModuleType:
    try:
        import torch
        import torch.utils.data
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "the PyTorch adapter") from exc
    return torch


def _layout(channels_first: bool | None, channels_last: bool) -> bool:
    """Whether tensors are channels-last (``channels_first`` is the older spelling)."""
    if channels_first is not None:
        return not channels_first
    return bool(channels_last)


def _to_torch(batch: Array | tuple[Label | None, ...], channels_last: bool,
              dims: int = 4) -> TorchItem:
    """Arrays to tensors without copying; image-shaped ones (``dims`` axes) channels-first."""
    torch = _import_torch()
    parts = batch if isinstance(batch, tuple) else (batch,)
    out: list[Tensor] = []
    for a in parts:
        t: Tensor = torch.as_tensor(a)
        if not channels_last and t.ndim == dims:
            t = t.permute(0, 3, 1, 2) if dims == 4 else t.permute(2, 0, 1)
        out.append(t)
    return tuple(out) if len(out) > 1 else out[0]


@functools.cache
def _torch_classes() -> tuple[Callable[[SampleSource, bool], Dataset[TorchItem]],
                              Callable[[BatchIterator, bool], IterableDataset[TorchItem]]]:
    _import_torch()
    from torch.utils.data import Dataset, IterableDataset, get_worker_info

    class SampleDataset(Dataset["TorchItem"]):
        """Item ``i`` is ``(x, y)`` (or ``x``) of image ``i`` of the subset, as tensors."""

        def __init__(self, source: SampleSource, channels_last: bool = False) -> None:
            self.source, self.channels_last = source, channels_last

        def __len__(self) -> int:
            return len(self.source)

        def __getitem__(self, i: SupportsIndex) -> TorchItem:
            return _to_torch(self.source[int(i)], self.channels_last, dims=3)

        @property
        def filenames(self) -> list[str]:
            return self.source.filenames

        def set_epoch(self, epoch: int) -> None:
            """Draw the random stages of ``epoch`` (workers started later see it; persistent
            workers keep the epoch they started with)."""
            self.source.epoch = int(epoch)

        @property
        def targets(self) -> list[int]:
            """Class index of every sample (as torchvision's ``ImageFolder.targets``)."""
            targets: list[int] = self.source.classes.tolist()
            return targets

    class BatchIterable(IterableDataset["TorchItem"]):
        """Each iteration yields one epoch of preproc's batches, then advances the epoch."""

        def __init__(self, it: BatchIterator, channels_last: bool = False) -> None:
            self.it, self.channels_last = it, channels_last

        def __len__(self) -> int:
            return len(self.it)

        def __iter__(self) -> Iterator[TorchItem]:
            if get_worker_info() is not None:
                raise PreprocError(
                    "torch_iterable yields batches made by preproc's own worker processes; "
                    "a DataLoader worker cannot start them. Use DataLoader(ds, batch_size=None, "
                    "num_workers=0), or torch_dataset(it) to let DataLoader workers decode")
            for batch in self.it:
                yield _to_torch(batch, self.channels_last)

    return SampleDataset, BatchIterable


def torch_dataset(it: BatchIterator, *, channels_last: bool = False,
                  channels_first: bool | None = None) -> Dataset[TorchItem]:
    """A map-style torch ``Dataset`` over the samples of ``it``'s subset.

    Each item is computed in the process that asks for it (DataLoader workers included), from
    a small picklable description of the job; ``it``'s own worker pool is never touched.

    Args:
        it: a :class:`~preproc.flow.BatchIterator` (its subset, fitted statistics and cache are
            used; its shard and shuffle are not: give the ``DataLoader`` a ``shuffle`` or a
            ``DistributedSampler``).
        channels_last: yield ``x`` as ``(H, W, C)``; default ``(C, H, W)`` (a view, no copy).
        channels_first: older spelling, ``channels_first=False`` equals ``channels_last=True``.

    Returns:
        A ``Dataset`` of ``len(it.filenames)`` items ``(x, y)`` (``x`` with ``class_mode: null``),
        ``x`` in the batches' dtype, ``y`` one row of what the batches hold (a float32 index or
        one-hot vector). The runtime guard does not run here; it runs in ``preproc run``.
    """
    from .samples import SampleSource

    cls = _torch_classes()[0]
    if it._shard is not None:
        raise PreprocError("torch_dataset covers the whole subset: build the iterator without "
                           "shard= and give the DataLoader a DistributedSampler")
    return cls(SampleSource(it), _layout(channels_first, channels_last))


def torch_iterable(it: BatchIterator, *, channels_last: bool = False,
                   channels_first: bool | None = None) -> IterableDataset[TorchItem]:
    """A torch ``IterableDataset`` over preproc's batches: each pass is one epoch of ``it``.

    Use with ``DataLoader(ds, batch_size=None, num_workers=0)``: preproc's workers decode.
    """
    return _torch_classes()[1](it, _layout(channels_first, channels_last))


def _import_keras() -> Any:  # keras ships no types: its module is Any
    import importlib.util

    try:
        import keras
    except ImportError as exc:
        if importlib.util.find_spec("keras") is None:
            raise MissingDependencyError("keras", "keras", "the Keras adapter") from exc
        backend = os.environ.get("KERAS_BACKEND")
        raise KerasBackendError(backend, exc) from exc
    return keras


class KerasBackendError(MissingDependencyError):
    """keras imports only with a backend, and the chosen one (tensorflow by default) is missing."""

    def __init__(self, backend: str | None, exc: ImportError) -> None:
        chosen = f"KERAS_BACKEND={backend}" if backend else \
            "KERAS_BACKEND is not set, so keras chose tensorflow"
        PreprocError.__init__(self, (
            f"the Keras adapter: keras is installed, but its backend is not ({chosen}; importing "
            f"keras failed with: {exc}). Set the backend before keras is first imported, e.g. "
            "`export KERAS_BACKEND=torch` (torch comes with pip install 'preproc[keras]'), "
            "or install the backend you chose"))
        self.package = getattr(exc, "name", None) or (backend or "tensorflow")
        self.extra = "keras"
        self.backend = backend


@functools.cache
def _keras_class() -> Callable[..., Any]:
    _import_keras()
    from keras.utils import PyDataset

    class BatchPyDataset(PyDataset):  # type: ignore[misc]  # keras ships no types: Any base
        """Keras 3 ``PyDataset`` over a preproc ``BatchIterator``."""

        def __init__(self, it: BatchIterator, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.it = it
            self._owner = os.getpid()
            self._lock = threading.Lock()
            self._source: SampleSource | None = None

        def __len__(self) -> int:
            return len(self.it)

        def __getitem__(self, i: int) -> Array | tuple[Array, Array]:
            if os.getpid() == self._owner:
                with self._lock:  # Keras' threads share one pool
                    batch: Array | tuple[Array, Array] = self.it[i]
                    return batch
            # a Keras worker process: daemonic, and the pool it inherited is the parent's
            if self._source is None:
                from .samples import SampleSource

                self._source = SampleSource(self.it)
            self._source.epoch = self.it.epoch
            n = len(self.it)
            if not -n <= i < n:
                raise IndexError(f"batch {i} out of range: the iterator has {n} batches")
            x, y = self._source.batch(self.it.batch_indices(i % n))
            return x if y is None else (x, y)

        def on_epoch_end(self) -> None:
            self.it.on_epoch_end()

    return BatchPyDataset


def keras_dataset(it: BatchIterator, **kwargs: Any) -> Any:
    """A Keras 3 ``keras.utils.PyDataset`` over ``it`` (``kwargs`` go to ``PyDataset``).

    Args:
        it: a :class:`~preproc.flow.BatchIterator`.
        **kwargs: ``PyDataset`` options. The default (one worker) uses preproc's pool and fits
            best; ``workers=N, use_multiprocessing=True`` also works (each Keras process then
            decodes its batches itself, identical to the pool's).

    Returns:
        The dataset (typed ``Any``: keras ships no type information); ``model.fit`` calls ``on_epoch_end``, which reshuffles ``it``.
    """
    return _keras_class()(it, **kwargs)
