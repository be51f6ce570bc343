"""preproc.io.imaging: Pillow's semantics on uint8, no lost bits or widened range elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from preproc.io import imaging

RNG = np.random.default_rng(7)


def test_luma_equals_pillow_on_uint8_and_does_not_clip_uint16():
    rgb = RNG.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imaging.luma(rgb)[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
    wide = np.full((2, 2, 3), 65535, np.uint16)
    assert imaging.luma(wide).dtype == np.uint16 and np.all(imaging.luma(wide) == 65535)


@pytest.mark.parametrize("interp", ["box", "bilinear", "hamming", "bicubic", "lanczos"])
def test_float64_resampler_matches_pillow_float(interp):
    for _ in range(4):
        h, w, th, tw = (int(v) for v in RNG.integers(6, 80, 4))
        x = RNG.random((h, w, 1)).astype(np.float32)
        box = imaging.crop_box(w, h, (th, tw))
        ref = imaging._resize_pillow_f(x, (th, tw), interp, box)
        np.testing.assert_allclose(imaging._resize_numpy(x, (th, tw), interp, box), ref, atol=1e-5)


def test_nearest_index_matches_pillow_with_and_without_crop():
    for keep in (False, True):
        x = RNG.random((37, 53, 1)).astype(np.float32)
        box = imaging.crop_box(53, 37, (14, 11)) if keep else None
        ref = np.asarray(Image.fromarray(x[..., 0]).resize((11, 14), Image.Resampling.NEAREST, box=box))
        got = imaging.resize(x.astype(np.float64), (14, 11), "nearest", keep_aspect_ratio=keep)
        np.testing.assert_array_equal(got[..., 0], ref)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("interp", ["bicubic", "lanczos", "bilinear"])
def test_resize_keeps_dtype_and_never_widens(dtype, interp):
    x = np.zeros((30, 30, 2), dtype)
    x[::3] = 3000 if np.dtype(dtype).kind != "f" else 0.75
    x[1::3] = 17 if np.dtype(dtype).kind != "f" else -0.5
    out = imaging.resize(x, (11, 13), interp)
    assert out.dtype == dtype and out.shape == (11, 13, 2)
    assert out.min() >= x.min() and out.max() <= x.max()


def test_uint8_resize_is_pillow():
    x = RNG.integers(0, 256, (33, 41, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(x).resize((20, 10), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(imaging.resize(x, (10, 20), "bicubic"), ref)


def test_colour_conversions_replicate_and_add_declared_alpha():
    g = np.arange(12, dtype=np.uint16).reshape(2, 2, 3)[..., :1] * 1000
    rgb = imaging.convert_color(g, "rgb")
    assert rgb.dtype == np.uint16 and np.all(rgb == g)
    rgba = imaging.convert_color(g, "rgba", alpha=imaging.alpha_value(np.uint16, 12))
    assert np.all(rgba[..., 3] == 4095) and np.all(rgba[..., :3] == g)
    la = np.concatenate([g, np.full_like(g, 7)], axis=2)
    assert np.all(imaging.convert_color(la, "rgba")[..., 3] == 7)
    assert np.array_equal(imaging.convert_color(la, "grayscale"), g)
    assert imaging.alpha_value(np.float32) == 1.0 and imaging.alpha_value(np.uint8) == 255
    with pytest.raises(ValueError, match="5 channels"):
        imaging.convert_color(np.zeros((2, 2, 5), np.uint8), "rgb")
