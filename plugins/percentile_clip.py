"""Example plugin: clip each image to its own percentiles (robust to hot and dead pixels).

Use from a config::

    plugins: [../plugins/percentile_clip.py]
    stages:
      - percentile_clip: {low: 0.5, high: 99.5}
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

import preproc
from preproc.spec import ValueSpec


class PercentileClipParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float = Field(0.5, ge=0, le=100)
    high: float = Field(99.5, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self):
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


def percentile_clip(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip every channel to its own [low, high] percentiles. Output: dtype and range kept."""
    lo = np.percentile(x, low, axis=(0, 1), method="lower")
    hi = np.percentile(x, high, axis=(0, 1), method="higher")
    return np.clip(x, lo.astype(x.dtype), hi.astype(x.dtype))


@preproc.register_stage
class PercentileClip(preproc.Stage):
    """Clip each image to its own percentiles.

    Input: anything. Output: same dtype, inside the input interval (percentiles are data values).
    """

    name = "percentile_clip"
    Params = PercentileClipParams
    summary = "clip each image to its own [low, high] percentiles"
    examples = [
        {"params": {}, "input": {"dtype": "uint16", "range": [0, 4095], "bits": 12}},
        {"params": {"low": 2, "high": 98}, "input": {"dtype": "float32", "range": [0, 1], "channels": 3}},
    ]

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, spec.interval)

    def apply(self, x: np.ndarray, ctx: preproc.RunContext) -> np.ndarray:
        return percentile_clip(x, self.params.low, self.params.high)
