"""``batches.decode: {jpeg_draft: true}``: DCT-domain downscaling plus a reducing resize.

Faster and deterministic, close to the exact decode-and-resize, never claimed identical to it.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import flow_config

from preproc.batches.flow import flow


@pytest.fixture
def photos(tmp_path):
    from PIL import Image

    yy, xx = np.mgrid[0:420, 0:640].astype(np.float32)
    for k, name in enumerate(("a", "b")):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(3):
            planes = [127 + 100 * np.sin(xx / (31 + 7 * c + i) + yy / (43 + k)) for c in range(3)]
            rgb = np.stack(planes, axis=2).astype(np.uint8)
            Image.fromarray(rgb).save(tmp_path / "d" / name / f"{i}.jpg", quality=90)
    return tmp_path / "d"


def _batches(cfg, workers):
    with flow(cfg, workers=workers) as it:
        return np.concatenate([x for x, _ in it])


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_draft_is_deterministic_and_close_to_the_exact_path(photos, tmp_path, interpolation):
    common = {"target_size": [100, 100], "batch_size": 4, "interpolation": interpolation,
              "shuffle": False}
    exact = flow_config(tmp_path, photos, name="exact.yaml", **common)
    draft = flow_config(tmp_path, photos, name="draft.yaml", decode={"jpeg_draft": True}, **common)
    x_exact, x_draft = _batches(exact, 0), _batches(draft, 0)
    assert x_draft.shape == x_exact.shape and x_draft.dtype == x_exact.dtype
    assert not np.array_equal(x_draft, x_exact)  # not Keras-identical, as documented
    mse = float(np.mean((x_draft.astype(np.float64) - x_exact) ** 2))
    assert 10 * np.log10(1.0 / mse) > 30  # values in [0, 1]: a close picture (dB)
    np.testing.assert_array_equal(_batches(draft, 0), x_draft)  # same pixels every run
    np.testing.assert_array_equal(_batches(draft, 2), x_draft)  # and for any worker count


def test_draft_with_keep_aspect_ratio_crops_the_same_region(photos, tmp_path):
    common = {"target_size": [64, 64], "batch_size": 6, "interpolation": "bilinear",
              "shuffle": False, "keep_aspect_ratio": True}
    exact = flow_config(tmp_path, photos, name="exact.yaml", **common)
    draft = flow_config(tmp_path, photos, name="draft.yaml", decode={"jpeg_draft": True}, **common)
    x_exact, x_draft = _batches(exact, 0), _batches(draft, 0)
    mse = float(np.mean((x_draft.astype(np.float64) - x_exact) ** 2))
    assert 10 * np.log10(1.0 / mse) > 30
