"""Inference of the built-in stages, one rule at a time, against intervals worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from preproc import Interval, RunContext, ValueSpec
from preproc.stages.base import StageContext
from preproc.stages.builtin import (
    Clahe,
    Clip,
    Gamma,
    Invert,
    Rescale,
    RescaleIntensity,
    ToDtype,
    Window,
    _clamp_int,
    _float_bits,
    endpoint_image,
)

INF = math.inf
U8 = ValueSpec.for_dtype("uint8")
U12 = ValueSpec.for_dtype("uint16", bits=12)
UNIT = ValueSpec.for_dtype("float32", interval=(0, 1))
CT = ValueSpec.for_dtype("int16", bits=12)


def _iv(spec):
    return (spec.interval.lo, spec.interval.hi)


def _img(values, dtype):
    return np.array(values, dtype=dtype).reshape(1, -1, 1)


def _codes(stage, spec):
    return [f.code for f in stage.extra_findings(spec)]


def _source(spec):
    return StageContext(source=spec)


# --- endpoint_image and its helpers ----------------------------------------------------------

def test_clamp_int_rounds_away_from_zero_and_clamps_to_the_dtype():
    assert _clamp_int(2.5, 0, 255) == 3
    assert _clamp_int(-2.5, -128, 127) == -3
    assert _clamp_int(0.0, -128, 127) == 0
    assert _clamp_int(300.0, 0, 255) == 255
    assert _clamp_int(-300.0, -128, 127) == -128
    assert _clamp_int(INF, 0, 255) == 255
    assert _clamp_int(-INF, 0, 255) == 0


def test_endpoint_image_evaluates_the_function_on_the_clamped_endpoints():
    seen = []

    def fn(x):
        seen.append((x.dtype, x.shape, x.ravel().tolist()))
        return x.astype(np.float64) * -2

    spec = ValueSpec("uint8", Interval(-3.5, 1000.0))
    assert endpoint_image(fn, spec) == Interval(-510.0, 0.0)
    assert seen == [(np.dtype(np.uint8), (1, 2, 1), [0, 255])]
    seen.clear()
    assert endpoint_image(fn, ValueSpec(None, Interval(-1.5, 2.0))) == Interval(-4.0, 3.0)
    assert seen[0][0] == np.float64
    seen.clear()
    endpoint_image(fn, ValueSpec("bool", Interval(0.0, 1.0)))
    assert seen[0][:1] == (np.dtype(bool),)


def test_endpoint_image_nan_is_an_error_on_finite_input_and_unbounded_otherwise():
    nan = lambda x: np.full(x.shape, np.nan)  # noqa: E731
    with pytest.raises(FloatingPointError, match=r"NaN from the finite \[0, 1\]"):
        endpoint_image(nan, UNIT)
    half = lambda x: np.array([0.0, np.nan])  # noqa: E731
    with pytest.raises(FloatingPointError):
        endpoint_image(half, UNIT)
    half_first = lambda x: np.array([np.nan, 0.0])  # noqa: E731
    with pytest.raises(FloatingPointError):
        endpoint_image(half_first, UNIT)
    open_spec = ValueSpec("float32", Interval(0.0, INF))
    assert endpoint_image(nan, open_spec) == Interval(-INF, INF)


def test_float_bits_cap_at_24():
    assert _float_bits(U12) == 12
    assert _float_bits(ValueSpec.for_dtype("uint32")) == 24
    assert _float_bits(ValueSpec.for_dtype("uint32", bits=24)) == 24
    assert _float_bits(UNIT) is None


# --- rescale ---------------------------------------------------------------------------------

def test_rescale_implies_the_levels_of_a_unit_factor_only():
    assert Rescale({"factor": 1 / 255}).implied_input(U8) == Interval(0.0, 255.0)
    assert Rescale({"factor": 1 / 4095}).implied_input(U8) == Interval(0.0, 4095.0)
    assert Rescale({"factor": -1 / 255}).implied_input(U8) is None
    assert Rescale({"factor": 2}).implied_input(U8) is None
    with pytest.raises(ValidationError, match="factor must not be 0"):
        Rescale({"factor": 0})


def test_rescale_infers_the_affine_image_in_float32():
    out = Rescale({"factor": 1 / 4095}).infer(U12)
    assert (out.dtype, _iv(out), out.bits) == ("float32", (0.0, 1.0), 12)
    out = Rescale({"factor": -2.0, "offset": 1.0}).infer(ValueSpec.for_dtype("uint32"))
    assert (out.dtype, _iv(out), out.bits) == ("float32", (float(np.float32(-2.0 * 4294967295)
                                                                 + 1), 1.0), 24)
    assert out.scaled_by[-1].name == "rescale"
    x = _img([0, 255], np.uint8)
    np.testing.assert_array_equal(Rescale({"factor": 2, "offset": 1}).apply_alone(x).ravel(),
                                  [1, 511])


def test_rescale_of_more_than_24_bits_loses_precision():
    stage = Rescale({"factor": 1 / 255})
    (f,) = stage.extra_findings(ValueSpec.for_dtype("uint32"))
    assert f.code == "precision-loss"
    assert f.message == ("stage 0 `rescale` computes in float32, which holds 24 bits, but "
                         "receives 32-bit integers")
    assert f.hint == "reduce the data to 24 bits first, or accept the rounding"
    assert _codes(stage, ValueSpec.for_dtype("uint32", bits=24)) == []
    assert _codes(stage, ValueSpec("uint32", Interval(0.0, 9.0))) == []
    assert _codes(stage, ValueSpec.for_dtype("float64")) == []


# --- rescale_intensity -----------------------------------------------------------------------

def test_rescale_intensity_traits_follow_in_range_and_clip():
    t = RescaleIntensity({"in_range": "dtype"}).traits()
    assert (t.clips, t.input_kind, t.elementwise, t.changes_scale) == (True, "integer", False,
                                                                        True)
    t = RescaleIntensity({"in_range": "bit_depth", "clip": False}).traits()
    assert (t.clips, t.input_kind, t.elementwise) == (False, "integer", False)
    for in_range in ("source", [0, 10]):
        t = RescaleIntensity({"in_range": in_range}).traits()
        assert (t.input_kind, t.elementwise) == (None, True)


def test_rescale_intensity_resolves_each_kind_of_in_range():
    def resolve(in_range, spec, source=None):
        stage = RescaleIntensity({"in_range": in_range},
                                 context=_source(source) if source else None)
        return stage.resolve_in_range(spec)

    assert resolve([100, 1000], UNIT) == Interval(100.0, 1000.0)
    assert resolve("dtype", U12) == Interval(0.0, 65535.0)
    assert resolve("bit_depth", U12) == Interval(0.0, 4095.0)
    assert resolve("bit_depth", CT) == Interval(-2048.0, 2047.0)
    assert resolve("bit_depth", ValueSpec("uint16", Interval(0.0, 9.0))) == \
        Interval(0.0, 65535.0)
    assert resolve("dtype", UNIT) is None
    assert resolve("bit_depth", ValueSpec.unknown()) is None
    assert resolve("source", U12, CT) == Interval(-2048.0, 2047.0)
    assert resolve("source", U12) is None
    assert resolve("source", U12, ValueSpec("float32", Interval(0.0, INF))) is None
    assert resolve("source", U12, ValueSpec("float32", Interval(-INF, 0.0))) is None
    stage = RescaleIntensity({"in_range": "bit_depth"})
    assert stage.implied_input(U12) == Interval(0.0, 4095.0)


def test_rescale_intensity_infers_out_range_in_every_case():
    stage = RescaleIntensity({"in_range": "bit_depth", "out_range": [-1, 1]})
    out = stage.infer(U12)
    assert (out.dtype, _iv(out), out.bits, out.known) == ("float32", (-1.0, 1.0), 12, True)
    # in_range unknown here: clipped output stays in out_range, unclipped is unbounded
    out = stage.infer(UNIT)
    assert (_iv(out), out.bits) == ((-1.0, 1.0), None)
    free = RescaleIntensity({"in_range": "dtype", "clip": False})
    assert _iv(free.infer(UNIT)) == (-INF, INF)
    assert free.infer(UNIT).scaled_by[-1].name == "rescale_intensity"
    # unknown input with a clipped known in_range: the output is known anyway
    known = RescaleIntensity({"in_range": [0, 10]}).infer(ValueSpec.unknown())
    assert (known.known, _iv(known), known.bits) == (True, (0.0, 1.0), None)
    unclipped = RescaleIntensity({"in_range": [0, 10], "clip": False})
    assert unclipped.infer(ValueSpec.unknown()).known is False
    out = unclipped.infer(ValueSpec.for_dtype("uint8", interval=(0, 20)))
    assert _iv(out) == (0.0, 2.0)
    assert out.bits == 8


def test_rescale_intensity_applies_the_range_of_the_array_it_gets():
    stage = RescaleIntensity({"in_range": "dtype"})
    x = _img([0, 255], np.uint8)
    np.testing.assert_array_equal(stage.apply(x, RunContext(spec=U12)).ravel(), [0.0, 1.0])
    np.testing.assert_array_equal(stage.apply(x, RunContext(spec=U8)).ravel(), [0.0, 1.0])
    np.testing.assert_array_equal(
        stage.apply(_img([0, 65535], np.uint16), RunContext(spec=U12)).ravel(), [0.0, 1.0])
    with pytest.raises(ValueError, match=r"stage 0 `rescale_intensity`: in_range 'dtype' is "
                                         r"unknown here"):
        stage.apply(_img([0.5], np.float32), RunContext())
    fixed = RescaleIntensity({"in_range": [0, 10], "out_range": [0, 2], "clip": False})
    np.testing.assert_array_equal(fixed.apply_alone(_img([5, 20], np.uint8)).ravel(), [1, 4])


@pytest.mark.parametrize("params", [{"in_range": [1.0, 1.00000001]}, {"in_range": [0, 1e39]},
                                    {"out_range": [0, 1e-46]}, {"out_range": [-3e38, 3e38]}])
def test_rescale_intensity_refuses_spans_float32_cannot_compute(params):
    with pytest.raises(ValidationError, match="too narrow or too wide to compute in float32"):
        RescaleIntensity(params)


# --- clahe -----------------------------------------------------------------------------------

def test_clahe_implies_unit_floats_and_outputs_unit_floats():
    stage = Clahe()
    assert stage.implied_input(UNIT) == Interval(0.0, 1.0)
    assert stage.implied_input(U12) is None
    assert stage.implied_input(ValueSpec.unknown()) is None
    out = stage.infer(ValueSpec.unknown())
    assert (out.dtype, _iv(out), out.bits, out.known) == ("float32", (0.0, 1.0), None, True)
    x = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    from preproc.stages import functional as F

    tuned = Clahe({"clip_limit": 0.05, "kernel_size": 4, "nbins": 32})
    np.testing.assert_array_equal(tuned.apply_alone(x), F.clahe(x, 0.05, 4, 32))
    assert not np.array_equal(tuned.apply_alone(x), stage.apply_alone(x))


def test_clahe_warns_about_negative_signed_input_only():
    (f,) = Clahe().extra_findings(CT)
    assert f.code == "clipping"
    assert f.message == ("stage 0 `clahe` receives signed values down to -2048; scikit-image "
                         "converts them to unsigned and discards the negative part")
    assert f.hint == "shift the data first, e.g. rescale_intensity with in_range: source"
    assert _codes(Clahe(), ValueSpec("int16", Interval(0.0, 100.0))) == []
    assert _codes(Clahe(), ValueSpec("float32", Interval(-1.0, 1.0))) == []
    assert _codes(Clahe(), ValueSpec(None, Interval(-1.0, 1.0))) == []


# --- clip ------------------------------------------------------------------------------------

def test_clip_infers_the_intersection_and_flags_bounds_with_no_integer():
    stage = Clip({"min": 0.5, "max": 100.7})
    assert stage.implied_input(U8) == Interval(0.5, 100.7)
    out = stage.infer(U8)
    assert (out.dtype, _iv(out)) == ("uint8", (1.0, 100.0))
    with pytest.raises(ValidationError, match=r"min \(3.0\) must not exceed max \(2.0\)"):
        Clip({"min": 3, "max": 2})
    Clip({"min": 2, "max": 2})
    (f,) = Clip({"min": 0.2, "max": 0.8}).extra_findings(U8)
    assert f.code == "degenerate-output"
    assert f.message == ("stage 0 `clip` keeps [0.2, 0.8], which holds no integer of uint8: "
                         "every value maps to one constant")
    assert f.hint == "give the bounds in the units of the data"
    assert _codes(Clip({"min": 1, "max": 1}), U8) == []
    assert _codes(Clip({"min": 0.2, "max": 0.8}), UNIT) == []


# --- window ----------------------------------------------------------------------------------

def test_window_maps_its_span_onto_out_range():
    stage = Window({"center": 40, "width": 400, "out_range": [-1, 1]})
    assert stage.implied_input(CT) == Interval(-160.0, 240.0)
    out = stage.infer(CT)
    assert (out.dtype, _iv(out), out.bits) == ("float32", (-1.0, 1.0), None)
    narrow = stage.infer(ValueSpec("int16", Interval(40.0, 240.0)))
    assert _iv(narrow) == (0.0, 1.0)
    unknown = stage.infer(ValueSpec.unknown())
    assert (unknown.known, _iv(unknown)) == (True, (-1.0, 1.0))
    np.testing.assert_array_equal(stage.apply_alone(_img([-500, -160, 40, 240, 900],
                                                         np.int16)).ravel(),
                                  [-1, -1, 0, 1, 1])
    with pytest.raises(ValidationError, match="too narrow or too wide"):
        Window({"center": 1e39, "width": 1})


# --- gamma -----------------------------------------------------------------------------------

def test_gamma_expects_unit_floats():
    stage = Gamma({"gamma": 2.0})
    assert stage.implied_input(U8) == Interval(0.0, 1.0)
    out = stage.infer(ValueSpec("float32", Interval(0.0, 0.5)))
    assert (out.dtype, _iv(out)) == ("float32", (0.0, 0.25))
    np.testing.assert_array_equal(stage.apply_alone(_img([0.5], np.float32)).ravel(), [0.25])
    assert stage.traits().input_kind == "float"


# --- invert ----------------------------------------------------------------------------------

def test_invert_takes_its_maximum_from_the_params_or_the_source():
    assert Invert({"max": 255}).maximum() == 255.0
    assert Invert({"max": 255}).implied_input(U8) == Interval(0.0, 255.0)
    stage = Invert(context=_source(U12))
    assert stage.maximum() == 4095.0
    assert _iv(stage.infer(U12)) == (0.0, 4095.0)
    np.testing.assert_array_equal(stage.apply_alone(_img([0, 95], np.uint16)).ravel(),
                                  [4095, 4000])
    for source in (ValueSpec.unknown(), ValueSpec("float32", Interval(0.0, INF))):
        blind = Invert(context=_source(source))
        assert blind.maximum() is None
        assert blind.implied_input(U12) is None
        assert _iv(blind.infer(U12)) == (-INF, INF)
        with pytest.raises(ValueError, match=r"stage 0 `invert`: `max: source` needs a "
                                             r"declared source range"):
            blind.apply_alone(_img([1], np.uint16))


# --- to_dtype --------------------------------------------------------------------------------

def test_to_dtype_traits_depend_on_scale():
    assert (ToDtype({"dtype": "uint8", "scale": True}).traits().changes_scale,
            ToDtype({"dtype": "uint8", "scale": True}).traits().elementwise) == (True, False)
    assert (ToDtype({"dtype": "uint8"}).traits().changes_scale,
            ToDtype({"dtype": "uint8"}).traits().elementwise) == (False, True)


@pytest.mark.parametrize("interval, expected", [
    ((0.0, 0.0), (0.0, 0.0)), ((-1.0, 1.0), (0.0, 1.0)), ((0.0, 5.0), (0.0, 1.0)),
    ((-5.0, 0.0), (0.0, 1.0)), ((1.0, 5.0), (1.0, 1.0)), ((-5.0, -1.0), (1.0, 1.0)),
])
def test_to_bool_is_zero_only_where_zero_is_possible(interval, expected):
    out = ToDtype({"dtype": "bool"}).infer(ValueSpec("float32", Interval(*interval)))
    assert (out.dtype, _iv(out), out.bits) == ("bool", expected, 1)


def test_to_integer_counts_the_levels_it_can_hold():
    out = ToDtype({"dtype": "uint8", "scale": True}).infer(ValueSpec.for_dtype("uint16"))
    assert (out.dtype, _iv(out), out.bits) == ("uint8", (0.0, 255.0), 8)
    out = ToDtype({"dtype": "uint16"}).infer(ValueSpec("float32", Interval(0.0, 1.0)))
    assert (_iv(out), out.bits) == ((0.0, 1.0), 1)
    out = ToDtype({"dtype": "uint16"}).infer(ValueSpec("float32", Interval(0.0, 0.0)))
    assert out.bits == 1
    out = ToDtype({"dtype": "uint16"}).infer(ValueSpec("float32", Interval(0.0, 300.0), bits=4))
    assert out.bits == 4
    out = ToDtype({"dtype": "uint16"}).infer(ValueSpec("float32", Interval(0.0, 3.0), bits=12))
    assert out.bits == 2
    out = ToDtype({"dtype": "float32"}).infer(U12)
    assert (out.dtype, _iv(out), out.bits) == ("float32", (0.0, 4095.0), 12)


def test_to_dtype_reports_saturation_and_lost_levels():
    stage = ToDtype({"dtype": "uint8"})
    clip, loss = stage.extra_findings(ValueSpec("float32", Interval(-5.0, 300.0)))
    assert clip.code == "clipping"
    assert clip.message == ("stage 0 `to_dtype` casts [-5, 300] to uint8, which holds [0, 255]: "
                            "values beyond saturate")
    assert clip.hint == "rescale into the target range first, or use `scale: true`"
    assert loss.code == "precision-loss"
    assert loss.message == ("stage 0 `to_dtype` quantizes to about 306 levels of uint8; the "
                            "input is continuous")
    assert loss.hint == "keep a wider dtype (uint16 or float32) if the detail matters"
    (f,) = ToDtype({"dtype": "uint8", "scale": True}).extra_findings(U12)
    assert f.message == ("stage 0 `to_dtype` quantizes to about 16 levels of uint8; the input "
                         "has 4096")
    (f,) = ToDtype({"dtype": "uint8", "scale": True}).extra_findings(
        ValueSpec("uint16", Interval(0.0, 65535.0), bits=10))
    assert f.message.endswith("quantizes to about 256 levels of uint8; the input has 1024")
    assert _codes(ToDtype({"dtype": "uint16", "scale": True}), U8) == []
    assert _codes(ToDtype({"dtype": "uint16"}), U12) == []
    assert _codes(ToDtype({"dtype": "uint8"}), ValueSpec("uint16", Interval(0.0, 255.0))) == []
    assert _codes(ToDtype({"dtype": "int16"}), ValueSpec("uint16", Interval(0.0, 255.0))) == []
    assert _codes(ToDtype({"dtype": "float32"}), ValueSpec.for_dtype("uint32")) == []
    assert _codes(ToDtype({"dtype": "uint8"}), ValueSpec(None, Interval(0.0, 1e6))) == []
    assert _codes(ToDtype({"dtype": "uint8"}), ValueSpec("float32", Interval(0.0, INF))) == \
        ["clipping"]
    assert _codes(ToDtype({"dtype": "uint8"}), ValueSpec("float32", Interval(-1.0, 255.0))) == \
        ["clipping", "precision-loss"]
    assert _codes(ToDtype({"dtype": "uint8"}), ValueSpec("float32", Interval(0.0, 256.0))) == \
        ["clipping", "precision-loss"]


def test_to_dtype_scaled_ideal_uses_both_full_scales():
    stage = ToDtype({"dtype": "uint16", "scale": True})
    assert stage._ideal(ValueSpec("float32", Interval(0.0, 2.0))) == Interval(0.0, 131070.0)
    assert stage._ideal(ValueSpec(None, Interval(0.0, 2.0))) == Interval(0.0, 2.0)
    assert ToDtype({"dtype": "uint16"})._ideal(UNIT) == Interval(0.0, 1.0)
    f, g = stage.extra_findings(ValueSpec("float32", Interval(-0.5, 1.0), bits=20))
    assert (f.code, g.code) == ("clipping", "precision-loss")
    assert g.message.endswith("about 98303 levels of uint16; the input has 1048576")
    assert "casts [-32767.5, 65535] to uint16" in f.message


# --- cases that separate near-identical rules ----------------------------------------------

def test_endpoint_arithmetic_warns_about_nothing():
    import warnings

    spec = ValueSpec("float32", Interval(0.0, 3e38))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = endpoint_image(lambda x: x * np.float32(10), spec)
    assert out == Interval(0.0, INF)


def test_endpoints_are_fed_in_the_spec_dtype():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x

    endpoint_image(fn, ValueSpec("float32", Interval(0.1, 0.2)))
    endpoint_image(fn, ValueSpec("float16", Interval(0.1, 0.2)))
    assert seen == [np.float32, np.float16]
    # so float32 arithmetic is what the interval holds: 1 - 0.1 in float32 is not 0.9
    out = Invert({"max": 1.0}).infer(ValueSpec("float32", Interval(0.1, 0.1)))
    assert _iv(out) == (float(np.float32(1) - np.float32(0.1)),) * 2
    assert _iv(out) != (0.9, 0.9)


def test_bool_endpoints_clamp_to_false_and_true():
    assert endpoint_image(lambda x: x, ValueSpec("bool", Interval(-1.0, 0.0))) == \
        Interval(0.0, 0.0)
    assert endpoint_image(lambda x: x, ValueSpec("bool", Interval(-INF, INF))) == \
        Interval(0.0, 1.0)


def test_clamp_int_rounds_fractions_below_one_up():
    assert _clamp_int(0.5, 0, 255) == 1
    assert _clamp_int(-0.5, -128, 127) == -1


def test_precision_loss_starts_at_25_bits():
    stage = Rescale({"factor": 1 / 255})
    assert _codes(stage, ValueSpec.for_dtype("uint32", bits=25)) == ["precision-loss"]


# an unknown range that still knows its dtype and levels: what to_dtype makes of unknown input
UNKNOWN_U8 = ValueSpec("uint8", Interval(-INF, INF), bits=8, known=False)


def test_rescale_intensity_outputs_continuous_float32_on_every_path():
    resolved_none = RescaleIntensity({"in_range": "dtype"})
    for spec in (ValueSpec("float64", Interval(0.0, 1.0), bits=12), ValueSpec.unknown()):
        out = resolved_none.infer(spec)
        assert (out.dtype, out.bits) == ("float32", None)
    out = RescaleIntensity({"in_range": [0, 10]}).infer(UNKNOWN_U8)
    assert (out.dtype, out.bits, out.known, _iv(out)) == ("float32", None, True, (0.0, 1.0))
    out = RescaleIntensity({"in_range": [0, 10]}).infer(U8)
    assert (_iv(out), out.bits) == ((0.0, 1.0), 8)
    free = RescaleIntensity({"in_range": [0, 10], "clip": False}).infer(U8)
    assert _iv(free) == (0.0, 25.5)
    wide = RescaleIntensity({"in_range": [0, 10]}).infer(ValueSpec.for_dtype("uint32"))
    assert wide.bits == 24


def test_rescale_intensity_reads_the_bit_depth_of_the_bound_spec():
    stage = RescaleIntensity({"in_range": "bit_depth"})
    x = _img([0, 4095], np.uint16)
    np.testing.assert_array_equal(stage.apply(x, RunContext(spec=U12)).ravel(), [0.0, 1.0])
    np.testing.assert_array_equal(stage.apply(x, RunContext()).ravel(),
                                  [0.0, np.float32(4095) * (np.float32(1) / np.float32(65535))])


def test_clahe_and_window_outputs_are_continuous_float32():
    out = Clahe().infer(U12)
    assert (out.dtype, out.bits) == ("float32", None)
    window = Window({"center": 40, "width": 400})
    for spec in (UNKNOWN_U8, ValueSpec.unknown()):
        out = window.infer(spec)
        assert (out.dtype, out.bits, out.known) == ("float32", None, True)


def test_gamma_outputs_float32_whatever_float_comes_in():
    out = Gamma({"gamma": 2.0}).infer(ValueSpec("float64", Interval(0.0, 0.5)))
    assert (out.dtype, _iv(out)) == ("float32", (0.0, 0.25))


def test_to_dtype_applies_its_scale():
    stage = ToDtype({"dtype": "uint8", "scale": True})
    np.testing.assert_array_equal(stage.apply_alone(_img([0, 257, 65535], np.uint16)).ravel(),
                                  [0, 1, 255])
    out = ToDtype({"dtype": "uint16"}).infer(ValueSpec("float32", Interval(100.0, 103.0)))
    assert out.bits == 2
