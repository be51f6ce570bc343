"""Per-file statistics and streaming aggregation agree with plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from preproc.auditing.aggregate import FloatHistogram, GroupStats
from preproc.auditing.measure import content_hash, measure
from preproc.auditing.pixelstats import effective_bits
from preproc.dataset.records import FileRecord

INT_DTYPES = st.sampled_from([np.uint8, np.int8, np.uint16, np.int16])


def _reference(arr: np.ndarray) -> dict:
    flat = arr.reshape(-1, arr.shape[-1] if arr.ndim == 3 else 1).astype(np.float64)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    return {"min": lo, "max": hi, "mean": flat.mean(axis=0), "std": flat.std(axis=0),
            "p_low": np.percentile(flat, 0.5, axis=0), "p_high": np.percentile(flat, 99.5, axis=0),
            "frac_min": (flat == lo).mean(axis=0), "frac_max": (flat == hi).mean(axis=0)}


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(INT_DTYPES, hnp.array_shapes(min_dims=2, max_dims=3, max_side=12)
                  .filter(lambda s: len(s) == 2 or s[2] <= 4)))
def test_histogram_statistics_equal_numpy(arr):
    got = measure(arr)
    for key, expected in _reference(arr).items():
        np.testing.assert_allclose(got[key], expected, rtol=1e-9, atol=1e-9, err_msg=key)
    lo, hi = min(got["min"]), max(got["max"])
    assert got["effective_bits"] == effective_bits(lo, hi, signed=arr.dtype.kind == "i")


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float32, (7, 5, 2), elements=st.floats(-1e6, 1e6, width=32)))
def test_float_statistics_equal_numpy(arr):
    got = measure(arr)
    for key, expected in _reference(arr).items():
        np.testing.assert_allclose(got[key], expected, rtol=1e-6, atol=1e-6, err_msg=key)
    assert got["nonfinite"] == 0 and "effective_bits" not in got


def test_nonfinite_floats_are_counted_and_skipped():
    arr = np.array([[1.0, np.nan], [np.inf, 3.0]], dtype=np.float32)
    got = measure(arr)
    assert got["nonfinite"] == 2 and got["min"] == [1.0] and got["max"] == [3.0]


@pytest.mark.parametrize(("lo", "hi", "bits"), [
    (0, 0, 1), (0, 1, 1), (0, 255, 8), (0, 256, 9), (0, 4095, 12), (0, 4096, 13),
    (-2048, 2047, 12), (-2049, 0, 13), (-1, 0, 2), (0, 65535, 16),
])
def test_effective_bits(lo, hi, bits):
    assert effective_bits(lo, hi) == bits


def test_content_hash_sees_pixels_dtype_and_shape_not_byte_order():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert content_hash(a) == content_hash(a.astype(">u2"))
    assert content_hash(a) != content_hash(a.reshape(4, 3))
    assert content_hash(a) != content_hash(a.astype(np.int16))
    b = a.copy()
    b[0, 0] = 1
    assert content_hash(a) != content_hash(b)


def _record(arr) -> tuple:
    stats = measure(arr)
    payload = stats.pop("hist")
    return FileRecord(path="x", cls=None, **stats), payload


@settings(max_examples=25, deadline=None)
@given(st.lists(hnp.arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(2))),
                min_size=1, max_size=5))
def test_group_merges_like_one_big_array(arrays):
    group = GroupStats("uint16", 2)
    for arr in arrays:
        group.add(*_record(arr))
    flat = np.concatenate([a.reshape(-1, 2) for a in arrays]).astype(np.float64)
    np.testing.assert_allclose(group.mean, flat.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(group.std, flat.std(axis=0), rtol=1e-7, atol=1e-7)
    assert group.exact.sum() == flat.size
    for c in range(2):
        np.testing.assert_array_equal(
            group.exact[c], np.bincount(flat[:, c].astype(int), minlength=65536))


@settings(max_examples=25, deadline=None)
@given(st.lists(hnp.arrays(np.float64, (20, 1), elements=st.floats(allow_nan=False,
                                                                   allow_infinity=False)),
                min_size=2, max_size=5), st.randoms())
def test_float_histogram_is_independent_of_merge_order(parts, rnd):
    def merged(order):
        hist = FloatHistogram.of(parts[order[0]])
        for i in order[1:]:
            hist.merge(FloatHistogram.of(parts[i]))
        return hist

    order = list(range(len(parts)))
    first = merged(order)
    rnd.shuffle(order)
    second = merged(order)
    whole = FloatHistogram.of(np.concatenate(parts))
    for h in (second, whole):
        assert (h.exp, h.start) == (first.exp, first.start)
        np.testing.assert_array_equal(h.counts, first.counts)
    assert first.counts.sum() == sum(p.size for p in parts)


def test_compact_histogram_keeps_every_count():
    group = GroupStats("uint8", 3)
    arr = np.random.default_rng(0).integers(0, 256, (50, 40, 3)).astype(np.uint8)
    group.add(*_record(arr))
    hist = group.histogram(max_bins=64)
    assert len(hist["edges"]) == len(hist["counts"][0]) + 1 <= 65
    assert [sum(row) for row in hist["counts"]] == [2000, 2000, 2000]


@pytest.mark.parametrize("mode,channels", [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_pillow_image_measures_like_its_array(mode, channels):
    from PIL import Image

    arr = np.random.default_rng(channels).integers(0, 256, (13, 9, channels)).astype(np.uint8)
    image = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)
    from_image, from_array = measure(image), measure(arr)
    image_hist, array_hist = from_image.pop("hist"), from_array.pop("hist")
    assert from_image == from_array  # hash included: duplicates match across containers
    assert image_hist[:3] == array_hist[:3]
    np.testing.assert_array_equal(image_hist[3], array_hist[3])


def test_pillow_or_array_hands_over_8bit_images_and_arrays_otherwise(tmp_path):
    from builders import write_png
    from PIL import Image

    from preproc.io import decode, read

    rgb = np.random.default_rng(3).integers(0, 256, (10, 12, 3)).astype(np.uint8)
    gray16 = np.random.default_rng(4).integers(0, 4096, (10, 12)).astype(np.uint16)
    rows, cols = np.mgrid[0:10, 0:12]  # smooth content: JPEG keeps it close
    smooth = np.stack([rows * 20, cols * 18, 200 - rows * 10], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95, subsampling=0)
    written = {write_png(tmp_path / "a.png", rgb): rgb, tmp_path / "a.jpg": smooth,
               write_png(tmp_path / "g.png", gray16): gray16[..., None]}
    for path, known in written.items():
        pixels, info = read(path, "pillow-or-array")
        array, expected_info = decode(path)
        assert info == expected_info
        assert (info.height, info.width, info.channels) == known.shape
        if array.dtype == np.uint8:
            assert isinstance(pixels, Image.Image)
            pixels = np.asarray(pixels).reshape(array.shape)
        np.testing.assert_array_equal(pixels, array)
        if path.suffix == ".jpg":  # lossy: near the written pixels, in the same places
            assert np.abs(array.astype(int) - known).mean() < 3
        else:  # lossless: exactly the written pixels, whichever path read them
            np.testing.assert_array_equal(array, known)


@pytest.mark.parametrize("dtype,values,bits", [
    (np.uint32, [0, 2**21 - 1], 21), (np.int32, [-5, 2**20], 22), (np.uint64, [0, 2**40], 41),
])
def test_wide_integers_get_effective_bits(dtype, values, bits):
    got = measure(np.array([values], dtype=dtype))
    assert got["effective_bits"] == bits
