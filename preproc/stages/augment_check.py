"""Checking both pipelines a config with random stages runs: training and evaluation.

The training pipeline runs every stage; the evaluation pipeline (the validation subset, and any
run in ``batches.mode: evaluation``) leaves the random stages out or runs their evaluation twin.
A stage after a random stage may receive another interval or dtype in each, so each pipeline is
checked on its own and the two finding lists are merged here:

* a finding both pipelines raise at the same place (code, stage) is reported once, untagged,
  in the training pipeline's words;
* a finding only one pipeline raises says so: ``[training pipeline only]`` or
  ``[evaluation pipeline only]`` ends its message, and ``data.pipeline`` holds the name;
* ``pipeline-mismatch``: the two pipelines end in different image sizes or channel counts (a
  model trained on one cannot take the other; an error) or dtypes (a warning), e.g. a random
  stage that changes the size and has no evaluation twin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..findings import Finding, Location, Severity
from .base import Stage
from .pipeline import Pipeline

__all__ = ["merge_findings", "mismatch_findings", "pipelines_differ"]

_WHERE = {"training": "training pipeline only",
          "evaluation": "evaluation pipeline only: validation subset, batches.mode evaluation"}


def pipelines_differ(training: Pipeline, evaluation: Pipeline) -> bool:
    """Whether the two pipelines run different stages (a random stage, ``apply_to``)."""
    def names(p: Pipeline) -> list[tuple[int, str]]:
        return [(s.index, s.name) for s in p.stages]
    return names(training) != names(evaluation)


def _key(f: Finding) -> tuple[str, int | None, str]:
    return f.code, f.stage, f.location.path


def _tagged(f: Finding, pipeline: str) -> Finding:
    return replace(f, message=f"{f.message} [{_WHERE[pipeline]}]",
                   data={**f.data, "pipeline": pipeline})


def merge_findings(training: Sequence[Finding], evaluation: Sequence[Finding]) -> list[Finding]:
    """One list: shared findings once, the others tagged with their pipeline, by stage order."""
    in_training = {_key(f) for f in training}
    in_evaluation = {_key(f) for f in evaluation}
    merged = [f if _key(f) in in_evaluation else _tagged(f, "training") for f in training]
    merged += [_tagged(f, "evaluation") for f in evaluation if _key(f) not in in_training]

    def order(f: Finding) -> tuple[int, int]:  # pipeline-wide findings first, as a check lists
        return (0, 0) if f.stage is None else (1, f.stage)
    return sorted(merged, key=order)


def _final_size(p: Pipeline, size: tuple[int, int]) -> tuple[int, int]:
    h, w = size
    for stage in p.stages:
        resize: Callable[[int, int], Any] | None = getattr(stage, "output_size", None)
        if resize is not None:
            h, w = resize(h, w)
    return int(h), int(w)


def _changers(p: Pipeline, other: Pipeline, size: tuple[int, int], dtype: bool) -> list[Stage]:
    """Stages of ``p`` missing from ``other`` that change the size or channels (or the dtype)."""
    kept = {(s.index, s.name) for s in other.stages}
    h, w = size
    out = []
    for k, stage in enumerate(p.stages):
        before, after = p.inputs[k], p.specs[k]
        resize: Callable[[int, int], Any] | None = getattr(stage, "output_size", None)
        new = tuple(resize(h, w)) if resize is not None else (h, w)
        changes = (before.dtype != after.dtype) if dtype else \
            (new != (h, w) or before.channels != after.channels)
        h, w = int(new[0]), int(new[1])
        if changes and (stage.index, stage.name) not in kept:
            out.append(stage)
    return out


def mismatch_findings(training: Pipeline, evaluation: Pipeline, target_size: tuple[int, int],
                      file: str | None = None) -> list[Finding]:
    """``pipeline-mismatch`` when the two pipelines' images differ in shape or dtype."""
    t, e = training.output_spec, evaluation.output_spec
    shape_t = _final_size(training, target_size) + (t.channels,)
    shape_e = _final_size(evaluation, target_size) + (e.channels,)
    shape_differs = None not in (t.channels, e.channels) and shape_t != shape_e
    dtype_differs = None not in (t.dtype, e.dtype) and t.dtype != e.dtype
    if not (shape_differs or dtype_differs):
        return []
    dtype_only = not shape_differs
    only_t = _changers(training, evaluation, target_size, dtype_only)
    only_e = _changers(evaluation, training, target_size, dtype_only)
    blamed = [f"{s.describe()}, run in training only" for s in only_t]
    blamed += [f"{s.describe()}, run in evaluation only" for s in only_e]
    first = (only_t + only_e)[0] if only_t or only_e else None
    where = Location(file=file, path="stages") if first is None else Location(
        file=file, line=first.line, column=first.column, path=f"stages[{first.index}].{first.name}")
    if shape_differs:
        what = f"images of {_shape(shape_t)} in training but {_shape(shape_e)} in evaluation"
        hint = ("give every random stage that changes the size or channels an evaluation twin "
                "(random_crop has center_crop), or let it run on validation too with "
                "`apply_to: [training, validation]`")
    else:
        what = f"{t.dtype} batches in training but {e.dtype} in evaluation"
        hint = ("add a `to_dtype` (or a rescale) after the random stages, so both pipelines "
                "hand the model the same dtype")
    return [Finding(
        "pipeline-mismatch",
        f"the pipeline ends in {what}" + (f" ({'; '.join(blamed)})" if blamed else ""),
        hint=hint,
        severity=Severity.ERROR if shape_differs else Severity.WARNING,
        stage=None if first is None else first.index,
        stage_name=None if first is None else first.name,
        location=where,
        data={"training": {"shape": list(shape_t), "dtype": t.dtype},
              "evaluation": {"shape": list(shape_e), "dtype": e.dtype}},
    )]


def _shape(shape: tuple[int | None, ...]) -> str:
    return "x".join("?" if v is None else str(v) for v in shape)
