"""The order-1 affine kernel: SciPy's ``affine_transform`` on every channel, any dtype and shape."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from preproc.stages import augment_functional as A

ndimage = pytest.importorskip("scipy.ndimage")


def _scipy(x, m, mode, cval):
    planes = [ndimage.affine_transform(x[..., c].astype(np.float64), m[:2, :2], m[:2, 2], order=1,
                                       mode=mode, cval=cval) for c in range(x.shape[2])]
    return np.stack(planes, axis=-1)


def _case(seed):
    rng = np.random.default_rng(seed)
    h, w, c = (int(v) for v in rng.integers(1, 30, 3))
    params = (rng.uniform(-90, 90), rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(-25, 25),
              rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5))
    return rng, (h, w, c), A.keras_matrix(*params, h, w)


@pytest.mark.parametrize("mode", A.FILL_MODES)
@pytest.mark.parametrize("seed", range(12))
def test_float64_equals_scipy(mode, seed):
    rng, shape, m = _case(seed)
    x = rng.normal(size=shape) * 100
    want = _scipy(x, m, mode, 7.5)
    np.testing.assert_allclose(A.affine(x, m, fill_mode=mode, cval=7.5), want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("mode", A.FILL_MODES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_integers_round_half_up_and_saturate_like_scipy(mode, dtype):
    for seed in range(8):
        rng, shape, m = _case(100 + seed)
        info = np.iinfo(dtype)
        x = rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
        cval = float(info.max) + 50  # saturates to the dtype's top
        exact = np.clip(np.floor(_scipy(x, m, mode, cval) + 0.5), info.min, info.max)
        got = A.affine(x, m, fill_mode=mode, cval=cval)
        assert got.dtype == dtype
        diff = np.abs(got.astype(np.float64) - exact)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_workspace_reuse_across_shapes_and_threads_changes_nothing():
    cases = [_case(200 + k) for k in range(6)]
    images = [rng.integers(0, 256, shape).astype(np.uint8) for rng, shape, _ in cases]
    fresh = [A.affine(x, m) for x, (_, _, m) in zip(images, cases)]
    again = [A.affine(x, m) for x, (_, _, m) in zip(images * 3, cases * 3)]
    for k, out in enumerate(again):
        np.testing.assert_array_equal(out, fresh[k % len(cases)])
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda k: A.affine(images[k % 6], cases[k % 6][2]), range(48)))
    for k, out in enumerate(threaded):
        np.testing.assert_array_equal(out, fresh[k % 6])


def test_output_never_aliases_the_workspace():
    rng, shape, m = _case(300)
    x = rng.integers(0, 256, shape).astype(np.uint8)
    first = A.affine(x, m)
    kept = first.copy()
    A.affine(x[::-1].copy(), m)
    np.testing.assert_array_equal(first, kept)
