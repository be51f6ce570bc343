"""Augmentation: Keras parity of the kernels, dtypes kept, draws seeded, range contracts."""

from __future__ import annotations

import os

import numpy as np
import pytest

from preproc.analysis import check_pipeline
from preproc.stages.pipeline import Pipeline
from preproc.spec import ValueSpec
from preproc.stages import augment_draw as D
from preproc.stages import augment_functional as A
from preproc.stages.base import RunContext
from preproc.stages.augment import (Brightness, CenterCrop, ChannelShift, Contrast, Flip,
                                    RandomAffine, RandomCrop)
from preproc.stages.builtin import Gamma, Rescale

os.environ.setdefault("KERAS_BACKEND", "torch")

PARAMS = [
    {"theta": 17.0, "tx": 3.5, "ty": -6.25, "shear": 8.0, "zx": 0.9, "zy": 1.15},
    {"theta": -90.0, "tx": 0, "ty": 0, "shear": 0, "zx": 1, "zy": 1},
    {"theta": 0, "tx": -4.0, "ty": 2.0, "shear": 0, "zx": 1, "zy": 1},
    {"theta": 33.3, "tx": 0, "ty": 0, "shear": -20.0, "zx": 1.3, "zy": 0.7},
    {"theta": 5.0, "tx": 10.0, "ty": 10.0, "shear": 0, "zx": 0.5, "zy": 0.5},
]


def _image(h=23, w=31, c=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, c)).astype(dtype)


def _keras_generator(**kw):
    image = pytest.importorskip("keras.src.legacy.preprocessing.image")
    return image.ImageDataGenerator(**kw)


def _stage(cls, params):
    return cls(params)


def _ctx(seed):
    return RunContext(rng=np.random.default_rng(seed))


@pytest.mark.parametrize("fill_mode", A.FILL_MODES)
@pytest.mark.parametrize("k", range(len(PARAMS)))
def test_affine_equals_keras_apply_transform(fill_mode, k):
    gen = _keras_generator(fill_mode=fill_mode, cval=40.0)
    x = _image(seed=k).astype(np.float32)  # 8-bit values, as Keras' flow holds them
    want = gen.apply_transform(x, PARAMS[k])
    stage = _stage(RandomAffine, {"fill_mode": fill_mode, "cval": 40.0})
    got = stage.transform(x, PARAMS[k])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("order", [0, 3])
def test_other_spline_orders_equal_keras(order):
    gen = _keras_generator(fill_mode="reflect", interpolation_order=order)
    x = _image(seed=5).astype(np.float32)
    want = gen.apply_transform(x, PARAMS[0])
    got = _stage(RandomAffine, {"fill_mode": "reflect", "order": order, "clip": False}).transform(x, PARAMS[0])
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_uint8_affine_rounds_like_keras_on_uint8():
    gen = _keras_generator(fill_mode="nearest")
    x = _image(seed=3)
    want = gen.apply_transform(x, PARAMS[0])
    got = _stage(RandomAffine, {}).transform(x, PARAMS[0])
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert (got == want).mean() > 0.999


def test_drawn_values_are_keras_transform_parameters():
    """The stage's own draws, applied through Keras, give the stage's output."""
    gen = _keras_generator(fill_mode="nearest")
    stage = _stage(RandomAffine, {"rotation": 30, "width_shift": 0.2, "height_shift": 5,
                                  "shear": 10, "zoom": 0.2})
    x = _image(seed=9).astype(np.float32)
    drawn = stage.draw(np.random.default_rng(4), x.shape)
    assert -30 <= drawn["theta"] <= 30 and abs(drawn["ty"]) <= 0.2 * x.shape[1]
    assert abs(drawn["tx"]) <= 5 and 0.8 <= drawn["zx"] <= 1.2
    np.testing.assert_allclose(stage.apply(x, _ctx(4)),
                               gen.apply_transform(x, drawn), atol=1e-4, rtol=0)


def test_flip_and_channel_shift_equal_keras():
    gen = _keras_generator()
    x = _image(seed=2).astype(np.float32)
    for h, v in [(True, False), (False, True), (True, True)]:
        want = gen.apply_transform(x, {"flip_horizontal": h, "flip_vertical": v})
        np.testing.assert_array_equal(A.flip(x, h, v), want)
    want = gen.apply_transform(x, {"channel_shift_intensity": 37.5})
    np.testing.assert_allclose(A.channel_shift(x, 37.5), want, atol=1e-4)


def test_scalar_and_pair_forms():
    stage = _stage(RandomAffine, {"rotation": [12, 12], "zoom": [1.1, 1.1], "width_shift": 3})
    r = stage.ranges((40, 50, 1))
    assert r["rotation"] == (12, 12) and r["zoom"] == (1.1, 1.1) and r["width_shift"] == (-3, 3)
    drawn = stage.draw(np.random.default_rng(0), (40, 50, 1))
    assert drawn["theta"] == 12 and drawn["zx"] == drawn["zy"] == 1.1
    assert _stage(RandomAffine, {"height_shift": 0.25}).ranges((40, 50, 1))["height_shift"] == (-10, 10)
    with pytest.raises(ValueError):
        RandomAffine({"zoom": 1.0})  # a zoom of 0 is no image


def test_uint16_keeps_its_levels_through_geometry_and_flip():
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64, 1) * 16)  # 4096 levels
    stage = _stage(RandomAffine, {"rotation": [10, 10]})
    out = A.flip(stage.transform(ramp, stage.draw(np.random.default_rng(0), ramp.shape)), True, True)
    assert out.dtype == np.uint16
    assert len(np.unique(out)) > 2000  # never 256 levels
    bright = Brightness({"range": [1.0, 1.0]}).apply(ramp, _ctx(0))
    assert len(np.unique(bright)) == 4096 and bright.dtype == np.float32


def test_photometric_integers_saturate_never_wrap():
    x = np.array([[[250], [10]]], dtype=np.uint8)
    out = Brightness({"range": [1.5, 1.5], "integers": "saturate"}).apply(x, _ctx(0))
    assert out.dtype == np.uint8 and out.ravel().tolist() == [255, 15]
    out = Contrast({"range": [3, 3], "integers": "saturate"}).apply(x, _ctx(0))
    assert out.ravel().tolist() == [255, 0]


def test_draws_depend_on_seed_epoch_file_and_stage_only():
    state = np.random.get_state()
    a = D.stage_rng(7, 1, 12, 3).random(4)
    np.random.seed(123)  # the global RNG must not matter
    assert np.array_equal(a, D.stage_rng(7, 1, 12, 3).random(4))
    for other in [(8, 1, 12, 3), (7, 2, 12, 3), (7, 1, 13, 3), (7, 1, 12, 4)]:
        assert not np.array_equal(a, D.stage_rng(*other).random(4))
    np.random.set_state(state)
    before = np.random.get_state()[1].copy()
    Flip({}).apply(_image(), RunContext(rng=D.stage_rng(1, 0, 0, 0)))
    assert np.array_equal(before, np.random.get_state()[1])


def test_random_stage_without_generator_says_so():
    with pytest.raises(ValueError, match="RunContext.rng"):
        Flip({}).apply(_image(), RunContext())


def test_crops():
    x = _image(10, 12)
    out = RandomCrop({"size": [4, 5]}).apply(x, _ctx(1))
    assert out.shape == (4, 5, 3)
    np.testing.assert_array_equal(CenterCrop({"size": [4, 6]}).apply_alone(x), x[3:7, 3:9])
    with pytest.raises(ValueError, match="cannot crop"):
        RandomCrop({"size": [20, 5]}).apply(x, _ctx(1))
    twin = RandomCrop({"size": [4, 5]}, index=2).evaluation_stage()
    assert isinstance(twin, CenterCrop) and twin.index == 2


# --- contracts in the static check -------------------------------------------------------------
U8 = ValueSpec.for_dtype("uint8", channels=3)


def _pipeline(stages):
    built = [cls(params, index=i, line=i + 10) for i, (cls, params) in enumerate(stages)]
    return Pipeline(built, U8, U8)


def test_brightness_widens_and_a_later_gamma_blames_it():
    p = _pipeline([(Rescale, {"factor": "1/255"}), (Brightness, {"range": [0.5, 1.5]}),
                   (Gamma, {"gamma": 2.2})])
    assert p.specs[1].interval.lo == 0 and p.specs[1].interval.hi == pytest.approx(1.5)
    found = check_pipeline(p)
    assert [f.code for f in found] == ["range-overflow"]
    assert found[0].stage == 2 and "`brightness`" in found[0].message


def test_fill_out_of_range_after_rescale():
    p = _pipeline([(Rescale, {"factor": "1/255"}),
                   (RandomAffine, {"rotation": 10, "fill_mode": "constant", "cval": 255})])
    found = check_pipeline(p)
    assert [f.code for f in found] == ["fill-out-of-range"] and found[0].stage == 1
    assert p.specs[1].interval.hi == 255  # the inferred interval holds the fill: sound
    ok = _pipeline([(RandomAffine, {"fill_mode": "constant", "cval": 255}), (Rescale, {"factor": "1/255"})])
    assert check_pipeline(ok) == []  # a raw-unit fill before the rescale is fine


def test_channel_shift_units_and_widening():
    after = _pipeline([(Rescale, {"factor": "1/255"}), (ChannelShift, {"intensity": 30})])
    assert [f.code for f in check_pipeline(after)] == ["augment-units"]
    before = _pipeline([(ChannelShift, {"intensity": 30}), (Rescale, {"factor": "1/255"})])
    assert check_pipeline(before) == []
    wide = _pipeline([(ChannelShift, {"intensity": 30, "clip": False})])
    assert wide.specs[0].interval.lo == -30 and wide.specs[0].interval.hi == 285
    assert wide.specs[0].dtype == "float32"


def test_brightness_clip_in_unit_range_on_raw_data_is_flagged():
    p = _pipeline([(Brightness, {"range": [0.8, 1.2], "clip": [0, 1]})])
    assert [f.code for f in check_pipeline(p)] == ["augment-units"]
    keras_like = _pipeline([(Brightness, {"range": [0.8, 1.2], "clip": [0, 255]}),
                            (Rescale, {"factor": "1/255"})])
    assert check_pipeline(keras_like) == []


def test_spline_overshoot_is_declared_or_clipped():
    spec = ValueSpec.for_dtype("float32", interval=(0, 1), channels=1)
    clipped = RandomAffine({"rotation": 20, "order": 3}).infer(spec)
    assert (clipped.interval.lo, clipped.interval.hi) == (0, 1)
    loose = RandomAffine({"rotation": 20, "order": 3, "clip": False}).infer(spec)
    assert loose.interval.lo < 0 and loose.interval.hi > 1
    x = np.zeros((16, 16, 1), np.float32)
    x[4:12, 4:12] = 1
    out = RandomAffine({"rotation": [20, 20], "order": 3, "clip": False}).apply(x, _ctx(0))
    assert out.min() < 0 or out.max() > 1  # the overshoot is real
    assert loose.interval.lo <= out.min() and out.max() <= loose.interval.hi


def test_contract_helper_sees_all_draws():
    """A stage that only misbehaves for an extreme draw is caught by check_stage."""
    from preproc.testing import check_stage

    class Sloppy(Brightness):
        name = "sloppy_brightness"
        examples = [{"params": {"range": [0.5, 1.0001]},
                     "input": {"dtype": "float32", "range": [0, 1], "channels": 1}}]

        def infer(self, spec):  # pretends the top factor is 1
            return self.finish(spec, spec.interval)

    with pytest.raises(AssertionError, match="escapes"):
        check_stage(Sloppy, max_examples=30)
