"""The value model: what flows between stages, described without pixels.

A :class:`ValueSpec` holds the dtype, the channel count, a closed interval ``[lo, hi]`` (either end
may be infinite), the number of meaningful levels in bits and the stages that changed the scale so
far. Stages map one spec to the next in ``Stage.infer``; the static check compares the incoming
interval with what each stage expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, SupportsFloat

import numpy.typing as npt

from . import dtypes

__all__ = ["Interval", "ScaleStep", "ValueSpec", "format_interval", "format_number"]


@dataclass(frozen=True)
class Interval:
    """A closed interval of real numbers; ``lo`` may be ``-inf`` and ``hi`` may be ``inf``."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if math.isnan(self.lo) or math.isnan(self.hi):
            raise ValueError("interval bounds must not be NaN")
        if self.lo > self.hi:
            raise ValueError(f"empty interval [{self.lo}, {self.hi}]")

    @classmethod
    def of(cls, bounds: Iterable[SupportsFloat]) -> Interval:
        """The interval of a ``(lo, hi)`` pair of numbers (a tuple, a list, a 2-element array)."""
        lo, hi = bounds
        return cls(float(lo), float(hi))

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, other: Interval) -> bool:
        return self.lo <= other.lo and other.hi <= self.hi

    def intersect(self, other: Interval) -> Interval | None:
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return Interval(lo, hi) if lo <= hi else None

    def hull(self, other: Interval) -> Interval:
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def clamp(self, other: Interval) -> Interval:
        """Project this interval into ``other`` (what a clip to ``other`` leaves of it)."""
        both = self.intersect(other)
        if both is not None:
            return both
        point = other.lo if self.hi < other.lo else other.hi
        return Interval(point, point)

    def as_list(self) -> list[float | None]:
        """JSON-friendly bounds: infinities become ``None``."""
        return [_finite_or_none(self.lo), _finite_or_none(self.hi)]

    def __str__(self) -> str:
        return format_interval(self.lo, self.hi)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def format_number(x: float) -> str:
    """A value as messages and reports print it: ``255``, ``0.00392157``, ``-inf``, ``nan``."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def format_interval(lo: float | None, hi: float | None) -> str:
    """``[lo, hi]`` with :func:`format_number`; a missing bound (``None``) is unbounded."""
    low = "-inf" if lo is None else format_number(lo)
    high = "inf" if hi is None else format_number(hi)
    return f"[{low}, {high}]"


@dataclass(frozen=True)
class ScaleStep:
    """A stage that changed the scale of the values (rescale, CLAHE, normalize, ...)."""

    index: int
    name: str
    line: int | None = None

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"stage {self.index} `{self.name}`{where}"


@dataclass(frozen=True)
class ValueSpec:
    """What the values look like at one point of the pipeline.

    Attributes:
        dtype: canonical dtype name, or ``None`` when unknown.
        interval: closed interval that contains every value.
        channels: channel count, or ``None`` when unknown.
        bits: meaningful levels, in bits (12 for 12-bit data, also after a rescale to float);
            ``None`` when unknown or continuous.
        scaled_by: stages that changed the scale so far, oldest first.
        known: ``False`` when nothing was declared or sampled about the source; checks that
            compare intervals are skipped then.
        units: what the numbers mean, where the source says so: ``'stored'`` (DICOM stored
            values whose modality LUT is not applied), ``'modality'``, ``'HU'`` (CT modality
            units), ``'voi'`` (a DICOM VOI window's [0, 1]); ``None`` when not known. A stage
            that changes the scale leaves the units behind.
    """

    dtype: str | None
    interval: Interval
    channels: int | None = None
    bits: int | None = None
    scaled_by: tuple[ScaleStep, ...] = field(default_factory=tuple)
    known: bool = True
    units: str | None = None

    @classmethod
    def unknown(cls, channels: int | None = None) -> ValueSpec:
        return cls(None, Interval(-math.inf, math.inf), channels=channels, known=False)

    @classmethod
    def for_dtype(
        cls,
        dtype: npt.DTypeLike,
        *,
        bits: int | None = None,
        interval: tuple[float, float] | None = None,
        channels: int | None = None,
    ) -> ValueSpec:
        """Spec of source data: integers default to ``[0, 2**bits - 1]`` (signed: two's complement)."""
        name = dtypes.normalize_dtype(dtype)
        if dtypes.is_integer(name):
            bits = bits or dtypes.container_bits(name)
            default = dtypes.levels_range(bits, signed=dtypes.is_signed(name))
        else:
            default = dtypes.dtype_range(name)
            if name == "bool":
                bits = 1
        iv = Interval.of(interval) if interval is not None else Interval.of(default)
        return cls(name, iv, channels=channels, bits=bits)

    def with_(self, **changes: Any) -> ValueSpec:
        return replace(self, **changes)

    def scaled(self, step: ScaleStep, **changes: Any) -> ValueSpec:
        return replace(self, scaled_by=self.scaled_by + (step,), **{"units": None, **changes})

    @property
    def last_scale(self) -> ScaleStep | None:
        return self.scaled_by[-1] if self.scaled_by else None

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "range": self.interval.as_list(),
            "channels": self.channels,
            "bits": self.bits,
            "scaled_by": [s.name for s in self.scaled_by],
            "known": self.known,
            **({"units": self.units} if self.units is not None else {}),
        }

    def __str__(self) -> str:
        if not self.known:
            return "unknown"
        parts = [self.dtype or "?", str(self.interval)]
        if self.bits is not None:
            parts.append(f"{self.bits}-bit")
        if self.channels is not None:
            parts.append(f"{self.channels}ch")
        if self.units is not None:
            parts.append(f"({self.units})")
        return " ".join(parts)
