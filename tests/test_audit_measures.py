"""Image measures taken a chunk at a time equal the measures of each image alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from preproc.auditing import measure, quality
from preproc.auditing.quality import measures_of


def _works(rng):
    shapes = [(64, 64), (48, 64), (64, 64), (64, 64), (2, 64), (64, 48)]
    works = [rng.random(shape, dtype=np.float32) for shape in shapes]
    works[2][:] = 0.25  # flat: no hash, no sharpness
    works.append(np.clip(works[0] * 1.5 - 0.2, 0, 1))
    return works


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), key
        elif isinstance(x, float):
            assert y == pytest.approx(x, rel=1e-5, abs=1e-7), key
        else:
            assert x == y, key


def test_measures_of_a_chunk_equal_the_measures_of_each_image():
    works = _works(np.random.default_rng(5))
    together = measures_of(works)
    for work, got in zip(works, together):
        _same(measures_of([work])[0], got)
    assert together[2]["phash"] is None and math.isnan(together[2]["blur"])
    assert math.isnan(together[4]["blur"])  # two rows: no Laplacian
    assert together[0]["phash"] is not None and len(together[0]["tiny"]) == 2 * 10 * 64


def test_single_image_measures_are_the_chunk_measures(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for i, rows in enumerate((64, 64, 48, 64, 40)):  # three of one shape: measured as a stack
        Image.fromarray((rng.random((rows, 64)) * 4095).astype(np.uint16)).save(
            tmp_path / f"{i}.png")
    items = [(f"{i}.png", None) for i in range(5)]
    chunk = measure.process_chunk((str(tmp_path), items, False, None))
    for (rel, cls), rec in zip(items, chunk):
        alone = measure.process_file(str(tmp_path), rel, cls, False)
        for name in ("phash", "crops", "tiny", "entropy", "grayscale", "level_hi"):
            assert getattr(alone, name) == getattr(rec, name), name
        assert alone.blur == pytest.approx(rec.blur, rel=1e-5)


def test_a_failing_chunk_measure_is_retried_image_by_image(tmp_path, monkeypatch):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((16, 16), 40 * i + 10, np.uint8) + np.eye(16, dtype=np.uint8)
                        ).save(tmp_path / f"{i}.png")
    real = quality.measures_of

    def fussy(works):
        if len(works) > 1:
            raise FloatingPointError("a stack went wrong")
        if works[0].mean() > 0.3:  # the third image fails alone too
            raise FloatingPointError("this image went wrong")
        return real(works)

    monkeypatch.setattr(quality, "measures_of", fussy)
    recs = measure.process_chunk((str(tmp_path), [(f"{i}.png", None) for i in range(3)],
                                  False, None))
    assert [r.phash is not None for r in recs] == [True, True, False]
    assert [r.error or None for r in recs] == [None, None, "decoder-error"]
    assert "this image went wrong" in recs[2].detail


def test_thin_strips_and_overflowing_ranges_are_measured_not_failed(tmp_path):
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (2, 300), dtype=np.uint8)).save(tmp_path / "strip.png")
    tifffile.imwrite(tmp_path / "huge.tif", np.array([[-1e300, 1e300], [0.0, 5.0]]))
    strip, huge = measure.process_chunk(
        (str(tmp_path), [("strip.png", None), ("huge.tif", None)], False, None))
    assert strip.ok and 0.3 < strip.brightness < 0.7 and strip.entropy > 4  # not "blank"
    assert huge.ok and not huge.error and huge.entropy == 0.0


def test_audit_tasks_keep_file_order_and_shrink_towards_the_end():
    from preproc.auditing.engines import MIN_CHUNK, plan_chunks

    for n in (0, 1, 5, 37, 1000, 2003):
        items = [(f"{i}.png", None) for i in range(n)]
        tasks = plan_chunks("/data", items, False, 2)
        assert [item for task in tasks for item in task[1]] == items
        sizes = [len(task[1]) for task in tasks]
        assert all(0 < size <= 32 for size in sizes)
        assert sizes == sorted(sizes, reverse=True) or len(sizes) < 2 or sizes[-1] < MIN_CHUNK
        if n >= 1000:
            assert sizes[0] == 32 and sizes[-2] <= MIN_CHUNK  # large first, small last
