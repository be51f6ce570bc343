"""The built-in stages. Each docstring states its input and output contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .. import dtypes
from ..findings import Finding
from ..spec import Interval, ValueSpec
from ..types import STRICT, Array, DType, Integer, Number, PositiveNumber, Range
from . import functional as F
from .base import RunContext, Stage, StageTraits
from .scaling import Normalize

__all__ = [
    "BUILTIN_STAGES", "Clahe", "Clip", "Gamma", "Invert", "Normalize", "Rescale",
    "RescaleIntensity", "ToDtype", "Window",
]


def endpoint_image(fn: Callable[[Array], Array], spec: ValueSpec) -> Interval:
    """Image of ``spec.interval`` under a monotone elementwise ``fn``, computed by ``fn`` itself.

    Evaluating the same float32 arithmetic on the endpoints is sound: rounding is monotone.
    """
    dtype = spec.dtype if spec.dtype is not None else "float64"
    with np.errstate(all="ignore"):
        if dtypes.is_integer(dtype) or dtype == "bool":
            ilo, ihi = dtypes.int_range(dtype)
            ends = np.array([_clamp_int(spec.interval.lo, ilo, ihi),
                             _clamp_int(spec.interval.hi, ilo, ihi)], dtype=dtype)
        else:
            ends = np.array([spec.interval.lo, spec.interval.hi], dtype=np.float64).astype(dtype)
        out = np.asarray(fn(ends.reshape(1, 2, 1)), dtype=np.float64).ravel()
    lo, hi = float(np.min(out)), float(np.max(out))
    if math.isnan(lo) or math.isnan(hi):
        if spec.interval.bounded:  # finite in, NaN out: the parameters break the arithmetic
            raise FloatingPointError(f"NaN from the finite {spec.interval}")
        return Interval(-math.inf, math.inf)
    return Interval(lo, hi)


def _clamp_int(value: float, lo: int, hi: int) -> int:
    if math.isinf(value):
        return lo if value < 0 else hi
    return min(max(math.ceil(value) if value > 0 else math.floor(value), lo), hi)


def _float_bits(spec: ValueSpec) -> int | None:
    """Levels survive a cast to float32 only up to 24 bits."""
    return None if spec.bits is None else min(spec.bits, 24)


def precision_loss_to_float32(stage: Stage, spec: ValueSpec) -> list[Finding]:
    if spec.dtype and dtypes.is_integer(spec.dtype) and (spec.bits or 0) > 24:
        return [
            Finding(
                "precision-loss",
                f"{stage.describe()} computes in float32, which holds 24 bits, but receives "
                f"{spec.bits}-bit integers",
                hint="reduce the data to 24 bits first, or accept the rounding",
            )
        ]
    return []


class RescaleParams(BaseModel):
    model_config = STRICT
    factor: Number = Field(description="multiplier, e.g. 1/255")
    offset: Number = 0.0

    @model_validator(mode="after")
    def _nonzero(self) -> RescaleParams:
        if self.factor == 0:
            raise ValueError("factor must not be 0: every value would become the offset")
        return self


class Rescale(Stage):
    """``x * factor + offset``, multiplied in float32 as Keras' ``rescale`` does.

    Input: when ``factor`` is 1/(2**n - 1), expects [0, 2**n - 1]; otherwise anything.
    Output: float32, the affine image of the input interval.
    """

    name = "rescale"
    Params = RescaleParams
    params: RescaleParams
    TRAITS = StageTraits(elementwise=True, changes_scale=True)
    summary = "x*factor+offset in float32 (Keras rescale)"

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        bits = dtypes.unit_factor_bits(abs(self.params.factor))
        if bits is None or self.params.factor < 0:
            return None
        return Interval.of(dtypes.levels_range(bits))

    def infer(self, spec: ValueSpec) -> ValueSpec:
        iv = endpoint_image(self.apply_alone, spec)
        return self.output_spec(spec, iv, "float32", bits=_float_bits(spec))

    def apply(self, x: Array, ctx: RunContext) -> Array:
        return F.affine_f32(x, self.params.factor, self.params.offset)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        return precision_loss_to_float32(self, spec)


InRange = Literal["dtype", "bit_depth", "source"] | Range


class RescaleIntensityParams(BaseModel):
    model_config = STRICT
    in_range: InRange = "bit_depth"
    out_range: Range = (0.0, 1.0)
    clip: bool = True

    @model_validator(mode="after")
    def _span(self) -> RescaleIntensityParams:
        if not isinstance(self.in_range, str):
            _f32_span(*self.in_range)
        _f32_span(*self.out_range)
        return self


class RescaleIntensity(Stage):
    """Linear map of ``in_range`` onto ``out_range`` (scikit-image ``rescale_intensity``).

    ``in_range`` is ``dtype`` (the incoming container's full range), ``bit_depth`` (the stored
    bits), ``source`` (the declared source range) or ``[lo, hi]``.
    Input: expects ``in_range``; clips to it when ``clip``. Output: float32 in ``out_range``.
    """

    name = "rescale_intensity"
    Params = RescaleIntensityParams
    params: RescaleIntensityParams
    TRAITS = StageTraits(changes_scale=True)
    summary = "linear map in_range -> out_range in float32, clipping"

    def traits(self) -> StageTraits:
        per_file = self.params.in_range in ("dtype", "bit_depth")
        # dtype/bit_depth resolve per image, so a stacked batch (one dtype) cannot stand in
        return replace(self.TRAITS, clips=self.params.clip,
                       input_kind="integer" if per_file else None, elementwise=not per_file)

    def resolve_in_range(self, spec: ValueSpec) -> Interval | None:
        r = self.params.in_range
        if not isinstance(r, str):
            return Interval.of(r)
        if r == "source":
            src = self.context.source
            return src.interval if src.known and src.interval.bounded else None
        if spec.dtype is None or not dtypes.is_integer(spec.dtype):
            return None
        if r == "dtype":
            return Interval.of(dtypes.dtype_range(spec.dtype))
        bits = spec.bits or dtypes.container_bits(spec.dtype)
        return Interval.of(dtypes.levels_range(bits, signed=dtypes.is_signed(spec.dtype)))

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        return self.resolve_in_range(spec)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        iv = self.resolve_in_range(spec)
        p = self.params
        if iv is None:  # clipped output stays in out_range whatever the input was
            out = Interval.of(sorted(p.out_range)) if p.clip else Interval(-math.inf, math.inf)
            return self.output_spec(spec, out, "float32", bits=None)
        if not spec.known and p.clip:  # the output does not depend on what comes in
            out = Interval.of(sorted(p.out_range))
            return self.output_spec(spec, out, "float32", bits=None, known=True)
        fn = lambda x: F.linear_map(x, (iv.lo, iv.hi), p.out_range, clip=p.clip)  # noqa: E731
        return self.output_spec(spec, endpoint_image(fn, spec), "float32", bits=_float_bits(spec))

    def apply(self, x: Array, ctx: RunContext) -> Array:
        spec = ctx.spec
        if spec is None or spec.dtype != dtypes.normalize_dtype(x.dtype):
            spec = ValueSpec.for_dtype(x.dtype)
        iv = self.resolve_in_range(spec)
        if iv is None:
            raise ValueError(f"{self.describe()}: in_range {self.params.in_range!r} is unknown here")
        return F.linear_map(x, (iv.lo, iv.hi), self.params.out_range, clip=self.params.clip)


class ClaheParams(BaseModel):
    model_config = STRICT
    clip_limit: Number = Field(0.01, gt=0, le=1)
    kernel_size: Annotated[Integer, Field(ge=1)] | tuple[Annotated[Integer, Field(ge=1)], Annotated[Integer, Field(ge=1)]] | None = None
    nbins: Integer = Field(256, ge=2, le=65536)


class Clahe(Stage):
    """Contrast-limited adaptive histogram equalization (scikit-image ``equalize_adapthist``).

    Input: integers of any range, or floats in [0, 1]. Stretches each image to its own range.
    Output: float32 in [0, 1].
    """

    name = "clahe"
    Params = ClaheParams
    params: ClaheParams
    TRAITS = StageTraits(stretches=True, changes_scale=True)
    summary = "CLAHE, scikit-image semantics; stretches each image; float32 [0, 1]"

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        if spec.dtype is not None and dtypes.is_float(spec.dtype):
            return Interval(0.0, 1.0)
        return None

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, Interval(0.0, 1.0), "float32", bits=None, known=True)

    def apply(self, x: Array, ctx: RunContext) -> Array:
        p = self.params
        return F.clahe(x, p.clip_limit, p.kernel_size, p.nbins)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        if spec.dtype and dtypes.kind(spec.dtype) == "int" and spec.interval.lo < 0:
            return [
                Finding(
                    "clipping",
                    f"{self.describe()} receives signed values down to {spec.interval.lo:g}; "
                    "scikit-image converts them to unsigned and discards the negative part",
                    hint="shift the data first, e.g. rescale_intensity with in_range: source",
                )
            ]
        return []


class ClipParams(BaseModel):
    model_config = STRICT
    min: Number
    max: Number

    @model_validator(mode="after")
    def _order(self) -> ClipParams:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Clip(Stage):
    """Clip to ``[min, max]``. Input: expects [min, max]; clips. Output: same dtype, the intersection."""

    name = "clip"
    Params = ClipParams
    params: ClipParams
    TRAITS = StageTraits(elementwise=True, clips=True)
    summary = "clip to [min, max], dtype kept"

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        return Interval(self.params.min, self.params.max)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, endpoint_image(self.apply_alone, spec))

    def apply(self, x: Array, ctx: RunContext) -> Array:
        return F.clip(x, self.params.min, self.params.max)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        p = self.params
        if spec.dtype and dtypes.is_integer(spec.dtype) and math.ceil(p.min) > math.floor(p.max):
            return [Finding(
                "degenerate-output",
                f"{self.describe()} keeps [{p.min:g}, {p.max:g}], which holds no integer of "
                f"{spec.dtype}: every value maps to one constant",
                hint="give the bounds in the units of the data",
            )]
        return []


def _f32_span(lo: float, hi: float) -> None:
    if not np.float32(lo) < np.float32(hi) or not np.isfinite(np.float32(hi) - np.float32(lo)):
        raise ValueError(f"[{lo}, {hi}] is too narrow or too wide to compute in float32")


class WindowParams(BaseModel):
    model_config = STRICT
    center: Number
    width: PositiveNumber
    out_range: Range = (0.0, 1.0)

    @model_validator(mode="after")
    def _span(self) -> WindowParams:
        _f32_span(self.center - self.width / 2, self.center + self.width / 2)
        return self


class Window(Stage):
    """Display window (CT/MR): ``[center - width/2, center + width/2]`` onto ``out_range``.

    Input: expects the window; clips. Output: float32 in ``out_range``.
    """

    name = "window"
    Params = WindowParams
    params: WindowParams
    TRAITS = StageTraits(elementwise=True, clips=True, changes_scale=True)
    summary = "window center/width onto out_range, float32, clipping"

    def implied_input(self, spec: ValueSpec | None) -> Interval:  # the window needs no spec
        half = self.params.width / 2
        return Interval(self.params.center - half, self.params.center + half)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        if not spec.known:  # the window clips: the output does not depend on what comes in
            out = Interval.of(sorted(self.params.out_range))
            return self.output_spec(spec, out, "float32", bits=None, known=True)
        return self.output_spec(spec, endpoint_image(self.apply_alone, spec), "float32", bits=None)

    def apply(self, x: Array, ctx: RunContext) -> Array:
        w = self.implied_input(None)
        return F.linear_map(x, (w.lo, w.hi), self.params.out_range, clip=True)


class GammaParams(BaseModel):
    model_config = STRICT
    gamma: PositiveNumber


class Gamma(Stage):
    """``x ** gamma``. Input: floats in [0, 1]. Output: float32 in [0, 1]."""

    name = "gamma"
    Params = GammaParams
    params: GammaParams
    TRAITS = StageTraits(elementwise=True, input_kind="float")
    summary = "x**gamma on [0, 1] floats"

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        return Interval(0.0, 1.0)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, endpoint_image(self.apply_alone, spec), "float32")

    def apply(self, x: Array, ctx: RunContext) -> Array:
        return F.gamma(x, self.params.gamma)


class InvertParams(BaseModel):
    model_config = STRICT
    max: Literal["source"] | Number = "source"


class Invert(Stage):
    """``max - x`` (e.g. MONOCHROME1 to MONOCHROME2). ``max: source`` takes the source's top.

    Input: expects [0, max]. Output: same dtype; integers saturate, never wrap.
    """

    name = "invert"
    Params = InvertParams
    params: InvertParams
    TRAITS = StageTraits(elementwise=True)
    summary = "max - x, dtype kept, saturating"

    def maximum(self) -> float | None:
        if self.params.max != "source":
            return float(self.params.max)
        src = self.context.source
        return src.interval.hi if src.known and math.isfinite(src.interval.hi) else None

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        m = self.maximum()
        return None if m is None else Interval(0.0, m)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        m = self.maximum()
        if m is None:
            return self.output_spec(spec, Interval(-math.inf, math.inf))
        return self.output_spec(spec, endpoint_image(self.apply_alone, spec))

    def apply(self, x: Array, ctx: RunContext) -> Array:
        m = self.maximum()
        if m is None:
            raise ValueError(f"{self.describe()}: `max: source` needs a declared source range")
        return F.invert(x, m)


class ToDtypeParams(BaseModel):
    model_config = STRICT
    dtype: DType
    scale: bool = False


class ToDtype(Stage):
    """Cast to ``dtype``; with ``scale``, full scale maps to full scale (floats: [0, 1]).

    Input: anything. Output: ``dtype``; out-of-range values saturate, never wrap.
    """

    name = "to_dtype"
    Params = ToDtypeParams
    params: ToDtypeParams
    summary = "cast; scaled by dtype ranges when scale; saturating"

    def traits(self) -> StageTraits:
        # with scale, the factor depends on each file's own dtype; a stacked batch has one dtype
        return replace(self.TRAITS, changes_scale=self.params.scale, elementwise=not self.params.scale)

    def apply(self, x: Array, ctx: RunContext) -> Array:
        return F.cast(x, self.params.dtype, self.params.scale)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        target = self.params.dtype
        if target == "bool":  # x != 0 is not monotone: zero may sit inside the interval
            lo, hi = spec.interval.lo, spec.interval.hi
            iv = Interval(0.0 if lo <= 0 <= hi else 1.0, 0.0 if lo == hi == 0 else 1.0)
            return self.output_spec(spec, iv, target, bits=1)
        iv = endpoint_image(self.apply_alone, spec)
        bits = spec.bits
        if dtypes.is_integer(target):
            levels = dtypes.bits_needed(max(iv.hi - iv.lo, 1))
            bits = levels if bits is None else min(bits, levels)
        return self.output_spec(spec, iv, target, bits=bits)

    def _ideal(self, spec: ValueSpec) -> Interval:
        """The interval the cast would produce without saturation."""
        if not self.params.scale or spec.dtype is None:
            return spec.interval
        ratio = dtypes.full_scale(self.params.dtype)[1] / dtypes.full_scale(spec.dtype)[1]
        return Interval(spec.interval.lo * ratio, spec.interval.hi * ratio)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        target = self.params.dtype
        if not dtypes.is_integer(target) or spec.dtype is None:
            return []
        out = []
        ideal = self._ideal(spec)
        rng = Interval.of(dtypes.dtype_range(target))
        if not rng.contains(ideal):
            out.append(Finding(
                "clipping",
                f"{self.describe()} casts {ideal} to {target}, which holds {rng}: values beyond "
                "saturate",
                hint="rescale into the target range first, or use `scale: true`",
            ))
        # quantization only: what saturates is reported as clipping above
        levels = math.floor(ideal.hi) - math.ceil(ideal.lo) + 1 if ideal.bounded else math.inf
        have = math.inf if spec.bits is None else 2.0**spec.bits
        if dtypes.is_integer(spec.dtype) and spec.interval.bounded:
            have = min(have, spec.interval.width + 1)
        if levels < have:
            out.append(Finding(
                "precision-loss",
                f"{self.describe()} quantizes to about {levels:.0f} levels of {target}; the input "
                + (f"has {have:.0f}" if math.isfinite(have) else "is continuous"),
                hint="keep a wider dtype (uint16 or float32) if the detail matters",
            ))
        return out


# --- examples for the stage contract test (preproc.testing.check_stage) -------------------------
U8 = {"dtype": "uint8", "range": [0, 255], "channels": 3}
U12 = {"dtype": "uint16", "range": [0, 4095], "bits": 12, "channels": 1}
U16 = {"dtype": "uint16", "range": [0, 65535], "channels": 1}
UNIT = {"dtype": "float32", "range": [0, 1], "channels": 1}
CT = {"dtype": "int16", "range": [-1024, 3071], "bits": 12, "channels": 1}

Rescale.examples = [
    {"params": {"factor": "1/255"}, "input": U8},
    {"params": {"factor": "1/4095"}, "input": U12},
    {"params": {"factor": "1/65535"}, "input": U16},
    {"params": {"factor": -2.5, "offset": 3}, "input": {"dtype": "float32", "range": [-10, 10]}},
]
RescaleIntensity.examples = [
    {"params": {"in_range": "bit_depth"}, "input": U12},
    {"params": {"in_range": [100, 1000], "out_range": [-1, 1]}, "input": U12},
    {"params": {"in_range": "dtype", "clip": False}, "input": U8},
    {"params": {"in_range": "source"}, "input": CT},
]
Clahe.examples = [
    {"params": {}, "input": U8},
    {"params": {"clip_limit": 0.03, "nbins": 128}, "input": U12},
    {"params": {}, "input": UNIT},
]
Clip.examples = [
    {"params": {"min": 10, "max": 200}, "input": U8},
    {"params": {"min": 0.5, "max": 100.7}, "input": U12},
    {"params": {"min": -0.5, "max": 0.5}, "input": {"dtype": "float32", "range": [-1, 1]}},
]
Window.examples = [
    {"params": {"center": 40, "width": 400}, "input": CT},
    {"params": {"center": 0.5, "width": 0.2, "out_range": [-1, 1]}, "input": UNIT},
]
Gamma.examples = [
    {"params": {"gamma": 2.2}, "input": UNIT},
    {"params": {"gamma": 0.5}, "input": UNIT},
]
Invert.examples = [
    {"params": {"max": "source"}, "input": U12},
    {"params": {"max": 1.0}, "input": UNIT},
    {"params": {"max": 255}, "input": U8},
]
ToDtype.examples = [
    {"params": {"dtype": "uint8", "scale": True}, "input": U16},
    {"params": {"dtype": "float32", "scale": True}, "input": U12},
    {"params": {"dtype": "uint8"}, "input": {"dtype": "float32", "range": [-5, 300]}},
    {"params": {"dtype": "uint16", "scale": True}, "input": UNIT},
    {"params": {"dtype": "int16"}, "input": U16},
]


#: The built-in stages, in the order ``preproc stages`` lists them.
BUILTIN_STAGES: tuple[type[Stage], ...] = (
    Rescale, RescaleIntensity, Clahe, Normalize, Clip, Window, Gamma, Invert, ToDtype,
)
