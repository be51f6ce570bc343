"""The runtime guard: sampled batches against each stage's statically inferred interval.

Workers measure every stage's output min and max (and NaN) for the images of a sampled batch;
:func:`check_batch` compares the batch-wide extremes with ``pipeline.specs[i].interval`` and
returns one ``runtime-range-violation`` finding per offending stage. The inference is meant to be
sound, so a violation means the data is not what the config declares, or a stage's
contract is wrong.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..findings import Finding, Location
from ..spec import Interval
from ..types import Array

if TYPE_CHECKING:
    from ..config.model import Config
    from ..stages.base import Stage
    from ..stages.pipeline import Pipeline
    from .batching import ImageStats

__all__ = ["check_batch", "check_finite"]


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
