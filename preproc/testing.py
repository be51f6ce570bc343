"""Test helpers for stage authors: the stage contract, checked with Hypothesis.

Every stage, built-in or plugin, must satisfy::

    from preproc.testing import check_stage
    check_stage(MyStage)          # uses MyStage.examples, or default params on standard inputs

which asserts, for random images drawn inside each example's input spec, that

* ``apply`` does not mutate its input,
* the output dtype is the one ``infer`` announces,
* the output lies inside the interval ``infer`` announces (soundness), and has the input's
  height and width (or the stage's ``output_size``).

Random stages (``traits().random``) run with generators Hypothesis chooses: seeded ones, and
ones that return only the ends of every range, so the property is checked for all draws.

Stages declare examples as ``examples = [{"params": {...}, "input": {"dtype": "uint16",
"range": [0, 4095], "bits": 12, "channels": 1}}, ...]``. Hypothesis is needed (``pip install
'preproc[dev]'``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from . import dtypes
from .errors import MissingDependencyError
from .spec import Interval, ValueSpec
from .stages.base import RunContext, Stage, StageContext
from .types import Array

if TYPE_CHECKING:
    from hypothesis import settings as Settings
    from hypothesis.strategies import SearchStrategy

__all__ = ["STANDARD_INPUTS", "EndsGenerator", "check_stage", "stage_examples"]

#: Inputs tried for stages that declare no examples and need no parameters.
STANDARD_INPUTS = (
    {"dtype": "uint8", "range": [0, 255], "channels": 3},
    {"dtype": "uint16", "range": [0, 4095], "bits": 12, "channels": 1},
    {"dtype": "float32", "range": [0, 1], "channels": 1},
)

_FINITE_CAP = 1e6  # stand-in for an unbounded end when drawing values


def _spec(d: dict[str, Any]) -> ValueSpec:
    return ValueSpec.for_dtype(d["dtype"], bits=d.get("bits"), interval=tuple(d["range"]),
                               channels=d.get("channels", 1))


def stage_examples(cls: type[Stage]) -> list[tuple[Stage, ValueSpec]]:
    """Instances and input specs to test ``cls`` on."""
    examples = list(getattr(cls, "examples", ()) or ())
    if not examples:
        required = [k for k, f in cls.Params.model_fields.items() if f.is_required()]
        if required:
            raise AssertionError(
                f"stage {cls.name!r} needs parameters {required}; declare `examples` on the class"
            )
        examples = [{"params": {}, "input": d} for d in STANDARD_INPUTS]
    out: list[tuple[Stage, ValueSpec]] = []
    for ex in examples:
        src = _spec(ex["input"])
        stage = cls(ex.get("params", {}), context=StageContext(source=src))
        out.append((stage, src))
    return out


def check_stage(cls: type[Stage], *, max_examples: int = 25) -> None:
    """Assert the stage contract for every example of ``cls`` (raises AssertionError)."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover
        raise MissingDependencyError("hypothesis", "dev", "the stage contract helper") from None
    for stage, spec in stage_examples(cls):
        _property(stage, spec, settings(
            max_examples=max_examples, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))()


def _property(stage: Stage, spec: ValueSpec, config: Settings) -> Callable[[], None]:
    from hypothesis import given
    from hypothesis import strategies as st

    rngs: SearchStrategy[np.random.Generator | EndsGenerator | None] = (
        _generators() if stage.traits().random else st.none()
    )

    @config
    @given(_images(spec), rngs)
    def run(image: Array, rng: np.random.Generator | EndsGenerator | None) -> None:
        _check_once(stage, spec, image, rng)

    return run


class EndsGenerator:
    """A stand-in for ``numpy.random.Generator`` that draws only the ends of each range.

    Soundness breaks at the extremes of a random parameter, which a seeded generator rarely
    hits. ``pattern`` picks low (0) or high (1) for each successive draw.
    """

    def __init__(self, pattern: int) -> None:
        self._pattern, self._k = pattern, 0

    def _bit(self) -> int:
        bit = (self._pattern >> (self._k % 16)) & 1
        self._k += 1
        return bit

    def uniform(self, low: float = 0.0, high: float = 1.0, size: None = None) -> float:
        return float(high if self._bit() else low)

    def random(self, size: None = None) -> float:
        return 0.999999 if self._bit() else 0.0

    def integers(
        self, low: int, high: int | None = None, size: None = None, endpoint: bool = False
    ) -> int:
        if high is None:
            low, high = 0, low
        top = high if endpoint else high - 1
        return int(top if self._bit() else low)


def _generators() -> SearchStrategy[np.random.Generator | EndsGenerator]:
    from hypothesis import strategies as st

    seeded = st.integers(0, 2**32 - 1).map(np.random.default_rng)
    return st.one_of(seeded, st.integers(0, 2**16 - 1).map(EndsGenerator))


def _check_once(stage: Stage, spec: ValueSpec, image: Array,
                rng: np.random.Generator | EndsGenerator | None = None) -> None:
    before = image.copy()
    # EndsGenerator offers the Generator methods random stages call (uniform, random, integers)
    out = stage.apply(image, RunContext(spec=spec, rng=cast("np.random.Generator | None", rng)))
    name = stage.name
    assert np.array_equal(image, before, equal_nan=True), f"{name}: apply mutated its input"
    inferred = stage.infer(spec)
    assert isinstance(out, np.ndarray) and out.ndim == 3, f"{name}: output is not (H, W, C)"
    size = getattr(stage, "output_size", lambda h, w: (h, w))(*image.shape[:2])
    assert out.shape[:2] == tuple(size), f"{name}: output is {out.shape[:2]}, expected {size}"
    if inferred.dtype is not None:
        got = dtypes.normalize_dtype(out.dtype)
        assert got == inferred.dtype, f"{name}: output dtype {got}, inferred {inferred.dtype}"
    if out.size:
        assert not (out.dtype.kind == "f" and np.isnan(out).any()), f"{name}: produced NaN"
        lo, hi = float(out.min()), float(out.max())
        assert inferred.interval.contains(Interval(lo, hi)), (
            f"{name} {stage.params!r}: output [{lo!r}, {hi!r}] escapes inferred "
            f"{inferred.interval} for input {spec}"
        )


def _images(spec: ValueSpec) -> SearchStrategy[Array]:
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    lo = max(spec.interval.lo, -_FINITE_CAP)
    hi = min(spec.interval.hi, _FINITE_CAP)
    dt = np.dtype(spec.dtype)
    elements: SearchStrategy[float]
    if dt.kind in "ui":
        elements = st.integers(int(math.ceil(lo)), int(math.floor(hi)))
    elif dt.kind == "b":
        elements = st.booleans()
    else:
        # float16/32/64 are the float dtypes a spec can name (dtypes.DTYPE_NAMES)
        width = cast(Literal[16, 32, 64], dt.itemsize * 8)
        elements = st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False)
    channels = spec.channels or 1
    shape = st.tuples(st.integers(4, 24), st.integers(4, 24), st.just(channels))
    ends = st.sampled_from([lo, hi])
    base = arrays(dt, shape, elements=elements)
    # Make sure the extremes of the interval show up often: that is where soundness breaks.
    return st.tuples(base, ends, ends).map(lambda t: _with_ends(t[0], t[1], t[2], dt))


def _with_ends(image: Array, a: float, b: float, dt: np.dtype[Any]) -> Array:
    image = image.copy()
    if image.size >= 2:
        image.flat[0] = dt.type(a)
        image.flat[-1] = dt.type(b)
    return image
