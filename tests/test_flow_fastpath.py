"""The flow's per-batch shortcuts: a non-finite scan skipped only where the value model proves
the batch finite, and tasks that carry several images of a batch at once."""

from __future__ import annotations

import numpy as np
import pytest
from builders import flow_config, rgb_dataset, write_tiff

import preproc.batches.guard as guard_module
from preproc.batches.flow import flow
from preproc.batches.guard import finite_by_construction
from preproc.batches.workers import chunk_size


def _pipeline(tmp_path, factor):
    root = rgb_dataset(tmp_path / "d", per_class=2)
    cfg = flow_config(tmp_path, root, stages=[{"rescale": {"factor": factor}}])
    with flow(cfg, workers=0, check=False) as it:
        return it.pipeline


def test_integer_rows_through_a_rescale_are_proven_finite(tmp_path):
    pipe = _pipeline(tmp_path, "1/255")
    assert finite_by_construction(pipe, np.dtype(np.uint8), np.dtype(np.float32))
    assert finite_by_construction(pipe, np.dtype(np.uint16), np.dtype(np.float32))


def test_float_rows_or_an_overflowing_factor_prove_nothing(tmp_path):
    assert not finite_by_construction(_pipeline(tmp_path / "a", "1/255"), np.dtype(np.float32),
                                      np.dtype(np.float32))
    # 65535 * 1e35 is beyond float32: uint16 rows could overflow to infinity, uint8 rows cannot
    big = _pipeline(tmp_path / "b", 1e35)
    assert not finite_by_construction(big, np.dtype(np.uint16), np.dtype(np.float32))
    assert finite_by_construction(big, np.dtype(np.uint8), np.dtype(np.float32))


@pytest.fixture
def scans(monkeypatch):
    calls = []
    real = guard_module.check_finite

    def counting(x, *args, **kwargs):
        calls.append(x.dtype)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(guard_module, "check_finite", counting)
    return calls


@pytest.mark.parametrize("workers", [0, 2])
def test_proven_batches_skip_the_scan(tmp_path, scans, workers):
    cfg = flow_config(tmp_path, rgb_dataset(tmp_path / "d", per_class=3), batch_size=4)
    with flow(cfg, workers=workers) as it:
        assert sum(len(x) for x, _ in it) == 6
    assert scans == []


def test_float_files_keep_the_scan_and_report_nan(tmp_path, scans):
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            x = np.random.default_rng(i).random((8, 8)).astype(np.float32)
            if name == "b" and i == 1:
                x[2, 3] = np.nan
            write_tiff(root / name / f"{i}.tif", x)
    cfg = flow_config(tmp_path, root, stages=[], color_mode="grayscale", target_size=[8, 8],
                      batch_size=4, shuffle=False, extensions=[".tif"])
    with flow(cfg, workers=0, check=False, guard="record") as it:
        list(it)
        codes = [f.code for f in it.findings]
    assert scans and "non-finite-values" in codes


def test_chunks_cover_a_batch_and_balance():
    assert chunk_size(32, 2) == 4
    assert chunk_size(5, 2) == 1
    assert chunk_size(1, 8) == 1
    assert chunk_size(100, 1) == 25


@pytest.mark.parametrize("batch_size", [3, 7, 32])
def test_chunked_workers_give_the_inline_batches(tmp_path, batch_size):
    root = rgb_dataset(tmp_path / "d", per_class=9, size=(12, 10))
    (root / "a" / "bad.png").write_bytes(b"not a png")
    cfg = flow_config(tmp_path, root, batch_size=batch_size, seed=3, on_error="skip",
                      target_size=[8, 8])

    def batches(workers):
        with pytest.warns(Warning), flow(cfg, workers=workers) as it:
            return [(x, y) for x, y in it], dict(it.skipped)

    inline, skipped = batches(0)
    pooled, skipped2 = batches(2)
    assert skipped == skipped2 and len(skipped) == 1
    assert len(inline) == len(pooled)
    for (x0, y0), (x2, y2) in zip(inline, pooled):
        np.testing.assert_array_equal(x0, x2)
        np.testing.assert_array_equal(y0, y2)
