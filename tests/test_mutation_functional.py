"""The array functions behind the built-in stages, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from preproc.stages import functional as F


def _col(values, dtype) -> np.ndarray:
    """An (1, N, 1) image holding ``values``."""
    return np.array(values, dtype=dtype).reshape(1, -1, 1)


def _same(out, expected, dtype):
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out.ravel(), np.array(expected, dtype=dtype))


def test_affine_multiplies_in_float32_and_adds_the_offset_only_when_given():
    x = _col([0, 1, 255], np.uint8)
    _same(F.affine_f32(x, 2.0), [0.0, 2.0, 510.0], np.float32)
    _same(F.affine_f32(x, 2.0, 3.0), [3.0, 5.0, 513.0], np.float32)
    _same(F.affine_f32(x, -1.0, 0.5), [0.5, -0.5, -254.5], np.float32)
    # multiplying by the float32 of 1/255, not dividing by 255
    third = np.float32(1 / 3)
    assert F.affine_f32(_col([3], np.uint8), 1 / 3).ravel()[0] == np.float32(3) * third
    _same(x, [0, 1, 255], np.uint8)


def test_linear_map_with_and_without_clipping():
    x = _col([-5, 0, 5, 10, 20], np.float64)
    _same(F.linear_map(x, (0, 10), (0, 1)), [0, 0, 0.5, 1, 1], np.float32)
    _same(F.linear_map(x, (0, 10), (0, 1), clip=False), [-0.5, 0, 0.5, 1, 2], np.float32)
    _same(F.linear_map(x, (0, 10), (-1, 1)), [-1, -1, 0, 1, 1], np.float32)
    _same(F.linear_map(x, (10, 20), (2, 4), clip=False), [-1, 0, 1, 2, 4], np.float32)
    _same(x, [-5, 0, 5, 10, 20], np.float64)


def test_linear_map_onto_a_reversed_range_stays_inside_it():
    x = _col([-5, 0, 5, 10, 20], np.int16)
    _same(F.linear_map(x, (0, 10), (1, 0)), [1, 1, 0.5, 0, 0], np.float32)
    _same(F.linear_map(x, (0, 10), (4, 2)), [4, 4, 3, 2, 2], np.float32)


def test_linear_map_clips_the_ulp_float_rounding_adds():
    # 1 - 0.0 over an in range whose float32 step does not divide evenly
    x = _col(np.linspace(0.1, 0.7, 50), np.float64)
    out = F.linear_map(x, (0.1, 0.7), (0.1, 0.3))
    assert out.min() >= np.float32(0.1) and out.max() <= np.float32(0.3)


def test_normalize_per_channel():
    x = np.array([[[10, 20], [30, 40]]], np.uint8)
    out = F.normalize(x, [10, 20], [2, 4])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[[0, 0], [10, 5]]], np.float32))
    np.testing.assert_array_equal(F.normalize(x, 10, 10), np.array([[[0, 1], [2, 3]]],
                                                                    np.float32))


def test_samplewise_centres_and_scales_with_epsilon():
    _same(F.samplewise(_col([0, 2], np.uint8)),
          np.array([-1, 1], np.float32) / np.float32(1 + 1e-6), np.float32)
    _same(F.samplewise(_col([0, 2], np.uint8), epsilon=1.0), [-0.5, 0.5], np.float32)
    _same(F.samplewise(_col([7, 7, 7], np.uint16)), [0, 0, 0], np.float32)
    _same(F.samplewise(_col([1, 2, 3, 6], np.float32), epsilon=0.0),
          np.array([-2, -1, 0, 3], np.float32) / np.float32(np.sqrt(3.5)), np.float32)


def test_clip_on_integers_rounds_the_bounds_inwards_and_keeps_the_dtype():
    x = _col([0, 1, 100, 101, 255], np.uint8)
    _same(F.clip(x, 0.5, 100.7), [1, 1, 100, 100, 100], np.uint8)
    _same(F.clip(x, -5, 300), [0, 1, 100, 101, 255], np.uint8)
    _same(F.clip(x, 400, 500), [255] * 5, np.uint8)
    _same(F.clip(x, -9, -2), [0] * 5, np.uint8)
    _same(F.clip(_col([-3, 3], np.int8), -2.5, 2.5), [-2, 2], np.int8)
    _same(F.clip(_col([-1.5, 0.25, 1.5], np.float32), -0.5, 0.5), [-0.5, 0.25, 0.5], np.float32)


def test_gamma_turns_negatives_into_zero():
    _same(F.gamma(_col([-1, 0, 0.25, 1], np.float64), 0.5), [0, 0, 0.5, 1], np.float32)
    _same(F.gamma(_col([0.5], np.float32), 2.0), [0.25], np.float32)


def test_invert_floats_and_saturating_integers():
    _same(F.invert(_col([0, 0.25, 1], np.float32), 1.0), [1, 0.75, 0], np.float32)
    x = _col([0, 10, 255], np.uint8)
    _same(F.invert(x, 255), [255, 245, 0], np.uint8)
    _same(F.invert(x, 100), [100, 90, 0], np.uint8)
    _same(F.invert(x, 300), [255, 255, 45], np.uint8)
    _same(F.invert(x, 1e30), [255, 255, 255], np.uint8)
    _same(F.invert(x, -1e30), [0, 0, 0], np.uint8)
    _same(F.invert(x, 99.6), [100, 90, 0], np.uint8)
    _same(F.invert(_col([-5, 5], np.int16), 0), [5, -5], np.int16)
    _same(F.invert(_col([-32768], np.int16), 0), [32767], np.int16)
    _same(F.invert(_col([0, 5], np.int64), 10), [10, 5], np.int64)
    _same(F.invert(_col([0, 2**62], np.uint64), 2**62), [2**62, 0], np.uint64)
    # 64-bit integers subtract in float64: the largest float64 below 2**63 is 2**63 - 1024
    _same(F.invert(_col([-(2**62)], np.int64), 2**62), [2**63 - 1024], np.int64)


def test_saturate_clips_rounds_and_never_wraps():
    _same(F.saturate(np.array([0, 2, -1]), "bool"), [False, True, True], np.bool_)
    _same(F.saturate(np.array([1, 300]), np.float32), [1, 300], np.float32)
    _same(F.saturate(np.array([-0.5, 0.5, 1.5, 2.5, 254.6, 300.0]), np.uint8),
          [0, 0, 2, 2, 255, 255], np.uint8)
    _same(F.saturate(np.array([True, False]), np.int16), [1, 0], np.int16)
    _same(F.saturate(np.array([-70000, -5, 70000], np.int32), np.int16),
          [-32768, -5, 32767], np.int16)
    _same(F.saturate(np.array([-5, 300], np.int16), np.uint8), [0, 255], np.uint8)
    _same(F.saturate(np.array([0, 255], np.uint8), np.int16), [0, 255], np.int16)
    _same(F.saturate(np.array([2**40], np.uint64), np.int64), [2**40], np.int64)


def test_saturate_floats_to_limits_floats_cannot_hold():
    # float32 cannot hold 2**31 - 1: the largest float32 below it is 2**31 - 128
    _same(F.saturate(np.array([1e10, -1e10], np.float32), np.int32),
          [2**31 - 128, -(2**31)], np.int32)
    _same(F.saturate(np.array([1e30, -1.0], np.float64), np.uint64), [2**64 - 2048, 0],
          np.uint64)
    # float16 cannot hold 2**63 at all: its own largest finite values are the bounds
    _same(F.saturate(np.array([-3, 5, 65504, -65504], np.float16), np.int64),
          [-3, 5, 65504, -65504], np.int64)


def test_cast_scales_full_scale_to_full_scale():
    _same(F.cast(_col([0, 257, 65535], np.uint16), "uint8", True), [0, 1, 255], np.uint8)
    _same(F.cast(_col([0, 51, 255], np.uint8), "float32", True),
          [0, np.float32(51) * np.float32(1 / 255), 1], np.float32)
    out = F.cast(_col([0, 51, 255], np.uint8), "float64", True)
    assert out.dtype == np.float64
    assert out.ravel()[1] == 51 / 255
    _same(F.cast(_col([0, 0.5, 1], np.float32), "uint16", True), [0, 32768, 65535], np.uint16)
    _same(F.cast(_col([3, 7], np.uint8), "uint8", True), [3, 7], np.uint8)
    _same(F.cast(_col([-5.5, 300.4], np.float32), "uint8", False), [0, 255], np.uint8)
    _same(F.cast(_col([65535], np.uint16), "int16", False), [32767], np.int16)


def test_clahe_per_channel_against_scikit_image():
    from skimage.exposure import equalize_adapthist

    rng = np.random.default_rng(3)
    gray = rng.integers(0, 4096, (32, 32, 2)).astype(np.uint16)
    gray[..., 1] = 9  # a constant channel stays zero instead of dividing by zero
    out = F.clahe(gray, 0.02, None, 64)
    assert out.dtype == np.float32 and out.shape == gray.shape
    expected = equalize_adapthist(gray[..., 0], clip_limit=0.02, nbins=64).astype(np.float32)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 1], np.zeros((32, 32), np.float32))
    colour = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    expected = equalize_adapthist(colour, kernel_size=8, clip_limit=0.01).astype(np.float32)
    np.testing.assert_array_equal(F.clahe(colour, 0.01, 8), expected)
    single = gray[..., :1]
    expected = equalize_adapthist(single[..., 0], kernel_size=(4, 8), clip_limit=0.01)
    np.testing.assert_array_equal(F.clahe(single, 0.01, (4, 8))[..., 0],
                                  expected.astype(np.float32))


# --- cases that separate near-identical arithmetic -----------------------------------------

def test_affine_computes_in_float32_for_every_input_dtype():
    for dtype in (np.float64, np.int32):
        out = F.affine_f32(_col([3], dtype), 1 / 3)
        assert out.dtype == np.float32
        assert out.ravel()[0] == np.float32(3) * np.float32(1 / 3)


def test_linear_map_clips_the_ulp_rounding_steps_past_the_top():
    # found by search: unclipped, x = in_hi maps one float32 step above out_hi
    lo, hi = 0.23643249400513433, 9.009273926518706
    olo, ohi = -7.116807745607325, 8.972988942744877
    out = F.linear_map(_col([lo - 1, hi + 1], np.float64), (lo, hi), (olo, ohi))
    np.testing.assert_array_equal(out.ravel(), [np.float32(olo), np.float32(ohi)])


def test_normalize_rounds_its_statistics_to_float32_first():
    # 1 - float32(2**-25) is a tie that rounds to 1; 1 - (2**-25 + 2**-50) would not
    x = _col([1.0], np.float32)
    assert F.normalize(x, 2**-25 + 2**-50, 1.0).ravel()[0] == np.float32(1.0)
    x = _col([0.5172584056854248], np.float32)
    s = 0.7014331558631792
    assert F.normalize(x, 0.0, s).ravel()[0] == np.float32(0.5172584056854248) / np.float32(s)


def test_samplewise_keeps_its_input_and_measures_in_float64():
    x = _col([16777216, 1, 1, 1], np.float32)
    out = F.samplewise(x, epsilon=0.0)
    _same(x, [16777216, 1, 1, 1], np.float32)
    values = np.array([16777216, 1, 1, 1], np.float64)
    expected = (np.array([16777216, 1, 1, 1], np.float32) - np.float32(values.mean()))
    expected /= np.float32(values.std())
    _same(out, expected, np.float32)


def test_normalize_gamma_and_linear_map_keep_float32_input():
    x = _col([0.25, 0.5], np.float32)
    F.normalize(x, 0.5, 2.0)
    F.gamma(x, 2.0)
    F.linear_map(x, (0, 1), (0, 2))
    _same(x, [0.25, 0.5], np.float32)


def test_invert_of_signed_bytes_saturates_from_the_top():
    _same(F.invert(_col([127, -128], np.int8), 1000), [127, 127], np.int8)
    _same(F.invert(_col([127, 0], np.int8), 300), [127, 127], np.int8)


def test_float16_limits_clip_infinities_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.saturate(np.array([np.inf, -np.inf, 70.4], np.float16), np.int64)
    _same(out, [65504, -65504, 70], np.int64)


def test_cast_keeps_a_float64_input_unchanged():
    x = _col([0.5, 1.0], np.float64)
    _same(F.cast(x, "uint8", True), [128, 255], np.uint8)
    _same(x, [0.5, 1.0], np.float64)


def test_clahe_passes_its_clip_limit():
    from skimage.exposure import equalize_adapthist

    rng = np.random.default_rng(5)
    plane = (np.add.outer(np.arange(32), np.arange(32)) * 4 + rng.integers(0, 9, (32, 32)))
    plane = plane.astype(np.uint16)[:, :, None]
    strong = F.clahe(plane, 0.9)
    expected = equalize_adapthist(plane[..., 0], clip_limit=0.9).astype(np.float32)
    np.testing.assert_array_equal(strong[..., 0], expected)
    assert not np.array_equal(strong, F.clahe(plane, 0.01))


def test_scaling_to_float16_computes_in_float32_like_float32_targets():
    x = _col([65455, 65535], np.uint16)
    expected = (np.array([65455, 65535], np.float32) * np.float32(1 / 65535)).astype(np.float16)
    _same(F.cast(x, "float16", True), expected, np.float16)
    assert expected[0] == np.float16(0.999)  # float64 arithmetic would round to 0.9985
