"""Drawing augmentation parameters: pure functions of an explicit ``numpy.random.Generator``.

Nothing here touches the global NumPy RNG or any pixel. Each function takes the generator, the
stage's validated ranges and the image shape, and returns the drawn values as a plain dict that
:mod:`preproc.stages.augment_functional` applies. :func:`stage_rng` builds the generator of one
stage for one file of one epoch, so a draw depends on (seed, epoch, file index, stage index)
only: never on worker count, shard layout or what else the process did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

#: drawn values by name, as the functional kernels take them
Drawn = dict[str, float | int | bool]
#: a ``[low, high]`` pair
Bounds = tuple[float, float]

__all__ = [
    "draw_affine",
    "draw_crop",
    "draw_factor",
    "draw_flip",
    "draw_seed",
    "pixel_shift",
    "stage_rng",
    "symmetric",
]


def stage_rng(seed: int, epoch: int, index: int, stage: int) -> np.random.Generator:
    """The generator of stage ``stage`` for file ``index`` (listing order) in ``epoch``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index),
                                                         int(stage)]))


def draw_seed() -> int:
    """A fresh seed from the operating system's entropy (for ``seed: null``), reported by callers."""
    # a SeedSequence built without entropy draws one int from the OS
    return int(cast(int, np.random.SeedSequence().entropy) % 2**31)


def symmetric(value: float | Sequence[float], neutral: float = 0.0) -> Bounds:
    """Keras' scalar form: ``v`` means ``[neutral - v, neutral + v]``; a pair is kept as given."""
    if isinstance(value, Sequence):
        lo, hi = value
        return float(lo), float(hi)
    return neutral - float(value), neutral + float(value)


def pixel_shift(bounds: Bounds, size: int) -> Bounds:
    """A shift range in pixels: values below 1 in magnitude are fractions of ``size`` (Keras)."""
    lo, hi = bounds
    if max(abs(lo), abs(hi)) < 1:
        return lo * size, hi * size
    return lo, hi


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return lo if lo == hi else float(rng.uniform(lo, hi))


def draw_affine(rng: np.random.Generator, ranges: Mapping[str, Bounds],
                shape: tuple[int, ...]) -> Drawn:
    """Keras' transform parameters: ``theta``, ``tx`` (rows), ``ty`` (columns), ``shear``, ``zx``, ``zy``.

    Args:
        rng: the stage's generator.
        ranges: ``[low, high]`` pairs under ``rotation``, ``height_shift``, ``width_shift``
            (already in pixels), ``shear`` and ``zoom``.
        shape: the image shape (unused: shifts arrive in pixels).
    """
    zoom = ranges["zoom"]
    return {
        "theta": _uniform(rng, *ranges["rotation"]),
        "tx": _uniform(rng, *ranges["height_shift"]),
        "ty": _uniform(rng, *ranges["width_shift"]),
        "shear": _uniform(rng, *ranges["shear"]),
        "zx": _uniform(rng, *zoom),
        "zy": _uniform(rng, *zoom),
    }


def draw_flip(rng: np.random.Generator, horizontal: bool, vertical: bool, p: float) -> Drawn:
    """Each enabled axis flips with probability ``p`` (both draws always happen: stable streams)."""
    h, v = rng.random() < p, rng.random() < p
    return {"horizontal": bool(horizontal and h), "vertical": bool(vertical and v)}


def draw_factor(rng: np.random.Generator, bounds: Bounds) -> float:
    """One uniform value in ``bounds`` (brightness factor, contrast factor, channel shift)."""
    return _uniform(rng, *bounds)


def draw_crop(rng: np.random.Generator, shape: tuple[int, ...], size: tuple[int, int]) -> Drawn:
    """A window of ``size`` placed uniformly inside an image of ``shape``."""
    h, w = shape[:2]
    ch, cw = size
    if ch > h or cw > w:
        raise ValueError(f"cannot crop {ch}x{cw} from an image of {h}x{w}; resize first "
                         "(batches.target_size) or crop smaller")
    return {"top": int(rng.integers(0, h - ch + 1)), "left": int(rng.integers(0, w - cw + 1))}
