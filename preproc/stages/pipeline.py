"""A pipeline: the config's stages instantiated, with the value specs between them.

``Pipeline`` is shared by the static check, the batch generator and the runtime guard: it knows
the source spec, the spec entering stage 0 (after color conversion and resize) and the real
inferred output spec of every stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import math

from .. import dtypes
from ..dataset.sampling import source_spec
from ..findings import Finding
from ..io.info import CHANNELS_BY_COLOR_MODE
from ..spec import Interval, ValueSpec
from ..types import Array
from .augment_draw import stage_rng
from .base import FitsStatistics, RunContext, Stage, StageContext

if TYPE_CHECKING:
    from ..config.model import Batches, Config

__all__ = ["MODES", "Pipeline", "entry_spec", "for_subset", "infer_checked", "pipeline_mode"]

_OVERSHOOTING = {"bicubic", "lanczos"}


def entry_spec(src: ValueSpec, batches: Batches) -> ValueSpec:
    """What enters stage 0: the source after ``color_mode`` conversion and resize.

    Color conversion replicates channels or takes a luma mean (inside the interval); an added
    alpha channel is opaque at the top of the stored bit depth. Resizing with nearest, bilinear,
    box or hamming stays inside the interval; bicubic and lanczos overshoot and are clipped to
    each image's own range, except 8-bit data, clipped by Pillow to the dtype range.
    """
    channels = CHANNELS_BY_COLOR_MODE[batches.color_mode]
    spec = src.with_(channels=channels)
    if not src.known or src.dtype is None:
        return spec
    iv = src.interval
    if channels == 4 and src.channels not in (2, 4):
        opaque = dtypes.opaque_alpha(src.dtype, src.bits)
        iv = iv.hull(Interval(opaque, opaque))
    if batches.interpolation in _OVERSHOOTING and src.dtype == "uint8":
        iv = iv.hull(Interval.of(dtypes.dtype_range("uint8")))
    return spec.with_(interval=iv)


class Pipeline:
    """The stages of a config, bound to their input specs.

    Attributes:
        stages: the instantiated stages, in order.
        source_spec: what the files hold.
        entry_spec: what enters stage 0.
        specs: the inferred output spec of every stage (``specs[i]`` leaves stage ``i``).
    """

    def __init__(self, stages: list[Stage], source: ValueSpec, entry: ValueSpec, *,
                 subset: str | None = None, seed: int = 0, mode: str | None = None) -> None:
        self.stages = stages
        self.source_spec = source
        self.entry_spec = entry
        #: the subset whose files the pipeline runs on (``None``: all files)
        self.subset = subset
        #: ``training`` (random stages run) or ``evaluation`` (the deterministic stages alone)
        self.mode = pipeline_mode(subset, mode)
        #: random stages draw from generators seeded by (seed, epoch, file index, stage index)
        self.seed = seed
        self.specs: list[ValueSpec] = []
        self._bind()

    @classmethod
    def from_config(cls, cfg: Config, source: ValueSpec | None = None, subset: str | None = None,
                    seed: int = 0, mode: str | None = None) -> Pipeline:
        """The config's stages for ``subset`` in ``mode`` (default ``batches.mode``).

        The training pipeline runs every stage; the evaluation pipeline (the ``validation``
        subset always, any subset in mode ``evaluation``) runs what validation runs: random
        stages only where their ``apply_to`` names ``validation``, otherwise replaced by their
        evaluation twin (``random_crop`` -> ``center_crop``) or left out.
        """
        mode = pipeline_mode(subset, mode or cfg.batches.mode)
        src = source if source is not None else source_spec(cfg)
        context = StageContext(source=src, base_dir=str(cfg.base_dir),
                               file=str(cfg.path) if cfg.path else None)
        stages: list[Stage] = []
        for e in cfg.stages:
            line, column = cfg.where(("stages", e.index))
            built = e.cls(e.params, expects=e.expects, index=e.index, line=line, column=column,
                          context=context)
            role = "training" if mode == "training" else "validation"
            stage = for_subset(built, getattr(e, "apply_to", None), role)
            if stage is not None:
                stages.append(stage)
        return cls(stages, src, entry_spec(src, cfg.batches), subset=subset, seed=seed, mode=mode)

    def _bind(self) -> None:
        """Infer the spec entering and leaving every stage (the stages themselves never change);
        arithmetic failures become :attr:`bind_findings`."""
        spec, self.inputs, self.specs, self.bind_findings = self.entry_spec, [], [], []
        for stage in self.stages:
            self.inputs.append(spec)
            spec, finding = infer_checked(stage, spec)
            if finding is not None:
                self.bind_findings.append(finding)
            self.specs.append(spec)

    @property
    def output_spec(self) -> ValueSpec:
        return self.specs[-1] if self.specs else self.entry_spec

    @property
    def out_dtype(self) -> str | None:
        return self.output_spec.dtype

    def part(self, start: int, stop: int | None = None) -> Pipeline:
        """The stages ``[start:stop]`` as a pipeline bound to the same specs (its entry spec is
        what stage ``start`` receives here)."""
        entry = self.inputs[start] if start < len(self.stages) else self.output_spec
        return Pipeline(list(self.stages[start:stop]), self.source_spec, entry,
                        subset=self.subset, seed=self.seed, mode=self.mode)

    @property
    def needs_fit(self) -> bool:
        return any(getattr(s, "needs_fit", False) for s in self.stages)

    def context(self, k: int, **facts: Any) -> RunContext:
        """The run context of stage ``k``: its bound input spec plus the given facts.

        A random stage also gets its generator for ``(seed, epoch, index)`` (index 0 when
        none is given).
        """
        stage = self.stages[k]
        if stage.traits().random and facts.get("rng") is None:
            facts["rng"] = stage_rng(self.seed, facts.get("epoch", 0), facts.get("index") or 0,
                                     stage.index)
        facts.setdefault("subset", self.subset)
        return RunContext(spec=self.inputs[k], **facts)

    def apply(self, image: Array, *, guard: bool = False, file: str | None = None,
              index: int | None = None, epoch: int = 0) -> Array:
        """Run every stage on one (H, W, C) image; with ``guard``, check each output.

        ``index`` (the file's listing index) and ``epoch`` seed the random stages.
        """
        x = image
        for k, stage in enumerate(self.stages):
            x = stage(x, self.context(k, file=file, index=index, epoch=epoch), guard=guard)
        return x

    def fit(self, images: Iterable[Array]) -> None:
        """Compute featurewise statistics, each at its own stage's position.

        Every image runs through the stages before a featurewise stage, so its mean and std are
        measured in the units that stage really receives. Streams in float64 per
        channel; with several featurewise stages the images are kept to be passed again.
        """
        pending = [k for k, s in enumerate(self.stages) if getattr(s, "needs_fit", False)]
        if len(pending) > 1:
            images = list(images)
        for k in pending:
            mean, std = _channel_stats(self.stages[:k], images)
            stage = self.stages[k]
            assert isinstance(stage, FitsStatistics)  # what its needs_fit promises
            self.stages[k] = stage.fitted(mean, std)
        self._bind()

    def trace(self) -> list[dict[str, Any]]:
        """JSON-friendly spec after the source, the entry and every stage."""
        rows: list[dict[str, Any]] = [{"stage": None, "name": "source", "line": None, "spec": self.source_spec.to_json()},
                {"stage": None, "name": "batches", "line": None, "spec": self.entry_spec.to_json()}]
        for stage, spec in zip(self.stages, self.specs):
            rows.append({"stage": stage.index, "name": stage.name, "line": stage.line,
                         "spec": spec.to_json()})
        return rows


MODES = ("training", "evaluation")


def pipeline_mode(subset: str | None, mode: str | None = None) -> str:
    """``training`` or ``evaluation``: the validation subset always evaluates; other runs
    follow ``mode`` (default ``training``)."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return "evaluation" if subset == "validation" else (mode or "training")


def for_subset(stage: Stage, apply_to: Sequence[str] | None, subset: str) -> Stage | None:
    """``stage`` if it runs on ``subset``, else its evaluation twin or ``None``."""
    default = ("training",) if stage.traits().random else ("training", "validation")
    if subset in (apply_to or default):
        return stage
    twin: Callable[[], Stage] | None = getattr(stage, "evaluation_stage", None)
    return twin() if twin is not None else None


def _channel_stats(
    prior: list[Stage], images: Iterable[Array]
) -> tuple[list[float], list[float]]:
    # statistics describe the data, not its augmentations (Keras: fit(augment=False))
    prior = [t for t in (for_subset(s, None, "validation") for s in prior) if t is not None]
    total: Array | None = None
    sq: Array | None = None
    count = 0
    for x in images:
        for stage in prior:
            x = stage(x)  # statistics see the deterministic stages alone
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        s, q = flat.sum(axis=0), np.einsum("ij,ij->j", flat, flat)
        if total is None or sq is None:
            total, sq = s, q
        else:
            total, sq = total + s, sq + q
        count += flat.shape[0]
    if not count:
        raise ValueError("featurewise statistics need at least one image")
    assert total is not None and sq is not None  # set by the first image
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    return mean.tolist(), std.tolist()


def infer_checked(stage: Stage, spec: ValueSpec) -> tuple[ValueSpec, Finding | None]:
    """``stage.infer(spec)`` for every stage, with the arithmetic's failures as findings.

    Parameters at the edge of floating point (a factor of 1e308, an offset of 1e308, a std of
    5e-324, a factor of 1e-300) make a bounded input overflow to infinity, turn into NaN, or
    underflow so every value lands on one number. Those are the config's problems, reported as
    ``non-finite-output`` (infinite or NaN) or ``degenerate-output`` (one value), never
    exceptions; the returned spec is then unknown, so later stages are not judged on it.
    """
    bounded = spec.known and spec.interval.bounded
    with np.errstate(all="ignore"):
        try:
            out = stage.infer(spec)
        except (ArithmeticError, ValueError) as exc:
            if not _is_arithmetic(exc):
                raise
            return ValueSpec.unknown(spec.channels), _non_finite(stage, spec, "NaN")
    if not bounded or not out.known:
        return out, None
    iv = out.interval
    if not iv.bounded and not _unbounded_by_design(stage, spec, iv):
        return ValueSpec.unknown(spec.channels), _non_finite(stage, spec, str(iv))
    if iv.width == 0 and spec.interval.width > 0 and not stage.traits().clips:
        return out, Finding(
            "degenerate-output",
            f"{stage.describe()} maps every value of {spec.interval} to {iv.lo:g}: its "
            "parameters underflow the arithmetic",
            hint="check the stage's parameters: a factor or std this small erases the data",
            data={"received": spec.interval.as_list(), "output": iv.as_list()},
        )
    return out, None


def _is_arithmetic(exc: Exception) -> bool:
    if isinstance(exc, ArithmeticError):
        return True
    text = str(exc)
    return "NaN" in text or "nan" in text or "empty interval" in text or "finite" in text


def _unbounded_by_design(stage: Stage, spec: ValueSpec, iv: Interval) -> bool:
    """Whether an unbounded output is the stage's word for "unknown" (samplewise normalize,
    an unresolved range) rather than an overflow: it stays unbounded for input [0, 1] too."""
    if not (math.isinf(iv.lo) and math.isinf(iv.hi) and iv.lo < 0 < iv.hi):
        return False
    try:
        with np.errstate(all="ignore"):
            unit = stage.infer(spec.with_(interval=Interval(0.0, 1.0)))
    except (ArithmeticError, ValueError):
        return False
    return not unit.interval.bounded and math.isinf(unit.interval.lo)


def _non_finite(stage: Stage, spec: ValueSpec, what: str) -> Finding:
    return Finding(
        "non-finite-output",
        f"{stage.describe()} turns the finite {spec.interval} into {what}: its parameters "
        "overflow (or divide by almost zero in) 32/64-bit floating point",
        hint="check the stage's parameters: factors, offsets and std must keep the output "
        "finite (float32 holds up to 3.4e38)",
        data={"received": spec.interval.as_list()},
    )
