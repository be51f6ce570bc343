"""Example plugin: unsharp masking on [0, 1] floats, clipped back into [0, 1].

Use from a config::

    plugins: [../plugins/unsharp_mask.py]
    stages:
      - rescale_intensity: {in_range: bit_depth}
      - unsharp_mask: {radius: 2, amount: 1.0}
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import preproc
from preproc.spec import Interval, ValueSpec


class UnsharpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    radius: float = Field(1.0, gt=0)
    amount: float = Field(1.0, ge=0)


def unsharp(x: np.ndarray, radius: float, amount: float) -> np.ndarray:
    """``x + amount * (x - blur(x))`` per channel, clipped to [0, 1]. Input/output: float32 [0, 1]."""
    from scipy.ndimage import gaussian_filter

    x = x.astype(np.float32, copy=False)
    blurred = gaussian_filter(x, sigma=(radius, radius, 0), mode="nearest")
    out = x + np.float32(amount) * (x - blurred)
    return np.clip(out, 0.0, 1.0, out=out)


@preproc.register_stage
class UnsharpMask(preproc.Stage):
    """Sharpen with an unsharp mask.

    Input: floats in [0, 1] (dtype-mismatch on integers). Output: float32 in [0, 1]; the
    overshoot that sharpening creates at edges is clipped.
    """

    name = "unsharp_mask"
    Params = UnsharpParams
    TRAITS = preproc.StageTraits(input_kind="float")
    summary = "unsharp mask on [0, 1] floats, clipped to [0, 1]"
    examples = [
        {"params": {}, "input": {"dtype": "float32", "range": [0, 1]}},
        {"params": {"radius": 3, "amount": 2}, "input": {"dtype": "float32", "range": [0, 1], "channels": 3}},
    ]

    def implied_input(self, spec: ValueSpec) -> Interval:
        return Interval(0.0, 1.0)

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return self.output_spec(spec, Interval(0.0, 1.0), "float32")

    def apply(self, x: np.ndarray, ctx: preproc.RunContext) -> np.ndarray:
        return unsharp(x, self.params.radius, self.params.amount)
