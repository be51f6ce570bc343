"""The runtime guard: sampled batches against each stage's statically inferred interval.

Workers measure every stage's output min and max (and NaN) for the images of a sampled batch;
:func:`check_batch` compares the batch-wide extremes with ``pipeline.specs[i].interval`` and
returns one ``runtime-range-violation`` finding per offending stage. The inference is meant to be
sound, so a violation means the data is not what the config declares, or a stage's
contract is wrong.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..findings import Finding, Location
from ..spec import Interval
from ..types import Array

if TYPE_CHECKING:
    import numpy as np

    from ..config.model import Config
    from ..stages.base import Stage
    from ..stages.pipeline import Pipeline
    from .batching import ImageStats

__all__ = ["check_batch", "check_finite", "finite_by_construction"]


def check_batch(pipeline: Pipeline, config: Config | None, batch: int, epoch: int,
                files: list[str], stats: list[ImageStats | None]) -> list[Finding]:
    """Findings for one sampled batch.

    Args:
        pipeline: the :class:`~preproc.stages.pipeline.Pipeline` (stages and inferred ``specs``).
        config: the loaded config (for the file name in locations), or ``None``.
        batch: batch index in the epoch; epoch: epoch number.
        files: path of every image of the batch.
        stats: per image, ``[(min, max, has_nan), ...]`` after each stage (``None``: not measured).

    Returns:
        One finding per stage whose output left its inferred interval, naming the offending files.
    """
    found: list[Finding] = []
    for k, (stage, spec) in enumerate(zip(pipeline.stages, pipeline.specs)):
        allowed = spec.interval
        bad: list[str] = []
        lo, hi = math.inf, -math.inf
        for path, per_stage in zip(files, stats):
            if not per_stage:
                continue
            s_lo, s_hi, nan = per_stage[k]
            lo, hi = min(lo, s_lo), max(hi, s_hi)
            if nan or s_lo < allowed.lo or s_hi > allowed.hi:
                bad.append(path)
        if bad:
            found.append(_finding(config, stage, allowed, Interval(lo, hi), batch, epoch, bad))
    return found


def check_finite(x: Array, files: list[str], batch: int, epoch: int,
                 config: Config | None = None) -> Finding | None:
    """A ``non-finite-values`` finding when the float batch ``x`` holds NaN or infinity.

    Args:
        x: the batch, ``(N, H, W, C)``.
        files: the file of each row, as shown to the user.
    """
    import numpy as np

    if x.dtype.kind != "f" or not x.size:
        return None
    finite = np.isfinite(x)
    if finite.all():
        return None
    rows = np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))
    count = int(finite.size - np.count_nonzero(finite))
    bad = [files[r] for r in rows]
    path = getattr(config, "path", None) if config is not None else None
    return Finding(
        "non-finite-values",
        f"batch {batch} of epoch {epoch} holds {count} NaN or infinite value(s) in "
        f"{len(bad)} image(s)",
        "the files hold NaN or inf (run `preproc audit`), or a stage divides by zero; repair "
        "or drop the files before training on them",
        location=Location(file=str(path) if path else None), files=tuple(bad[:10]),
        count=len(bad), data={"batch": batch, "epoch": epoch, "values": count},
    )


def finite_by_construction(pipeline: Pipeline, dtype: np.dtype[Any],
                           out_dtype: np.dtype[Any]) -> bool:
    """Whether a batch held as integers of ``dtype`` can only come out of ``pipeline`` finite.

    The proof runs the stages' own inference on the whole range of the container ``dtype`` (not
    on what the config declares, which the data may not honour): integers hold no NaN or
    infinity, and stages that map a bounded interval to a bounded interval, inside what
    ``out_dtype`` can represent, cannot make one. Float containers, and any stage whose
    inference is unknown, unbounded or fails, prove nothing, and the batch keeps its scan.

    Args:
        pipeline: the stages that run on the batch, with the spec bound to their input.
        dtype: the dtype of the rows entering the first stage.
        out_dtype: the dtype of the finished batch.
    """
    import dataclasses

    import numpy as np

    from .. import dtypes
    from ..stages.pipeline import infer_checked

    if np.dtype(dtype).kind not in "uib":
        return False
    entry = pipeline.inputs[0] if pipeline.stages else pipeline.entry_spec
    spec = dataclasses.replace(entry, dtype=np.dtype(dtype).name, known=True,
                               interval=Interval.of(dtypes.dtype_range(np.dtype(dtype).name)))
    for stage in pipeline.stages:
        spec, finding = infer_checked(stage, spec)
        if finding is not None or not spec.known or not _representable(spec.interval, spec.dtype):
            return False
    return _representable(spec.interval, out_dtype)


def _representable(interval: Interval, dtype: object) -> bool:
    """``interval`` is bounded and, for a float ``dtype`` (float32 when unknown), inside its
    finite range: an intermediate result that overflowed would be infinite."""
    import numpy as np

    if not interval.bounded:
        return False
    dt = np.dtype(dtype if dtype is not None else np.float32)  # type: ignore[call-overload]
    if dt.kind != "f":
        return True
    return max(abs(interval.lo), abs(interval.hi)) < float(np.finfo(dt).max)


def _finding(config: Config | None, stage: Stage, allowed: Interval, seen: Interval, batch: int,
             epoch: int, files: list[str]) -> Finding:
    where = f" (line {stage.line})" if stage.line is not None else ""
    message = (f"stage {stage.index} `{stage.name}`{where} produced values in {seen} outside its "
               f"inferred {allowed} in batch {batch} of epoch {epoch} ({len(files)} image(s))")
    hint = ("the files do not match source.expect (run `preproc audit`), or a plugin stage's "
            "infer() is not sound; fix the declaration or the stage")
    path = getattr(config, "path", None) if config is not None else None
    return Finding(
        "runtime-range-violation", message, hint, stage=stage.index, stage_name=stage.name,
        location=Location(file=str(path) if path else None, line=stage.line),
        files=tuple(files), count=len(files),
        data={"batch": batch, "epoch": epoch, "observed": seen.as_list(),
              "inferred": allowed.as_list()},
    )
