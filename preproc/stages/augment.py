"""Augmentation stages: random per sample, drawn from an explicit generator, with range contracts.

Each random stage is a thin class: ``draw(rng, shape)`` calls a pure function of
:mod:`preproc.stages.augment_draw`, ``transform(x, drawn)`` calls a pure function of
:mod:`preproc.stages.augment_functional`, and ``apply(x, rng)`` is the two in a row. ``infer``
holds for *every* draw: it is computed from the ends of the parameter ranges, never from one
draw. Random stages act on the ``training`` subset only unless the config says
``apply_to: [training, validation]``; ``random_crop`` becomes its evaluation twin
``center_crop`` elsewhere.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, Field, model_validator

from .. import dtypes
from ..findings import Finding
from ..spec import Interval, ValueSpec
from ..types import STRICT, Array, Number, Range
from . import augment_draw as D
from . import augment_functional as A
from .base import RunContext, Stage, StageTraits
from .builtin import endpoint_image

__all__ = ["AUGMENT_STAGES", "Brightness", "CenterCrop", "ChannelShift", "Contrast", "Flip",
           "RandomAffine", "RandomCrop", "RandomStage"]


def _ordered(value: Any) -> Any:
    if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"give [low, high] with low <= high, got [{value[0]}, {value[1]}]")
    return value


#: Keras' scalar form (``v`` -> ``[-v, v]``) or an explicit ``[low, high]``; ``[v, v]`` fixes it.
Span = Annotated[Annotated[Number, Field(ge=0)] | tuple[Number, Number], AfterValidator(_ordered)]
NonNegRange = Annotated[tuple[Annotated[Number, Field(ge=0)], Annotated[Number, Field(ge=0)]],
                        AfterValidator(_ordered)]
Size = tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]


class RandomStage(Stage):
    """A stage whose parameters are drawn per image from ``RunContext.rng``."""

    TRAITS: ClassVar[StageTraits] = StageTraits(random=True)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:  # pragma: no cover
        raise NotImplementedError

    def transform(self, x: Array, drawn: D.Drawn) -> Array:  # pragma: no cover
        raise NotImplementedError

    def apply(self, x: Array, ctx: RunContext) -> Array:
        if ctx.rng is None:
            raise ValueError(f"{self.describe()} is random and needs RunContext.rng; "
                             "run it through a pipeline or flow, which seed it")
        return self.transform(x, self.draw(ctx.rng, x.shape))

    def evaluation_stage(self) -> Stage | None:
        """What runs instead on subsets the stage does not apply to (``None``: nothing)."""
        return None

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height, width


def _cval_out(cval: float, dtype: str | None) -> float:
    """The fill value as it lands in an output of ``dtype`` (rounded and saturated for ints)."""
    if dtype is not None and dtypes.is_integer(dtype):
        lo, hi = dtypes.int_range(dtype)
        return float(min(max(math.floor(cval + 0.5), lo), hi))
    if dtype is not None and dtypes.is_float(dtype):
        return float(np.dtype(dtype).type(cval))
    return float(cval)


class RandomAffineParams(BaseModel):
    model_config = STRICT
    rotation: Span = Field(0.0, description="degrees: r draws from [-r, r]")
    width_shift: Span = Field(0.0, description="< 1: fraction of the width, >= 1: pixels")
    height_shift: Span = Field(0.0, description="< 1: fraction of the height, >= 1: pixels")
    shear: Span = Field(0.0, description="shear angle in degrees: s draws from [-s, s]")
    zoom: Span = Field(0.0, description="z draws zx, zy from [1 - z, 1 + z]; or [low, high]")
    fill_mode: Literal["constant", "nearest", "reflect", "wrap"] = "nearest"
    cval: Number = 0.0
    order: int = Field(1, ge=0, le=5, description="spline order (scipy.ndimage)")
    clip: bool = Field(True, description="order >= 2: clip the spline's overshoot to the image's range")

    @model_validator(mode="after")
    def _zoom(self) -> RandomAffineParams:
        lo, _ = D.symmetric(self.zoom, 1.0)
        if lo <= 0:
            raise ValueError(f"zoom must stay above 0, got a lowest zoom of {lo:g}")
        return self


class RandomAffine(RandomStage):
    """Keras' random rotation, shift, shear and zoom as one matrix and one resampling.

    Input: (H, W, C), any real dtype. Output: same dtype and shape; the input interval (and
    ``cval`` when ``fill_mode: constant``); spline orders >= 2 are clipped to the image's range
    unless ``clip: false``, which widens the interval by the spline's overshoot bound.
    """

    params: RandomAffineParams
    name = "random_affine"
    Params = RandomAffineParams
    summary = "random rotation/shift/shear/zoom, one resampling (Keras semantics), dtype kept"

    def ranges(self, shape: tuple[int, ...]) -> dict[str, D.Bounds]:
        p = self.params
        h, w = shape[:2]
        return {
            "rotation": D.symmetric(p.rotation),
            "height_shift": D.pixel_shift(D.symmetric(p.height_shift), h),
            "width_shift": D.pixel_shift(D.symmetric(p.width_shift), w),
            "shear": D.symmetric(p.shear),
            "zoom": D.symmetric(p.zoom, 1.0),
        }

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        return D.draw_affine(rng, self.ranges(shape), shape)

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        p = self.params
        m = A.keras_matrix(drawn["theta"], drawn["tx"], drawn["ty"], drawn["shear"], drawn["zx"],
                           drawn["zy"], x.shape[0], x.shape[1])
        return A.affine(x, m, order=p.order, fill_mode=p.fill_mode, cval=p.cval, clip=p.clip)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        p = self.params
        iv = spec.interval
        if p.fill_mode == "constant":
            c = _cval_out(p.cval, spec.dtype)
            iv = iv.hull(Interval(c, c))
        if p.order >= 2 and not p.clip and iv.bounded:
            half = A.spline_overshoot(p.order) * iv.width / 2
            mid = (iv.lo + iv.hi) / 2
            iv = Interval(mid - half, mid + half)
            if spec.dtype is not None and dtypes.is_integer(spec.dtype):
                iv = iv.clamp(Interval.of(dtypes.int_range(spec.dtype)))
        elif p.order >= 2 and not p.clip:
            iv = Interval(-math.inf, math.inf)
        return self.output_spec(spec, iv)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        p = self.params
        if p.fill_mode != "constant" or spec.interval.lo <= p.cval <= spec.interval.hi:
            return []
        return [Finding(
            "fill-out-of-range",
            f"{self.describe()} fills with cval {p.cval:g}, outside the {spec.interval} it "
            f"receives" + (f" from {spec.last_scale.describe()}" if spec.last_scale else ""),
            hint=f"give cval in the units of the data (inside {spec.interval}), or use "
            "fill_mode: nearest | reflect | wrap",
            data={"cval": p.cval, "received": spec.interval.as_list()},
        )]


class FlipParams(BaseModel):
    model_config = STRICT
    horizontal: bool = True
    vertical: bool = False
    p: float = Field(0.5, ge=0, le=1, description="probability of each enabled flip")


class Flip(RandomStage):
    """Random left-right / up-down mirror, each with probability ``p`` (Keras: 0.5).

    Input: anything. Output: same dtype, shape and interval.
    """

    params: FlipParams
    name = "flip"
    Params = FlipParams
    summary = "random horizontal/vertical flip, dtype and range kept"

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        p = self.params
        return D.draw_flip(rng, p.horizontal, p.vertical, p.p)

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        return A.flip(x, bool(drawn["horizontal"]), bool(drawn["vertical"]))

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, spec.interval)


OnInteger = Literal["float32", "saturate"]


class _Photometric(RandomStage):
    """Shared by brightness and contrast: a factor range, integer policy, optional clip."""

    params: BrightnessParams | ContrastParams

    def keeps_dtype(self, dtype: Any) -> bool:
        return self.params.integers == "saturate" and dtype is not None and dtypes.is_integer(dtype)

    def out_dtype(self, spec: ValueSpec) -> str:
        dtype = spec.dtype
        return dtype if dtype is not None and self.keeps_dtype(dtype) else "float32"

    def finish(self, spec: ValueSpec, iv: Interval) -> ValueSpec:
        dtype = self.out_dtype(spec)
        if dtypes.is_integer(dtype):
            iv = iv.clamp(Interval.of(dtypes.int_range(dtype)))
        if self.params.clip is not None:
            iv = iv.clamp(Interval.of(self.params.clip))
        bits = spec.bits if dtype == spec.dtype else (None if spec.bits is None else min(spec.bits, 24))
        return self.output_spec(spec, iv, dtype, bits=bits)

    def clipped(self, out: Array) -> Array:
        c = self.params.clip
        if c is None:
            return out
        return np.clip(out, out.dtype.type(c[0]) if out.dtype.kind == "f" else math.ceil(c[0]),
                       out.dtype.type(c[1]) if out.dtype.kind == "f" else math.floor(c[1]))

    def traits(self) -> StageTraits:
        lo, hi = self.params.range
        return StageTraits(random=True, changes_scale=not (lo == hi == 1))

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        c = self.params.clip
        if c is None or not spec.interval.bounded or spec.interval.width == 0:
            return []
        if (c[1] - c[0]) < 0.25 * spec.interval.width or c[0] > spec.interval.hi:
            return [Finding(
                "augment-units",
                f"{self.describe()} clips to [{c[0]:g}, {c[1]:g}] but receives {spec.interval}: "
                "the clip is in other units than the data",
                hint="rescale before this stage, or give clip in the units it receives",
                data={"clip": list(c), "received": spec.interval.as_list()},
            )]
        return []


class BrightnessParams(BaseModel):
    model_config = STRICT
    range: NonNegRange = Field(description="factor drawn uniformly from [low, high] (Keras brightness_range)")
    integers: OnInteger = Field("float32", description="integer input: promote to float32 or saturate")
    clip: Range | None = Field(None, description="clip the result to [low, high] (data units)")


class Brightness(_Photometric):
    """``x * factor`` with ``factor`` uniform in ``range``, computed in float32.

    Keras multiplies through an 8-bit PIL image; this does not (16-bit data keeps its levels).
    Input: any real dtype. Output: float32 (integers saturate in their dtype with
    ``integers: saturate``); the interval scaled by both ends of ``range``, clipped to ``clip``.
    """

    params: BrightnessParams
    name = "brightness"
    Params = BrightnessParams
    summary = "random multiplicative brightness in float32 (no 8-bit round trip)"

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        return {"factor": D.draw_factor(rng, self.params.range)}

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        out = A.brightness(x, drawn["factor"], keep_dtype=self.keeps_dtype(x.dtype))
        return self.clipped(out)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        keep = self.keeps_dtype(spec.dtype)
        lo, hi = self.params.range
        iv = endpoint_image(lambda e: A.brightness(e, lo, keep_dtype=keep), spec).hull(
            endpoint_image(lambda e: A.brightness(e, hi, keep_dtype=keep), spec))
        return self.finish(spec, iv)


class ContrastParams(BaseModel):
    model_config = STRICT
    range: NonNegRange = Field(description="factor drawn uniformly from [low, high]; 1 keeps the image")
    integers: OnInteger = "float32"
    clip: Range | None = None


class Contrast(_Photometric):
    """``mean + (x - mean) * factor`` about each image's mean, float32.

    Input: any real dtype. Output: float32 (or the integer dtype, saturated); factors up to 1
    keep the interval, larger ones widen it to ``[f*lo - (f-1)*hi, f*hi - (f-1)*lo]``.
    """

    params: ContrastParams
    name = "contrast"
    Params = ContrastParams
    summary = "random contrast about the image mean, float32"

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        return {"factor": D.draw_factor(rng, self.params.range)}

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        out = A.contrast(x, drawn["factor"], keep_dtype=self.keeps_dtype(x.dtype))
        return self.clipped(out)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        iv = spec.interval
        f = self.params.range[1]
        if f > 1 and iv.bounded:
            lo, hi = f * iv.lo - (f - 1) * iv.hi, f * iv.hi - (f - 1) * iv.lo
            slack = 8 * float(np.finfo(np.float32).eps) * (abs(lo) + abs(hi) + f * iv.width)
            iv = Interval(lo - slack, hi + slack)
        elif f > 1:
            iv = Interval(-math.inf, math.inf)
        return self.finish(spec, iv)


class ChannelShiftParams(BaseModel):
    model_config = STRICT
    intensity: Annotated[Number, Field(gt=0)] = Field(description="shift drawn from [-i, i], data units")
    clip: bool = Field(True, description="clip to the image's own [min, max] (Keras)")


class ChannelShift(RandomStage):
    """Keras' channel shift: one uniform shift for every channel of an image.

    With ``clip`` (Keras), the result is clipped to the image's own [min, max]: interval and
    dtype kept. Without, float32 and the interval widens by ``intensity`` on each side.
    """

    params: ChannelShiftParams
    name = "channel_shift"
    Params = ChannelShiftParams
    summary = "random uniform channel shift (Keras), clipped to the image's range"

    def traits(self) -> StageTraits:
        return StageTraits(random=True, changes_scale=not self.params.clip)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        i = self.params.intensity
        return {"intensity": D.draw_factor(rng, (-i, i))}

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        return A.channel_shift(x, drawn["intensity"], clip=self.params.clip)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        if self.params.clip:
            return self.output_spec(spec, spec.interval)
        i = self.params.intensity
        iv = endpoint_image(lambda e: A.channel_shift(e, -i, clip=False), spec).hull(
            endpoint_image(lambda e: A.channel_shift(e, i, clip=False), spec))
        return self.output_spec(spec, iv, "float32")

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        iv, i = spec.interval, self.params.intensity
        if not iv.bounded or iv.width == 0 or (i <= iv.width and i * 100 >= iv.width):
            return []
        size = "wider than" if i > iv.width else "under 1% of"
        return [Finding(
            "augment-units",
            f"{self.describe()} shifts by up to {i:g}, {size} the {iv} it receives: the "
            "intensity is in other units than the data",
            hint="give intensity in the units the stage receives (Keras shifts raw 0-255 "
            "values, before rescale)",
            data={"intensity": i, "received": iv.as_list()},
        )]


class CropParams(BaseModel):
    model_config = STRICT
    size: Size = Field(description="[height, width] of the window")


class RandomCrop(RandomStage):
    """A ``size`` window at a uniform position; on evaluation subsets, ``center_crop``.

    Input: images at least ``size``. Output: same dtype and interval, shape ``size``.
    """

    params: CropParams
    name = "random_crop"
    Params = CropParams
    summary = "random window of [height, width]; center_crop on evaluation"

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> D.Drawn:
        return D.draw_crop(rng, shape, self.params.size)

    def transform(self, x: Array, drawn: D.Drawn) -> Array:
        h, w = self.params.size
        return A.crop(x, int(drawn["top"]), int(drawn["left"]), h, w)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, spec.interval)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.params.size
        return h, w

    def evaluation_stage(self) -> Stage | None:
        return CenterCrop(self.params.model_dump(), expects=self.expects, index=self.index,
                          line=self.line, column=self.column, context=self.context)


class CenterCrop(Stage):
    """The centred ``size`` window (the evaluation twin of ``random_crop``). Deterministic.

    Input: images at least ``size``. Output: same dtype and interval, shape ``size``.
    """

    params: CropParams
    name = "center_crop"
    Params = CropParams
    summary = "centred window of [height, width]"

    def apply(self, x: Array, ctx: RunContext) -> Array:
        return A.center_crop(x, *self.params.size)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, spec.interval)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.params.size
        return h, w


# --- examples for the stage contract test (preproc.testing.check_stage) -------------------------
U8 = {"dtype": "uint8", "range": [0, 255], "channels": 3}
U16 = {"dtype": "uint16", "range": [0, 65535], "channels": 1}
U12 = {"dtype": "uint16", "range": [0, 4095], "bits": 12, "channels": 1}
UNIT = {"dtype": "float32", "range": [0, 1], "channels": 3}
SIGNED = {"dtype": "float32", "range": [-3, 5], "channels": 2}

RandomAffine.examples = [
    {"params": {"rotation": 40, "width_shift": 0.2, "height_shift": 3, "shear": 10, "zoom": 0.3},
     "input": U8},
    {"params": {"rotation": [-90, 90], "fill_mode": "constant", "cval": 0}, "input": U16},
    {"params": {"rotation": 30, "zoom": [0.7, 1.1], "fill_mode": "reflect"}, "input": UNIT},
    {"params": {"rotation": 30, "shear": 20, "fill_mode": "wrap"}, "input": SIGNED},
    {"params": {"rotation": 25, "order": 3}, "input": U12},
    {"params": {"rotation": 25, "order": 3, "clip": False, "fill_mode": "constant", "cval": 0.5},
     "input": UNIT},
    {"params": {"rotation": 25, "order": 5, "clip": False}, "input": U8},
    {"params": {"zoom": 0.5, "order": 0, "fill_mode": "constant", "cval": 9}, "input": SIGNED},
]
Flip.examples = [
    {"params": {"horizontal": True, "vertical": True}, "input": U8},
    {"params": {"vertical": True, "p": 1.0}, "input": U16},
]
Brightness.examples = [
    {"params": {"range": [0.5, 1.5]}, "input": UNIT},
    {"params": {"range": [0.8, 1.2]}, "input": U8},
    {"params": {"range": [0.8, 1.2], "integers": "saturate"}, "input": U16},
    {"params": {"range": [0.5, 2.0], "clip": [0, 1]}, "input": SIGNED},
]
Contrast.examples = [
    {"params": {"range": [0.5, 1.5]}, "input": UNIT},
    {"params": {"range": [0.2, 0.9]}, "input": U8},
    {"params": {"range": [0.8, 1.6], "integers": "saturate"}, "input": U12},
    {"params": {"range": [1.0, 3.0]}, "input": SIGNED},
]
ChannelShift.examples = [
    {"params": {"intensity": 30}, "input": U8},
    {"params": {"intensity": 0.2, "clip": False}, "input": UNIT},
    {"params": {"intensity": 500}, "input": U12},
    {"params": {"intensity": 1.5, "clip": False}, "input": SIGNED},
]
RandomCrop.examples = [
    {"params": {"size": [4, 3]}, "input": U8},
    {"params": {"size": [2, 4]}, "input": U16},
]
CenterCrop.examples = [
    {"params": {"size": [4, 3]}, "input": U8},
    {"params": {"size": [3, 3]}, "input": UNIT},
]

#: Registered with the built-ins (see :mod:`preproc.stages.registry`).
AUGMENT_STAGES: tuple[type[Stage], ...] = (
    RandomAffine, Flip, Brightness, Contrast, ChannelShift, RandomCrop, CenterCrop,
)
