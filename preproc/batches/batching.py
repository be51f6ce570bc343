"""Finishing a batch in the parent: assembling rows, batch-wide elementwise stages, labels.

When every stage is elementwise with fixed parameters (rescale, clip, window, fixed or
featurewise normalize, ...), workers ship the resized images in their compact container dtype
(uint8, uint16) and the parent applies the stages once to the whole batch, viewed as one tall
``(N*H, W, C)`` image: no per-image Python loop, no float32 copy crossing processes. Stages that
look at a whole image (CLAHE, samplewise normalize) or come from plugins run per image in the
workers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import DTypeLike

from ..errors import PreprocError
from ..types import Array

if TYPE_CHECKING:
    import warnings

    from ..stages.base import Stage
    from ..stages.pipeline import Pipeline
    from .workers import Result

#: per image, ``(min, max, has_nan)`` after each stage
ImageStats = list[tuple[float, float, bool]]

__all__ = ["apply_stages", "assemble", "batchable", "labels"]

def batchable(stages: Iterable[Stage]) -> bool:
    """Whether every stage may run on a stacked batch: each declares ``elementwise``."""
    return all(stage.traits().elementwise for stage in stages)


def assemble(view: Array, results: Sequence[Result], keep: list[int] | None) -> Array:
    """The rows ``keep`` of a finished slot (all when ``None``), as an array that owns its data.

    Rows that came back whole (another dtype than the slot) are placed in a widened copy.
    """
    rows = list(range(len(results))) if keep is None else keep
    extra: dict[int, Array] = {k: a for k in rows if (a := results[k].array) is not None}
    if not extra:
        return view.copy() if keep is None else view[rows]
    dtype = np.result_type(view.dtype, *(a.dtype for a in extra.values()))
    out = view[rows].astype(dtype)
    for j, k in enumerate(rows):
        if k in extra:
            out[j] = extra[k]
    return out


def apply_stages(pipeline: Pipeline, batch: Array, guard: bool, out_dtype: DTypeLike,
                 finite: bool = False) -> tuple[Array, list[ImageStats] | None]:
    """Run a pipeline of elementwise stages on an ``(N, H, W, C)`` batch.

    Args:
        pipeline: the :class:`~preproc.stages.pipeline.Pipeline` (every stage :func:`batchable`).
        batch: the images in their container dtype.
        guard: also return per-image ``[(min, max, has_nan), ...]`` after each stage.
        out_dtype: dtype of the result: the pipeline's output (float32 without stages, as Keras).
        finite: every stage's output is proven finite (see
            :func:`preproc.batches.guard.finite_by_construction`): the guard's statistics skip
            the NaN search and take plain minima and maxima, the same figures for finite data.

    Returns:
        The processed batch and the per-image statistics (``None`` without ``guard``).
    """
    n, stages = batch.shape[0], pipeline.stages
    if not stages:
        return batch.astype(out_dtype), ([[] for _ in range(n)] if guard else None)
    if n == 0:  # every file of the batch was skipped
        return np.empty(batch.shape[:3] + (batch.shape[3],), dtype=out_dtype), ([] if guard else None)
    x = batch.reshape((-1,) + batch.shape[2:])
    per_stage: list[ImageStats] = []
    for k, stage in enumerate(stages):
        x = stage(x, pipeline.context(k))
        if guard:
            per_stage.append(_image_stats(x.reshape((n, -1)), finite))
    x = x.reshape(batch.shape[:1] + batch.shape[1:3] + x.shape[2:])
    if np.may_share_memory(x, batch):  # a stage that returned its input: own the memory
        x = x.copy()
    stats = [[s[j] for s in per_stage] for j in range(n)] if guard else None
    return x, stats


def _image_stats(flat: Array, finite: bool = False) -> ImageStats:
    if flat.shape[1] == 0:
        return [(0.0, 0.0, False)] * flat.shape[0]
    if flat.dtype.kind == "f" and not finite:
        # any() over axis 1 of a 2-D array is an array; numpy's stubs also allow a scalar
        nan = cast(Array, np.isnan(flat).any(axis=1))
        with np.errstate(invalid="ignore"), _quiet():
            lo, hi = np.nanmin(flat, axis=1), np.nanmax(flat, axis=1)
        lo, hi = np.where(np.isnan(lo), 0, lo), np.where(np.isnan(hi), 0, hi)
    else:
        nan = np.zeros(flat.shape[0], bool)
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    return [(float(a), float(b), bool(c)) for a, b, c in zip(lo, hi, nan)]


class _quiet:
    _ctx: warnings.catch_warnings[None]

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._ctx.__exit__(exc_type, exc, tb)


def labels(class_mode: str | None, classes: Array, num_classes: int,
           x: Array | None) -> Array | None:
    """``y`` as Keras builds it: float32 one-hot, float32 indices, a copy of ``x``, or ``None``."""
    if class_mode is None:
        return None
    if class_mode == "input":
        if x is None:  # a caller's mistake: the labels of "input" are the images themselves
            raise PreprocError("class_mode 'input' needs the batch x to copy as labels")
        y_input: Array = x.copy()  # (typed local: under Python 3.10 numpy's `Self` reads as Any)
        return y_input
    if class_mode in ("binary", "sparse"):
        return classes.astype(np.float32)
    if class_mode != "categorical":
        raise PreprocError(f"unknown class_mode {class_mode!r}")
    y = np.zeros((len(classes), num_classes), dtype=np.float32)
    y[np.arange(len(classes)), classes] = 1.0
    return y
