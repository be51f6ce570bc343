"""Framework adapters for a :class:`~preproc.flow.BatchIterator`; each imports its framework lazily.

* :func:`torch_dataset`: a map-style ``torch.utils.data.Dataset`` whose item ``i`` is batch ``i``
  as tensors; use it with ``DataLoader(ds, batch_size=None)``.
* :func:`torch_iterable`: an ``IterableDataset`` yielding one epoch of batches per iteration
  (advancing the epoch, so the next pass is reshuffled).
* :func:`keras_dataset`: a Keras 3 ``keras.utils.PyDataset`` for ``model.fit``.

preproc already decodes in its own worker processes, so keep ``DataLoader(num_workers=0)`` and
leave Keras' ``workers`` at 1: more loader processes would only duplicate the work. Tensors are
made from the batches without copying; ``channels_first`` (torch default) permutes the view to
``(N, C, H, W)``.
"""

from __future__ import annotations

import functools

from ..errors import MissingDependencyError

__all__ = ["keras_dataset", "torch_dataset", "torch_iterable"]


def _import_torch():
    try:
        import torch
        import torch.utils.data
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "the PyTorch adapter") from exc
    return torch


def _to_torch(batch, channels_first: bool):
    torch = _import_torch()
    parts = batch if isinstance(batch, tuple) else (batch,)
    x = torch.from_numpy(parts[0])
    if channels_first:
        x = x.permute(0, 3, 1, 2)
    rest = []
    for y in parts[1:]:
        y = torch.from_numpy(y)
        rest.append(y.permute(0, 3, 1, 2) if channels_first and y.ndim == 4 else y)
    return (x, *rest) if rest else x


@functools.cache
def _torch_classes():
    torch = _import_torch()

    class BatchDataset(torch.utils.data.Dataset):
        """Item ``i`` is batch ``i`` of the current epoch, as tensors."""

        def __init__(self, it, channels_first: bool = True) -> None:
            self.it, self.channels_first = it, channels_first

        def __len__(self) -> int:
            return len(self.it)

        def __getitem__(self, i):
            return _to_torch(self.it[i], self.channels_first)

        def set_epoch(self, epoch: int) -> None:
            self.it.set_epoch(epoch)

    class BatchIterable(torch.utils.data.IterableDataset):
        """Each iteration yields one epoch of batches, then advances the epoch."""

        def __init__(self, it, channels_first: bool = True) -> None:
            self.it, self.channels_first = it, channels_first

        def __len__(self) -> int:
            return len(self.it)

        def __iter__(self):
            if torch.utils.data.get_worker_info() is not None:
                raise RuntimeError("preproc decodes in its own processes: use "
                                   "DataLoader(..., num_workers=0)")
            for batch in self.it:
                yield _to_torch(batch, self.channels_first)

    return BatchDataset, BatchIterable


def torch_dataset(it, *, channels_first: bool = True):
    """A map-style torch ``Dataset`` over the batches of ``it``.

    Args:
        it: a :class:`~preproc.flow.BatchIterator`.
        channels_first: yield ``x`` as ``(N, C, H, W)`` (a view, no copy).

    Returns:
        A ``Dataset`` whose item ``i`` is ``x`` or ``(x, y)`` of batch ``i``, as tensors in the
        batch's dtype (float32 after a rescale). Call ``set_epoch`` (or ``it.on_epoch_end()``)
        between epochs to reshuffle.
    """
    return _torch_classes()[0](it, channels_first)


def torch_iterable(it, *, channels_first: bool = True):
    """A torch ``IterableDataset``: each pass is one epoch of ``it``, reshuffled per pass."""
    return _torch_classes()[1](it, channels_first)


@functools.cache
def _keras_class():
    try:
        import keras
    except ImportError as exc:
        raise MissingDependencyError("keras", "keras", "the Keras adapter") from exc

    class BatchPyDataset(keras.utils.PyDataset):
        """Keras 3 ``PyDataset`` over a preproc ``BatchIterator``."""

        def __init__(self, it, **kwargs) -> None:
            super().__init__(**kwargs)
            self.it = it

        def __len__(self) -> int:
            return len(self.it)

        def __getitem__(self, i):
            return self.it[i]

        def on_epoch_end(self) -> None:
            self.it.on_epoch_end()

    return BatchPyDataset


def keras_dataset(it, **kwargs):
    """A Keras 3 ``keras.utils.PyDataset`` over ``it`` (``kwargs`` go to ``PyDataset``).

    Args:
        it: a :class:`~preproc.flow.BatchIterator`.
        **kwargs: ``PyDataset`` options; the defaults (one worker thread, no multiprocessing)
            fit best, since preproc has its own workers.

    Returns:
        The dataset; ``model.fit`` calls ``on_epoch_end``, which reshuffles ``it``.
    """
    return _keras_class()(it, **kwargs)
