"""preproc.flow: lossless batches, determinism across workers, shards, guard, featurewise fit."""

from __future__ import annotations

import numpy as np
import pytest
from builders import flow_config, rgb_dataset, write_png, write_tiff

from preproc.errors import StageError
from preproc.batches.flow import RuntimeRangeWarning, flow


def _gray16(root, n=4, size=(16, 12)):
    """12-bit content in 16-bit grayscale PNGs, class ``x``; returns the arrays in file order."""
    rng = np.random.default_rng(1)
    (root / "x").mkdir(parents=True)
    arrays = []
    for i in range(n):
        a = rng.integers(0, 4096, size, dtype=np.uint16)
        a[0, 0], a[0, 1] = 0, 4095
        write_png(root / "x" / f"{i}.png", a, sbit=12)
        arrays.append(a)
    return arrays


def test_16bit_gray_stays_16bit_in_grayscale_and_rgb(tmp_path):
    arrays = _gray16(tmp_path / "d")
    for mode, channels in (("grayscale", 1), ("rgb", 3)):
        cfg = flow_config(tmp_path, tmp_path / "d", stages=[], target_size=[16, 12],
                           color_mode=mode, shuffle=False, batch_size=4, class_mode=None)
        x = flow(cfg, workers=0)[0]
        assert x.dtype == np.float32 and x.shape == (4, 16, 12, channels)
        for k in range(channels):
            np.testing.assert_array_equal(x[..., k], np.stack(arrays).astype(np.float32))
        assert x.max() == 4095  # Keras' rgb mode would have clipped to 255


def test_16bit_rescale_keeps_every_level(tmp_path):
    arrays = _gray16(tmp_path / "d")
    cfg = flow_config(tmp_path, tmp_path / "d", stages=[{"rescale": {"factor": "1/4095"}}],
                       expect={"dtype": "uint16", "bit_depth": 12}, target_size=[16, 12],
                       color_mode="grayscale", shuffle=False, class_mode=None)
    x = flow(cfg, workers=0)[0]
    want = np.stack(arrays)[..., None].astype(np.float32) * np.float32(1 / 4095)
    np.testing.assert_array_equal(x, want)


def test_16bit_rgb_to_gray_uses_wide_luma_and_rgba_alpha_is_declared_top(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 60000, 1000, 4095
    (tmp_path / "d/c").mkdir(parents=True)
    write_png(tmp_path / "d/c/0.png", rgb)
    gray = flow(flow_config(tmp_path, tmp_path / "d", stages=[], target_size=[4, 4],
                             color_mode="grayscale", class_mode=None), workers=0)[0]
    want = (60000 * 19595 + 1000 * 38470 + 4095 * 7471 + 0x8000) >> 16
    assert want > 255 and np.all(gray == want)
    write_png(tmp_path / "d/c/0.png", rgb[..., 0] // 16, sbit=12)
    rgba = flow(flow_config(tmp_path, tmp_path / "d", stages=[], target_size=[4, 4],
                             color_mode="rgba", class_mode=None,
                             ), workers=0)[0]
    assert np.all(rgba[..., 3] == 4095)  # sBIT 12 -> opaque is 2**12 - 1, not 65535


def test_float_tiff_stays_float_and_bicubic_never_widens(tmp_path):
    (tmp_path / "d/c").mkdir(parents=True)
    yy, xx = np.mgrid[0:40, 0:40]
    img = np.where((xx // 5 + yy // 5) % 2, 3.5, -2.25).astype(np.float32)  # sharp edges overshoot
    write_tiff(tmp_path / "d/c/0.tif", img)
    kw = dict(stages=[], color_mode="grayscale", class_mode=None, target_size=[17, 23])
    x = flow(flow_config(tmp_path, tmp_path / "d", interpolation="bicubic", **kw), workers=0)[0]
    assert x.dtype == np.float32
    assert x.min() >= -2.25 and x.max() <= 3.5
    assert len(np.unique(x)) > 2  # really interpolated, not a copy
    same = flow(flow_config(tmp_path, tmp_path / "d", target_size=[40, 40], **{
        k: v for k, v in kw.items() if k != "target_size"}), workers=0)[0]
    np.testing.assert_array_equal(same[0, ..., 0], img)


@pytest.mark.parametrize("interp", ["bilinear", "lanczos"])
def test_workers_do_not_change_batches(tmp_path, interp):
    rgb_dataset(tmp_path / "d", per_class=9)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[12, 10], batch_size=4, seed=4,
                       interpolation=interp)
    runs = []
    for workers in (0, 1, 2):
        with flow(cfg, workers=workers, prefetch=2) as it:
            runs.append([b for _ in range(2) for b in it])
    for other in runs[1:]:
        assert len(other) == len(runs[0]) == 10
        for (xa, ya), (xb, yb) in zip(runs[0], other):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_batches_of_the_next_epoch_are_prepared_only_once_epochs_follow(tmp_path, monkeypatch):
    from preproc.batches import workers

    submitted = []
    real_submit = workers.Window._submit

    def spy(self, key, task, keep):
        submitted.append(key)
        return real_submit(self, key, task, keep)

    monkeypatch.setattr(workers.Window, "_submit", spy)
    rgb_dataset(tmp_path / "d", per_class=5)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=3, seed=1)
    with flow(cfg, workers=2, prefetch=2) as it:
        n = len(it)
        list(it)  # a single pass: nothing of epoch 1 is decoded for nobody
        assert sorted(submitted) == [(0, i) for i in range(n)]
        list(it)  # the consumer came back: it trains, so epoch 2 starts ahead of its request
        assert [k for k in submitted if k[0] == 1] == [(1, i) for i in range(n)]
        assert (2, 0) in submitted and (2, 1) in submitted


def test_random_access_does_not_advance_and_repeats(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=5)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=3, seed=1)
    with flow(cfg, workers=2) as it:
        last, first, again = it[-1], it[0], it[0]
        np.testing.assert_array_equal(first[0], again[0])
        assert it.epoch == 0 and len(last[0]) == 10 - 3 * 3
        order0 = it.index_array.copy()
        it.on_epoch_end()
        assert it.epoch == 1 and not np.array_equal(order0, it.index_array)
        with pytest.raises(IndexError):
            it[len(it)]


def test_shards_are_disjoint_cover_the_epoch_and_reshuffle(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=11)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=3)
    world = 3
    shards = [flow(cfg, shard=(r, world), workers=0) for r in range(world)]
    for epoch in (0, 1):
        parts = [s.epoch_order(epoch) for s in shards]
        joined = np.concatenate(parts)
        assert sorted(joined.tolist()) == list(range(22))  # disjoint and complete
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert not np.array_equal(shards[0].epoch_order(0), shards[0].epoch_order(1))
    full = flow(cfg, workers=0)
    np.testing.assert_array_equal(full.epoch_order(1)[1::world], shards[1].epoch_order(1))
    with pytest.raises(ValueError, match="seed"):
        flow(flow_config(tmp_path, tmp_path / "d", target_size=[8, 8]), shard=(0, 2))


def _guard_config(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=4)
    return flow_config(tmp_path, tmp_path / "d", expect={"dtype": "uint8", "range": [0, 100]},
                        target_size=[8, 8], batch_size=4, shuffle=False, runtime=1)


def test_runtime_guard_records_and_warns_on_sampled_batches(tmp_path):
    cfg = _guard_config(tmp_path)
    it = flow(cfg, workers=2)
    with pytest.warns(RuntimeRangeWarning, match="stage 0 `rescale`"):
        list(it)
    it.close()
    assert [f.code for f in it.findings] == ["runtime-range-violation"]  # 1 sampled batch
    f = it.findings[0]
    assert f.stage == 0 and f.stage_name == "rescale"
    assert set(f.files) <= set(it.filepaths[:4]) and f.files
    assert f.data["observed"][1] > f.data["inferred"][1]


def test_runtime_guard_can_raise_and_stays_quiet_on_sound_data(tmp_path):
    with pytest.raises(StageError, match="outside its inferred"):
        flow(_guard_config(tmp_path), workers=0, guard="raise")[0]
    rgb_dataset(tmp_path / "ok", per_class=4)
    cfg = flow_config(tmp_path, tmp_path / "ok", expect={"dtype": "uint8"}, target_size=[8, 8],
                       batch_size=4, runtime=5, name="ok.yaml")
    it = flow(cfg, workers=0, guard="raise")
    assert len(list(it)) == 2 and it.findings == []


def test_featurewise_normalize_fits_after_the_rescale(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=6)
    stages = [{"rescale": {"factor": "1/255"}}, {"normalize": {"mode": "featurewise"}}]
    cfg = flow_config(tmp_path, tmp_path / "d", stages=stages, target_size=[10, 10],
                       batch_size=12, shuffle=False, class_mode=None)
    x = flow(cfg, workers=0)[0]
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1.0, atol=1e-3)


def test_per_image_stages_run_in_workers_with_the_same_result(tmp_path):
    from PIL import Image

    rgb_dataset(tmp_path / "d", per_class=5, size=(9, 7))  # the target size: no resizing
    stages = [{"rescale": {"factor": "1/255"}}, {"normalize": {"mode": "samplewise"}}]
    cfg = flow_config(tmp_path, tmp_path / "d", stages=stages, target_size=[9, 7], batch_size=4,
                       seed=2, runtime=3)
    with flow(cfg, workers=0) as a, flow(cfg, workers=2) as b:
        assert not a._batched  # samplewise looks at whole images: per image, in the workers
        order, paths = a.epoch_order(0), a.filepaths
        for k, ((xa, ya), (xb, yb)) in enumerate(zip(a, b)):
            np.testing.assert_array_equal(xa, xb)
            for x, i in zip(xa, order[4 * k:4 * k + 4]):  # the same value computed by hand
                raw = np.asarray(Image.open(paths[i]), dtype=np.float64) / 255
                np.testing.assert_allclose(x, (raw - raw.mean()) / (raw.std() + 1e-6),
                                           rtol=1e-4, atol=1e-5)
            np.testing.assert_array_equal(ya.argmax(axis=1), b.classes[order[4 * k:4 * k + 4]])
        assert a.findings == b.findings == []


def test_mixed_8_and_16_bit_files_share_a_batch_without_clipping(tmp_path):
    (tmp_path / "d/c").mkdir(parents=True)
    write_png(tmp_path / "d/c/0.png", np.full((6, 6), 200, np.uint8))
    write_png(tmp_path / "d/c/1.png", np.full((6, 6), 60000, np.uint16))
    cfg = flow_config(tmp_path, tmp_path / "d", stages=[], target_size=[6, 6],
                       color_mode="grayscale", shuffle=False, class_mode=None)
    for workers in (0, 2):
        with flow(cfg, workers=workers, check=False) as it:  # mixed on purpose
            x = it[0]
        assert x.dtype == np.float32
        assert x[0].max() == 200 and x[1].min() == 60000
