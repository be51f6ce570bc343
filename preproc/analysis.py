"""The static check: propagate value specs, compare each stage's input with what it
expects, and report findings at the stage's YAML line. No pixel is decoded.

Two chains run side by side. The *real* chain is what the data will be: it is the trace, and
the runtime guard checks batches against it. The *checked* chain is what each stage would
receive had every earlier stage been given what it expects: findings are computed on it, so one
mistake is reported once, at its stage, instead of cascading into every later stage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import dtypes
from .findings import Finding, Location, Report, Severity
from .io.paths import display_path
from .stages.pipeline import Pipeline, infer_checked
from .spec import Interval, ValueSpec
from .stages.base import Stage

if TYPE_CHECKING:
    from .config.model import Config
    from .dataset.dicom_units import DicomSample
    from .io.dicom import DicomDecoding
    from .types import StrPath

__all__ = ["check", "check_pipeline", "require_check"]

UNDERUSE_RATIO = 0.25
_REPAIRED = {"range-overflow", "compounded-scaling", "unbounded-input", "range-underuse",
             "degenerate-output"}
_TO_EXPECTED = {"compounded-scaling", "range-underuse", "degenerate-output"}


def check(config: Config | StrPath | Mapping[str, Any], *, sample: int = 64,
          mode: str | None = None) -> Report:
    """Check a config statically and apply its ``checks:`` policy.

    Every pipeline the config runs is checked: the training one (random stages included) in
    ``batches.mode: training``, the evaluation one (deterministic stages alone) with a
    ``validation_split`` or in ``batches.mode: evaluation``. A finding of one pipeline only
    says which.

    Args:
        config: a :class:`~preproc.config.Config`, the path of a YAML file, or a mapping.
        sample: file headers to read when ``source.directory`` exists (no pixels are decoded),
            to confirm the declared source or, where nothing is declared, to build it.
        mode: a pipeline to check besides those (``'training'`` or ``'evaluation'``), e.g.
            the one a run asks for.
    """
    from .config.model import as_config

    return _checked(as_config(config), sample, mode)[0]


def _checked(config: Config, sample: int,
             mode: str | None = None) -> tuple[Report, ValueSpec]:
    """The check's report and the source spec it started from (from ``source.expect`` or the
    sampled headers), so a flow can build its pipeline without sampling the headers again."""
    from .dataset.sampling import resolve_source_sample

    src, findings, dicom = resolve_source_sample(config, sample)
    pipelines = {m: Pipeline.from_config(config, source=src, mode=m)
                 for m in _modes_run(config, mode)}
    pipeline = pipelines.get("training") or pipelines["evaluation"]
    file = display_path(config.path)
    findings += stored_units_findings(pipeline, dicom, config.source.dicom, file)
    findings += inverted_twice_findings(pipeline, dicom, config.source.dicom, file)
    findings += _pipelines_findings(pipelines, config.batches.target_size, file)
    findings += _decode_findings(config)
    return Report.with_policy(findings, config.checks, pipeline.trace()), src


def _modes_run(config: Config, extra: str | None) -> list[str]:
    """The pipelines a config runs: its mode's, the evaluation one of a validation split."""
    b = config.batches
    modes: set[str] = {b.mode}
    if extra is not None:
        modes.add(extra)
    if b.validation_split:
        modes.add("evaluation")
    return [m for m in ("training", "evaluation") if m in modes]


def _pipelines_findings(pipelines: dict[str, Pipeline], target_size: tuple[int, int],
                        file: str | None) -> list[Finding]:
    from .stages.augment_check import merge_findings, mismatch_findings, pipelines_differ

    training, evaluation = pipelines.get("training"), pipelines.get("evaluation")
    if training is None or evaluation is None or not pipelines_differ(training, evaluation):
        return check_pipeline(next(iter(pipelines.values())), file=file)
    return (merge_findings(check_pipeline(training, file=file),
                           check_pipeline(evaluation, file=file))
            + mismatch_findings(training, evaluation, target_size, file))


def require_check(config: Config | StrPath | Mapping[str, Any], *, sample: int = 64,
                  mode: str | None = None) -> tuple[Report, ValueSpec]:
    """Run :func:`check` and raise :class:`~preproc.errors.CheckFailed` when it fails.

    Findings below ``checks.fail_on`` do not stop anything: they are issued once, together, as
    a :class:`CheckWarning`.

    Returns:
        The report and the source spec the check started from.
    """
    import warnings

    from .config.model import as_config
    from .errors import CheckFailed

    config = as_config(config)
    report, src = _checked(config, sample, mode)
    if config.batches.on_error == "skip":  # the config asks for unreadable files to be dropped
        tolerated = [f if f.code not in _SKIPPED_CODES else replace(f, severity=Severity.WARNING)
                     for f in report.findings]
        report = Report(tolerated, report.trace, report.fail_on)
    if report.failed:
        path = getattr(config, "path", None)
        raise CheckFailed(report.format_text(), findings=report.findings,
                          config=str(path) if path is not None else None)
    if report.findings:
        warnings.warn(CheckWarning(report.format_text()), stacklevel=3)
    return report, src


#: data findings that ``batches.on_error: skip`` turns into files dropped at run time
_SKIPPED_CODES = frozenset({"unreadable-file", "lossy-decode"})


class CheckWarning(UserWarning):
    """Findings of a config's check below ``checks.fail_on``, issued when a flow starts."""


def _decode_findings(config: Config) -> list[Finding]:
    decode = getattr(config.batches, "decode", None)
    if decode is None or not decode.jpeg_draft:
        return []
    return [Finding(
        "jpeg-draft", "batches.decode.jpeg_draft: JPEGs are decoded at 1/2, 1/4 or 1/8 scale "
        "before the resize, so batches differ slightly from Keras' (and from jpeg_draft: false)",
        "keep it for speed on large JPEGs; set it to false where batches must equal Keras'",
        location=Location(file=display_path(config.path), path="batches.decode.jpeg_draft"))]


def check_pipeline(pipeline: Pipeline, *, file: str | None = None) -> list[Finding]:
    """Findings of every stage of an already built pipeline (no policy applied)."""
    findings: list[Finding] = []
    spec = pipeline.entry_spec
    if not spec.known and pipeline.stages:
        findings.append(Finding(
            "source-unknown",
            "nothing is declared about the source and no files were sampled; range checks "
            "are skipped",
            hint="declare source.expect (dtype, bit_depth, range), or point source.directory "
            "at the data",
            location=Location(file=file, path="source"),
        ))
    for stage in pipeline.stages:
        found = [_locate(f, stage, file) for f in stage_findings(stage, spec)]
        findings += found
        codes = {f.code for f in found} & _REPAIRED
        if codes:  # continue as if the stage had received what it expects
            expected = stage.expected_input(spec)
            if expected is not None:  # (a plugin's own finding may come without one)
                iv = expected if codes & _TO_EXPECTED else spec.interval.clamp(expected)
                spec = spec.with_(interval=iv)
        spec, finding = infer_checked(stage, spec)
        if finding is not None:
            findings.append(_locate(finding, stage, file))
    return findings


def _locate(f: Finding, stage: Stage, file: str | None) -> Finding:
    from dataclasses import replace

    loc = Location(file=file, line=stage.line, column=stage.column,
                   path=f"stages[{stage.index}].{stage.name}")
    return replace(f, stage=stage.index, stage_name=stage.name, location=loc)


def stage_findings(stage: Stage, spec: ValueSpec) -> list[Finding]:
    """The findings of one stage receiving ``spec``: dtype, range rules, then its own checks."""
    out = []
    kind_finding = _dtype_finding(stage, spec)
    if kind_finding is not None:
        out.append(kind_finding)
    if spec.known:
        expected = stage.expected_input(spec)
        if expected is not None:
            rule = _range_rule(stage, spec, expected)
            if rule is not None:
                out.append(rule)
        out += stage.extra_findings(spec)
    return out


def _dtype_finding(stage: Stage, spec: ValueSpec) -> Finding | None:
    need = stage.required_kind()
    if need is None or spec.dtype is None:
        return None
    have = spec.dtype
    if need in ("integer", "float"):
        ok = dtypes.is_integer(have) if need == "integer" else dtypes.is_float(have)
    else:
        ok = have == need
    if ok:
        return None
    fix = "add `to_dtype: {dtype: float32}` or a rescale before it" if need in ("float", "float32") \
        else f"add `to_dtype: {{dtype: {need if need != 'integer' else 'uint16'}}}` before it"
    return Finding(
        "dtype-mismatch",
        f"{stage.describe()} needs {need} input but receives {have}",
        hint=fix,
        data={"expected_dtype": need, "received_dtype": have},
    )


def _range_rule(stage: Stage, spec: ValueSpec, expected: Interval) -> Finding | None:
    """Rules 1-4 of the value model, first match wins."""
    got, traits = spec.interval, stage.traits()
    data = {"received": got.as_list(), "expected": expected.as_list()}
    if not got.bounded and not traits.clips and expected.bounded:
        return Finding(
            "unbounded-input",
            f"{stage.describe()} expects {expected} but receives the unbounded {got}"
            + _from(spec),
            hint="add a `clip` stage before it, or declare source.expect.range",
            data=data,
        )
    if not expected.contains(got) and not traits.clips:
        return Finding(
            "range-overflow",
            f"{stage.describe()} expects {expected} but receives {got}" + _from(spec),
            hint=_overflow_hint(stage, spec, expected),
            data=data,
        )
    both = got.intersect(expected)
    if traits.clips and (both is None or both.width == 0):
        return Finding(
            "degenerate-output",
            f"{stage.describe()} keeps only {expected} but receives {got}: every value maps to "
            "one constant",
            hint="its bounds are in other units than the data; check the window or clip values",
            data=data,
        )
    if traits.stretches or both is None or not expected.bounded or expected.width == 0:
        return None
    if traits.clips and not traits.changes_scale:
        return None  # a pure clip wider than the data wastes nothing: it changes no scale
    if both.width / expected.width > UNDERUSE_RATIO:
        return None
    blame = spec.last_scale
    if blame is not None:
        return Finding(
            "compounded-scaling",
            f"{stage.describe()} expects {expected} but receives {got} from {blame.describe()}, "
            "which already changed the scale",
            hint=f"remove {stage.describe()}, or move it before {blame.describe()}",
            data={**data, "blame": {"stage": blame.index, "name": blame.name, "line": blame.line}},
        )
    return Finding(
        "range-underuse",
        f"{stage.describe()} expects {expected} but the source only reaches {got}: the "
        f"data uses {both.width / expected.width:.1%} of the range",
        hint=_underuse_hint(spec),
        data=data,
    )


def _from(spec: ValueSpec) -> str:
    return f" from {spec.last_scale.describe()}" if spec.last_scale else " from the source"


def _bits_fix(spec: ValueSpec) -> str | None:
    if spec.dtype is None or not dtypes.is_integer(spec.dtype) or spec.interval.hi <= 0:
        return None
    if spec.interval.lo < 0:
        return "use `rescale_intensity: {in_range: source}` (signed data needs an offset)"
    if spec.interval.hi <= 1:  # 0/1 data (a mask, a binary image): any factor shrinks it
        return "its values already lie in [0, 1], so drop the rescale"
    bits = dtypes.bits_needed(spec.interval.hi)
    top = int(dtypes.levels_range(bits)[1])
    return f"use `rescale: {{factor: 1/{top}}}` or `rescale_intensity: {{in_range: bit_depth}}`"


def _overflow_hint(stage: Stage, spec: ValueSpec, expected: Interval) -> str:
    if stage.name == "rescale" and not spec.scaled_by:
        fix = _bits_fix(spec)
        if fix:
            return f"the data holds {spec.interval}, not {expected}: {fix}"
    blame = spec.last_scale  # the last of spec.scaled_by
    if blame is not None:
        return f"the range comes from {blame.describe()}; adjust it or this stage's parameters"
    return "convert the data into the expected range first (rescale_intensity or clip), " \
        "or declare `expects:` on the stage if it really accepts this range"


def _underuse_hint(spec: ValueSpec) -> str:
    fix = _bits_fix(spec)
    base = f"the data is {spec.bits}-bit" if spec.bits else "the data is narrower than assumed"
    return f"{base}: {fix}" if fix else f"{base}; rescale by its true range"


# --- DICOM rules that need the pipeline -----------------------------------------------


def _absolute(stage: Stage) -> str | None:
    """What makes a stage's parameters absolute values, or ``None`` when they are relative."""
    p: Any = getattr(stage, "params", None)
    if stage.name == "window":
        return f"center {p.center:g}, width {p.width:g}"
    if stage.name == "clip":
        return f"min {p.min:g}, max {p.max:g}"
    if stage.name == "normalize" and getattr(p, "mode", "fixed") == "fixed":
        return f"mean {p.mean}, std {p.std}"
    if stage.name == "rescale_intensity" and not isinstance(p.in_range, str):
        return f"in_range {list(p.in_range)}"
    if stage.name == "invert" and not isinstance(p.max, str):
        return f"max {p.max:g}"
    return None


def stored_units_findings(pipeline: Pipeline, sample: DicomSample,
                          options: DicomDecoding | None,
                          file: str | None = None) -> list[Finding]:
    """``dicom-stored-units`` for stages with absolute parameters that receive stored values.

    ``pipeline`` gives ``stages`` and their ``inputs`` specs. A stage qualifies while the values
    are still the stored ones (no earlier stage changed the scale) and some sampled file's
    modality LUT is not identity.
    """
    if not sample or options is None or options.modality_lut:
        return []
    rescaled = sample.non_identity
    if not rescaled:
        return []
    from .dataset.dicom_units import lut_text

    kinds = Counter(lut_text(f) for _, f in rescaled)
    found = ", ".join(f"{k} ({n} of {len(sample.files)} sampled files)"
                      for k, n in kinds.most_common(3))
    out = []
    for stage, spec in zip(pipeline.stages, pipeline.inputs):
        if spec.scaled_by:
            break
        params = _absolute(stage)
        if params is None:
            continue
        out.append(Finding(
            "dicom-stored-units",
            f"{stage.describe()} has absolute parameters ({params}) but receives DICOM stored "
            f"values: source.dicom.modality_lut is false and the files have {found}",
            hint="set source.dicom.modality_lut: true (the default) so the stage sees modality "
            "units (HU for CT), or scale by bit depth with `rescale_intensity: {in_range: "
            "bit_depth}`",
            stage=stage.index, stage_name=stage.name,
            location=Location(file=file, line=stage.line, column=stage.column,
                              path=f"stages[{stage.index}].{stage.name}"),
            files=tuple(p for p, _ in rescaled[:10]), count=len(rescaled),
            data={"rescale": dict(kinds)},
        ))
    return out


def inverted_twice_findings(pipeline: Pipeline, sample: DicomSample,
                            options: DicomDecoding | None,
                            file: str | None = None) -> list[Finding]:
    """``inverted-twice`` for an ``invert`` stage receiving DICOM data inverted at decode.

    With ``source.dicom.monochrome1: invert`` (the default), MONOCHROME1 files already reach
    the pipeline as MONOCHROME2 (high is bright); a pipeline ``invert`` written for the
    original white-is-low files flips them back. Only the first ``invert`` is named: a second
    one undoes the first.
    """
    if not sample or options is None or options.monochrome1 != "invert":
        return []
    inverted = [p for p, f, _ in sample.files if f.photometric == "MONOCHROME1"]
    stage = next((s for s in pipeline.stages if s.name == "invert"), None)
    if not inverted or stage is None:
        return []
    return [Finding(
        "inverted-twice",
        f"{stage.describe()} inverts {len(inverted)} of {len(sample.files)} sampled DICOM "
        "file(s) that are MONOCHROME1 and already inverted at decode "
        "(source.dicom.monochrome1: invert): they reach the model white-is-low again",
        hint="remove the `invert` stage, or set source.dicom.monochrome1: keep to invert in "
        "the pipeline instead (one inversion, in one place)",
        stage=stage.index, stage_name=stage.name,
        location=Location(file=file, line=stage.line, column=stage.column,
                          path=f"stages[{stage.index}].{stage.name}"),
        files=tuple(inverted[:10]), count=len(inverted),
        data={"monochrome1": len(inverted), "sampled": len(sample.files)},
    )]

