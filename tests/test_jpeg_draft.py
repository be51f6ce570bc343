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


def _psnr(a, b, peak=255.0):
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture
def odd_photos(tmp_path):
    """Sizes a draft scale does not divide: the drafted image is rounded up by part of a pixel."""
    from PIL import Image

    paths = []
    for k, (w, h) in enumerate([(401, 263), (263, 401), (515, 517)]):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        planes = [127 + 100 * np.sin(xx / (9 + 5 * c) + yy / (13 + k)) for c in range(3)]
        paths.append(str(tmp_path / f"{k}.jpg"))
        Image.fromarray(np.stack(planes, axis=2).astype(np.uint8)).save(paths[-1], quality=95)
    return paths


@pytest.mark.parametrize("keep_aspect_ratio", [False, True])
def test_draft_resizes_the_region_of_the_source_pixels(odd_photos, keep_aspect_ratio):
    from preproc.batches.workers import ImageJob

    def job(draft):
        return ImageJob(odd_photos, "rgb", (64, 64), "bilinear", keep_aspect_ratio, [],
                        run_stages=False, jpeg_draft=draft)

    exact, draft = job(False), job(True)
    for i in range(len(odd_photos)):
        # the whole rounded-up draft (or a crop taken in its pixels) shifts the picture by up to
        # half a drafted pixel: 21-27 dB on these images; the source's region: above 40 dB
        assert _psnr(draft.load(i), exact.load(i)) > 38


def test_draft_scale_and_box_follow_pillows_rounding(tmp_path):
    """The scale comes from Pillow's own draft, as ``read`` reports it; the box is the source's
    region in the drafted pixels."""
    from PIL import Image

    from preproc.io import read
    from preproc.io.imaging import crop_box, draft_box

    path = tmp_path / "odd.jpg"
    Image.new("RGB", (1001, 679), (90, 120, 150)).save(path)
    for wanted, scale, size in (((500, 339), 2, (501, 340)),  # ceil(1001 / 2), ceil(679 / 2)
                                ((64, 64), 8, (126, 85))):
        pixels, info = read(path, "pillow-or-array", draft=wanted)
        assert info.extra["draft_scale"] == scale and pixels.size == size
        assert (info.width, info.height) == (1001, 679)
    pixels, info = read(path, "pillow-or-array", draft=(1001, 679))
    assert "draft_scale" not in info.extra and pixels.size == (1001, 679)  # not drafted
    assert draft_box(2, (1001, 679)) == (0, 0, 500.5, 339.5)
    left, top, right, bottom = crop_box(1001, 679, (64, 64))
    assert draft_box(4, (1001, 679), (64, 64)) == (left / 4, top / 4, right / 4, bottom / 4)


def test_drafted_pixels_are_the_same_through_the_job_and_through_pillow(odd_photos):
    """The job adds nothing to Pillow's own draft, reducing resize and source box."""
    from PIL import Image

    from preproc.batches.workers import DRAFT_REDUCING_GAP, ImageJob

    job = ImageJob(odd_photos, "rgb", (64, 64), "bilinear", False, [], run_stages=False,
                   jpeg_draft=True)
    for i, path in enumerate(odd_photos):
        with Image.open(path) as image:
            _, box = image.draft("RGB", (64, 64))
            image.load()
            want = image.resize((64, 64), Image.Resampling.BILINEAR, box=box,
                                reducing_gap=DRAFT_REDUCING_GAP)
        np.testing.assert_array_equal(job.load(i), np.asarray(want))
