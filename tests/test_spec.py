"""The value model on its own: intervals, scale steps and specs, with exact expected values."""

from __future__ import annotations

import math

import pytest

from preproc.spec import Interval, ScaleStep, ValueSpec

INF = math.inf


@pytest.mark.parametrize("bounds", [(math.nan, 1.0), (0.0, math.nan), (math.nan, math.nan)])
def test_nan_bounds_are_refused(bounds):
    with pytest.raises(ValueError, match="^interval bounds must not be NaN$"):
        Interval(*bounds)


def test_empty_interval_is_refused_and_a_point_is_not():
    with pytest.raises(ValueError, match=r"^empty interval \[2, 1\]$"):
        Interval(2, 1)
    assert Interval(3.0, 3.0).width == 0


def test_of_converts_to_floats():
    iv = Interval.of([1, 4095])
    assert (iv.lo, iv.hi) == (1.0, 4095.0) and type(iv.lo) is float and type(iv.hi) is float


@pytest.mark.parametrize(("lo", "hi", "bounded"), [
    (0, 1, True), (-INF, 1, False), (0, INF, False), (-INF, INF, False),
])
def test_bounded(lo, hi, bounded):
    assert Interval(lo, hi).bounded is bounded


def test_width_contains_intersect_hull():
    a, b = Interval(0, 10), Interval(5, 20)
    assert a.width == 10 and Interval(-3, 4).width == 7
    assert a.contains(Interval(0, 10)) and a.contains(Interval(2, 3))
    assert not a.contains(Interval(-1, 5)) and not a.contains(Interval(5, 11))
    assert a.intersect(b) == Interval(5, 10) and b.intersect(a) == Interval(5, 10)
    assert a.intersect(Interval(10, 12)) == Interval(10, 10)  # touching ends meet in a point
    assert a.intersect(Interval(11, 12)) is None
    assert a.hull(b) == Interval(0, 20) and b.hull(a) == Interval(0, 20)
    assert Interval(3, 4).hull(Interval(-1, 0)) == Interval(-1, 4)


def test_clamp_projects_into_the_other_interval():
    target = Interval(0, 1)
    assert Interval(-5, 0.5).clamp(target) == Interval(0, 0.5)
    assert Interval(-5, -1).clamp(target) == Interval(0, 0)   # wholly below: the lower end
    assert Interval(2, 5).clamp(target) == Interval(1, 1)     # wholly above: the upper end
    assert Interval(1, 5).clamp(target) == Interval(1, 1)


def test_as_list_and_str():
    assert Interval(-INF, INF).as_list() == [None, None]
    assert Interval(-1.5, 2).as_list() == [-1.5, 2.0]
    assert str(Interval(-INF, INF)) == "[-inf, inf]"
    assert str(Interval(0, 4095)) == "[0, 4095]"
    assert str(Interval(-2, 0.00392156862745098)) == "[-2, 0.00392157]"
    assert str(Interval(0, 1e15)) == "[0, 1e+15]"
    assert str(Interval(-1e15 + 1, 999999999999999)) == "[-999999999999999, 999999999999999]"
    assert str(Interval(0.5, 0.5)) == "[0.5, 0.5]"


def test_scale_step_describe():
    assert ScaleStep(2, "clahe", 9).describe() == "stage 2 `clahe` (line 9)"
    assert ScaleStep(0, "rescale").describe() == "stage 0 `rescale`"


def test_unknown_spec():
    spec = ValueSpec.unknown(channels=3)
    assert (spec.dtype, spec.channels, spec.known, spec.bits) == (None, 3, False, None)
    assert spec.interval == Interval(-INF, INF)
    assert str(spec) == "unknown"
    assert ValueSpec.unknown().channels is None


@pytest.mark.parametrize(("args", "dtype", "interval", "bits"), [
    (("uint8",), "uint8", (0, 255), 8),
    (("uint16",), "uint16", (0, 65535), 16),
    (("uint16", {"bits": 12}), "uint16", (0, 4095), 12),
    (("int16",), "int16", (-32768, 32767), 16),
    (("int16", {"bits": 12}), "int16", (-2048, 2047), 12),
    (("float32",), "float32", (-INF, INF), None),
    (("bool",), "bool", (0, 1), 1),
    (("uint16", {"bits": 12, "interval": (10, 20)}), "uint16", (10, 20), 12),
])
def test_for_dtype(args, dtype, interval, bits):
    kwargs = args[1] if len(args) > 1 else {}
    spec = ValueSpec.for_dtype(args[0], channels=1, **kwargs)
    assert (spec.dtype, spec.interval, spec.bits, spec.channels, spec.known) == \
        (dtype, Interval.of(interval), bits, 1, True)
    assert spec.scaled_by == () and spec.last_scale is None


def test_scaled_keeps_history_and_with_changes_one_field():
    spec = ValueSpec.for_dtype("uint8")
    a, b = ScaleStep(0, "rescale", 5), ScaleStep(1, "clahe", 6)
    two = spec.scaled(a, dtype="float32").scaled(b, interval=Interval(0, 1))
    assert two.scaled_by == (a, b) and two.last_scale == b
    assert two.dtype == "float32" and two.interval == Interval(0, 1)
    assert spec.scaled_by == ()  # frozen: the original is untouched
    narrowed = spec.with_(interval=Interval(0, 9))
    assert narrowed.interval == Interval(0, 9) and narrowed.dtype == "uint8" and narrowed.bits == 8


def test_to_json_and_str():
    spec = ValueSpec.for_dtype("uint16", bits=12, channels=1).scaled(ScaleStep(0, "rescale"),
                                                                     dtype="float32")
    assert spec.to_json() == {"dtype": "float32", "range": [0.0, 4095.0], "channels": 1,
                              "bits": 12, "scaled_by": ["rescale"], "known": True}
    assert str(spec) == "float32 [0, 4095] 12-bit 1ch"
    assert str(ValueSpec(None, Interval(-1, 1))) == "? [-1, 1]"
    assert ValueSpec.unknown().to_json() == {"dtype": None, "range": [None, None],
                                             "channels": None, "bits": None, "scaled_by": [],
                                             "known": False}
