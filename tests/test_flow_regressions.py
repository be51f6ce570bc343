"""Batch-generator regressions found in review: per-file scaling, interrupts, skips, listing."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import yaml
from PIL import Image

import preproc
from preproc.batches import workers as W


def png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def config(tmp_path, root, stages=(), **batches):
    doc = {"version": 1, "source": {"directory": str(root)}, "stages": list(stages),
           "batches": batches}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return preproc.load_config(path)


@pytest.mark.parametrize("workers", [0, 2])
def test_to_dtype_scale_uses_each_files_own_dtype(tmp_path, workers):
    png(f"{tmp_path}/d/a/0.png", np.full((8, 8), 65535, np.uint16))
    png(f"{tmp_path}/d/a/1.png", np.full((8, 8), 255, np.uint8))
    cfg = config(tmp_path, tmp_path / "d", [{"to_dtype": {"dtype": "float32", "scale": True}}],
                 target_size=[8, 8], color_mode="grayscale", batch_size=2, shuffle=False,
                 class_mode=None)
    with preproc.flow(cfg, workers=workers, guard="record", check=False) as it:
        x = it[0]
    assert x[0].max() == 1.0 and x[1].max() == 1.0  # not 255/65535 for the 8-bit file


def test_interrupted_wait_never_lets_old_results_overwrite_a_batch(tmp_path, monkeypatch):
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    png(f"{root}/a/00.png", np.full((8, 8), 10, np.uint8))
    png(f"{root}/a/01.png", rng.integers(0, 256, (1500, 1500), dtype=np.uint8))
    for k in range(2, 8):
        png(f"{root}/a/{k:02d}.png", np.full((8, 8), 10 * k, np.uint8))
    cfg = config(tmp_path, root, target_size=[8, 8], color_mode="grayscale", batch_size=2,
                 shuffle=False, class_mode=None, prefetch=2)
    main_pid = os.getpid()
    load = W.ImageJob.load

    def slow_load(self, i):
        if i == 1 and os.getpid() != main_pid:
            time.sleep(1.0)  # a slow file: its result arrives after the interrupt
        return load(self, i)

    monkeypatch.setattr(W.ImageJob, "load", slow_load)
    receive = W.ProcessEngine._receive
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return receive(self)

    it = preproc.flow(cfg, workers=2)
    try:
        monkeypatch.setattr(W.ProcessEngine, "_receive", interrupted)
        with pytest.raises(KeyboardInterrupt):
            it[0]
        monkeypatch.setattr(W.ProcessEngine, "_receive", receive)
        got = [it[1][:, 0, 0, 0].tolist()]
        time.sleep(1.5)
        got += [it[i][:, 0, 0, 0].tolist() for i in (2, 3)]
    finally:
        it.close()
    assert got == [[20.0, 30.0], [40.0, 50.0], [60.0, 70.0]]


def test_skip_finds_a_readable_file_past_many_bad_ones(tmp_path):
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    for k in range(20):
        (root / "a" / f"{k:02d}.png").write_bytes(b"not a png")
    png(f"{root}/b/ok.png", np.full((4, 4), 7, np.uint8))
    cfg = config(tmp_path, root, target_size=[4, 4], color_mode="grayscale", batch_size=32,
                 on_error="skip", shuffle=False)
    with pytest.warns(preproc.DecodeSkipWarning):
        it = preproc.flow(cfg, workers=0)
        x, y = it[0]
    assert x.shape == (1, 4, 4, 1) and len(it.skipped) == 20


def test_a_batch_of_only_bad_files_is_empty_under_the_guard(tmp_path):
    root = tmp_path / "d"
    png(f"{root}/a/0.png", np.full((4, 4), 7, np.uint8))
    (root / "a" / "1.png").write_bytes(b"bad")
    (root / "a" / "2.png").write_bytes(b"bad")
    png(f"{root}/a/3.png", np.full((4, 4), 9, np.uint8))
    doc_stages = [{"rescale": {"factor": "1/255"}}]
    cfg = config(tmp_path, root, doc_stages, target_size=[4, 4], color_mode="grayscale",
                 batch_size=2, on_error="skip", shuffle=False, class_mode=None)
    with pytest.warns(preproc.DecodeSkipWarning):
        it = preproc.flow(cfg, workers=0)
        shapes = [it[i].shape for i in range(len(it))]
    assert shapes == [(1, 4, 4, 1), (1, 4, 4, 1)]
    assert it.dtype == np.float32


def test_nan_in_a_float_image_stays_local_when_resized():
    from preproc.io.imaging import resize

    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8, 1)
    x[3, 3, 0] = np.nan
    out = resize(x, (4, 4), "bilinear")
    assert 0 < np.isnan(out).sum() < out.size


def test_audit_from_config_reports_a_symlink_loop_instead_of_stopping(tmp_path):
    root = tmp_path / "d"
    png(f"{root}/a/0.png", np.full((4, 4), 7, np.uint8))
    (root / "a" / "sub").mkdir()
    os.symlink("..", root / "a" / "sub" / "loop")
    cfg = config(tmp_path, root, follow_links=True)
    report = preproc.audit(cfg)
    assert "unreadable-file" in report.codes
    (f,) = [f for f in report.findings if f.code == "unreadable-file"]
    assert "symlink-loop" in f.message
    report.close()


def test_shard_filenames_are_what_the_shard_yields(tmp_path):
    root = tmp_path / "d"
    for c in "ab":
        for k in range(5):
            png(f"{root}/{c}/{k}.png", np.full((4, 4), 10 * k, np.uint8))
    cfg = config(tmp_path, root, target_size=[4, 4], color_mode="grayscale", batch_size=3,
                 seed=3, shuffle=True)
    seen = []
    for rank in range(3):
        with preproc.flow(cfg, shard=(rank, 3), workers=0) as it:
            for epoch in range(2):
                it.set_epoch(epoch)
                yielded = sorted(it.filename_of(int(j)) for i in range(len(it))
                                 for j in it.batch_indices(i))
                assert yielded == sorted(it.filenames)
                assert len(it.classes) == len(it.filenames)
                if epoch == 0:
                    seen += yielded
    assert sorted(seen) == sorted(f"{c}/{k}.png" for c in "ab" for k in range(5))


def test_an_empty_validation_subset_has_no_batches_as_in_keras(tmp_path):
    root = tmp_path / "d"
    for c in "ab":
        for k in range(3):
            png(f"{root}/{c}/{k}.png", np.full((4, 4), 10 * k, np.uint8))
    cfg = config(tmp_path, root, target_size=[4, 4], color_mode="grayscale",
                 validation_split=0.2)  # int(0.2 * 3) == 0 files per class
    with preproc.flow(cfg, subset="validation", workers=0) as it:
        assert len(it) == 0 and it.samples == 0 and list(it) == []
    with preproc.flow(cfg, subset="training", workers=0) as it:
        assert it.samples == 6
