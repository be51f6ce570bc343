"""The ``normalize`` stage: fixed, samplewise or featurewise statistics."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from ..errors import ConfigError
from ..findings import Finding
from ..spec import Interval, ValueSpec
from ..types import STRICT, Array, Number, PositiveNumber
from . import functional as F
from .base import RunContext, Stage, StageTraits

__all__ = ["Normalize", "load_stats"]

Stat = Number | list[Number]


class NormalizeParams(BaseModel):
    model_config = STRICT
    mean: Stat | None = None
    std: Stat | None = None
    mode: Literal["fixed", "samplewise", "featurewise"] = "fixed"
    stats: str | None = Field(None, description="featurewise: JSON file written by `preproc audit --stats`")
    epsilon: PositiveNumber = 1e-6

    @model_validator(mode="after")
    def _consistent(self) -> NormalizeParams:
        fixed = self.mode == "fixed"
        if fixed and (self.mean is None or self.std is None):
            raise ValueError("give `mean` and `std`, or `mode: samplewise` or `mode: featurewise`")
        if not fixed and (self.mean is not None or self.std is not None):
            raise ValueError(f"`mode: {self.mode}` computes mean and std itself; remove them")
        if self.stats is not None and self.mode != "featurewise":
            raise ValueError("`stats` goes with `mode: featurewise`")
        for value in _as_list(self.std):
            if value <= 0:
                raise ValueError("every std must be positive")
        lengths = {len(_as_list(self.mean)), len(_as_list(self.std))} - {1}
        if fixed and (0 in lengths or len(lengths) > 1):
            raise ValueError("`mean` and `std` need one value each, or one per channel "
                             "(lists of the same length)")
        return self


def _as_list(value: float | list[float] | None) -> list[float]:
    if value is None:
        return []
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def _broadcast(values: list[float], n: int) -> list[float]:
    return values if len(values) == n else values * n


def load_stats(path: Path) -> tuple[list[float], list[float], str]:
    """Read per-channel ``mean`` and ``std`` from a stats JSON file (``preproc audit --stats``).

    Returns mean, std and the ``space`` they were measured in (``"raw"``: decoded file values).
    """
    try:
        from ..io.smallfile import read_capped

        data = json.loads(read_capped(path).decode("utf-8"))
        mean, std = [float(v) for v in data["mean"]], [float(v) for v in data["std"]]
        space = str(data.get("space", "raw"))
    except FileNotFoundError:
        raise ConfigError(f"stats file {path} not found", hint="write it with `preproc audit --stats`") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ConfigError(f"stats file {path} is not valid: {exc}") from None
    if not all(math.isfinite(v) for v in mean + std):
        raise ConfigError(f"stats file {path} holds a NaN or infinite mean/std")
    if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
        raise ConfigError(f"stats file {path} needs equal-length `mean` and positive `std` lists")
    return mean, std, space


class Normalize(Stage):
    """``(x - mean) / std`` in float32.

    ``mean``/``std`` are scalars or one value per channel, in the units of the incoming range.
    ``mode: samplewise`` uses each image's own statistics (output unbounded);
    ``mode: featurewise`` uses dataset statistics computed at this stage's position (or read
    from ``stats``). Input: anything. Output: float32.
    """

    name = "normalize"
    Params = NormalizeParams
    params: NormalizeParams
    #: per-channel (or single) statistics: given, read from ``stats``, or fitted
    mean: list[float]
    std: list[float]
    #: the ``space`` the stats file was measured in (``None``: no stats file)
    stats_space: str | None
    TRAITS = StageTraits(changes_scale=True)
    summary = "(x-mean)/std in float32; fixed, samplewise or featurewise"

    def setup(self) -> None:
        p = self.params
        self.mean, self.std = _as_list(p.mean), _as_list(p.std)
        self.stats_space = None
        if p.stats is not None:
            path = Path(self.context.base_dir) / p.stats
            self.mean, self.std, self.stats_space = load_stats(path)

    def traits(self) -> StageTraits:
        return replace(self.TRAITS, elementwise=self.params.mode != "samplewise")

    @property
    def needs_fit(self) -> bool:
        return self.params.mode == "featurewise" and not self.mean

    def fitted(self, mean: Iterable[float], std: Iterable[float]) -> Normalize:
        """A new stage with featurewise statistics measured at this stage's position."""
        params = self.params.model_copy(update={
            "mean": [float(m) for m in mean], "std": [max(float(s), 1e-12) for s in std],
        })
        return type(self)(params, expects=self.expects, index=self.index, line=self.line,
                          column=self.column, context=self.context)

    def _check_channels(self, channels: int | None) -> None:
        n = max(len(self.mean), len(self.std))
        if channels is None or n in (1, channels):
            return
        raise ConfigError(
            f"has {n} mean/std values but the images have {channels} channels",
            file=self.context.file, line=self.line, column=self.column,
            path=f"stages[{self.index}].normalize",
            hint="give one value, or one per channel (color_mode decides the channel count)",
        )

    def infer(self, spec: ValueSpec) -> ValueSpec:
        if not self.mean:  # samplewise, or featurewise not fitted yet
            return self.output_spec(spec, Interval(-math.inf, math.inf), "float32", bits=None)
        self._check_channels(spec.channels)
        his: list[float] = []
        los: list[float] = []
        with np.errstate(all="ignore"):
            n = max(len(self.mean), len(self.std))
            for m, s in zip(_broadcast(self.mean, n), _broadcast(self.std, n)):
                ends = np.array([spec.interval.lo, spec.interval.hi], dtype=np.float64)
                out = F.normalize(ends.reshape(1, 2, 1), m, s).astype(np.float64)
                los.append(float(out.min()))
                his.append(float(out.max()))
        return self.output_spec(spec, Interval(min(los), max(his)), "float32")

    def apply(self, x: Array, ctx: RunContext) -> Array:
        if self.params.mode == "samplewise":
            return F.samplewise(x, self.params.epsilon)
        if not self.mean:
            raise ValueError(f"{self.describe()}: featurewise statistics are not computed yet")
        return F.normalize(x, self.mean, self.std)

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        last = spec.last_scale  # None exactly when nothing changed the scale yet
        if self.stats_space == "raw" and last is not None:
            return [Finding(
                "normalize-units",
                f"{self.describe()} reads statistics of the raw file values from "
                f"{self.params.stats!r}, but {last.describe()} changed the scale "
                "before it",
                hint="drop `stats:` so they are computed at this stage's position, or move "
                "normalize before the scaling stage",
            )]
        if not self.mean or not spec.known or not spec.interval.bounded:
            return []
        width = spec.interval.width
        stats = [abs(v) for v in self.mean + self.std]
        if width > 2 and max(stats) <= 1:
            return [Finding(
                "normalize-units",
                f"{self.describe()} uses mean/std in [0, 1] units but receives {spec.interval}",
                hint="rescale to [0, 1] before normalize (e.g. rescale: {factor: 1/255}), "
                "or give mean/std in the input's units",
            )]
        if width <= 2 and max(stats) > 2:
            return [Finding(
                "normalize-units",
                f"{self.describe()} uses mean/std in raw units (up to {max(stats):g}) but "
                f"receives {spec.interval}",
                hint="divide mean and std by the raw range, or normalize before rescaling",
            )]
        return []


Normalize.examples = [
    {"params": {"mean": 0.5, "std": 0.25}, "input": {"dtype": "float32", "range": [0, 1]}},
    {"params": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
     "input": {"dtype": "float32", "range": [0, 1], "channels": 3}},
    {"params": {"mode": "samplewise"}, "input": {"dtype": "uint8", "range": [0, 255]}},
    {"params": {"mean": 100, "std": 50}, "input": {"dtype": "uint16", "range": [0, 4095], "bits": 12}},
]
