"""The preprocessed cache: equal batches, container dtypes, refusal when stale, resumable writes."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from builders import flow_config, rgb_dataset
from PIL import Image

from preproc.batches import cache as cache_mod
from preproc.batches.cache import CacheError, cut_index, open_cache
from preproc.batches.cache_build import build_cache
from preproc.batches.flow import flow
from preproc.commands import main


def gray16_dataset(root, per_class=5, size=(24, 30), seed=1):
    rng = np.random.default_rng(seed)
    for name in ("x", "y"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 4096, size, dtype=np.uint16)
            Image.fromarray(arr).save(root / name / f"{i:03d}.png")
    return root


def _all_batches(it):
    return [it[i] for i in range(len(it))]


def _assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == xb.dtype
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.fixture
def rgb(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=7)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                       class_mode="sparse", validation_split=0.3, interpolation="bilinear")
    return cfg, tmp_path / "cache"


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_from_the_cache_equal_the_batches_from_files(rgb, workers):
    cfg, folder = rgb
    index = build_cache(cfg, folder, workers=workers, shard_images=3)
    assert index["dtype"] == "|u1" and index["cut"] == 0  # rescale is recomputed per batch
    assert len(index["shards"]) == 5 and index["written"] == 5
    for subset in ("training", "validation"):
        with flow(cfg, subset, workers=2) as files, \
                flow(cfg, subset, workers=workers, cache=folder) as cached:
            assert cached._cache is not None
            for _ in range(2):  # two epochs, reshuffled alike
                _assert_same(_all_batches(files), _all_batches(cached))
                files.on_epoch_end()
                cached.on_epoch_end()
    shard = np.load(folder / "shard-00000.npy", mmap_mode="r")
    assert shard.dtype == np.uint8 and shard.shape == (3, 8, 8, 3)


def test_a_whole_image_stage_is_cached_in_its_own_dtype(tmp_path):
    pytest.importorskip("skimage")
    gray16_dataset(tmp_path / "g")
    cfg = flow_config(tmp_path, tmp_path / "g", stages=[{"clahe": {"clip_limit": 0.02}},
                                                          {"rescale": {"factor": 2}}],
                       expect={"dtype": "uint16", "bit_depth": 12}, target_size=[12, 12],
                       color_mode="grayscale", batch_size=3, seed=2, class_mode="sparse")
    index = build_cache(cfg, tmp_path / "c", workers=0)
    assert index["stages_cached"] == ["clahe"] and index["cut"] == 1
    with flow(cfg, workers=0) as files, flow(cfg, workers=0, cache=tmp_path / "c") as cached:
        assert [s.name for s in cached._stages] == ["rescale"]
        _assert_same(_all_batches(files), _all_batches(cached))
    assert np.load(tmp_path / "c" / "shard-00000.npy").dtype == np.dtype(index["dtype"])


def test_sixteen_bit_files_are_cached_without_a_cast(tmp_path):
    gray16_dataset(tmp_path / "g")
    cfg = flow_config(tmp_path, tmp_path / "g", stages=[{"rescale": {"factor": "1/4095"}}],
                       expect={"dtype": "uint16", "bit_depth": 12}, target_size=[10, 10],
                       color_mode="grayscale", batch_size=4, seed=1)
    build_cache(cfg, tmp_path / "c", workers=0)
    x = np.load(tmp_path / "c" / "shard-00000.npy")
    assert x.dtype == np.uint16 and x.max() > 255
    with flow(cfg, workers=0) as files, flow(cfg, workers=0, cache=tmp_path / "c") as cached:
        _assert_same(_all_batches(files), _all_batches(cached))


def test_cut_stops_at_the_first_random_stage_and_before_its_elementwise_run():
    def st(elementwise=False, random=False):
        return SimpleNamespace(elementwise=elementwise, random=random)

    assert cut_index([]) == 0
    assert cut_index([st(), st(True)]) == 1
    assert cut_index([st(), st(random=True), st()]) == 1
    assert cut_index([st(), st(True), st(random=True)]) == 1
    traits = SimpleNamespace(traits=lambda: SimpleNamespace(random=True), elementwise=False)
    assert cut_index([st(), traits, st()]) == 1


def _refused(cfg, folder, **kw):
    it = flow(cfg, workers=0)
    with pytest.raises(CacheError) as info:
        open_cache(folder, cfg, it.pipeline, it._listing, **kw)
    assert info.value.finding.code == "cache-stale"
    return info.value


def test_another_config_or_version_is_refused(rgb, tmp_path, monkeypatch):
    cfg, folder = rgb
    build_cache(cfg, folder, workers=0)
    other = flow_config(tmp_path, cfg.source.directory, name="other.yaml", target_size=[6, 6],
                         batch_size=4, seed=0, class_mode="sparse", validation_split=0.3,
                         interpolation="bilinear")
    assert "another config" in str(_refused(other, folder))
    with pytest.raises(CacheError):
        flow(other, "training", workers=0, cache=folder)
    monkeypatch.setattr(cache_mod, "_version", lambda: "9.9.9")
    assert "made by preproc" in str(_refused(cfg, folder))


def test_changed_or_added_sources_are_refused(rgb):
    cfg, folder = rgb
    build_cache(cfg, folder, workers=0)
    victim = min((cfg.source.directory / "a").iterdir())
    st = os.stat(victim)
    data = bytearray(victim.read_bytes())
    # same size and mtime, other content: only the content hash sees it
    arr = np.asarray(Image.open(victim)).copy()
    arr[0, 0] ^= 0xFF
    Image.fromarray(arr).save(victim)
    if victim.stat().st_size == len(data):
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        flow(cfg, workers=0, cache=folder).close()  # size and mtime agree
        assert "content" in str(_refused(cfg, folder, verify=True))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    err = _refused(cfg, folder)
    assert str(victim) in err.finding.files
    Image.fromarray(arr).save(cfg.source.directory / "a" / "new.png")
    assert "not in it" in str(_refused(cfg, folder))


def test_rebuild_is_resumable_and_never_leaves_half_files(rgb):
    cfg, folder = rgb
    first = build_cache(cfg, folder, workers=0, shard_images=4)
    again = build_cache(cfg, folder, workers=0, shard_images=4)
    assert again["written"] == 0 and again["reused"] == len(first["shards"])
    (folder / "shard-00001.npy").write_bytes(b"torn")  # e.g. a copy cut short
    (folder / ".shard-00002.npy.preproc-tmp-x").write_bytes(b"partial")
    third = build_cache(cfg, folder, workers=0, shard_images=4)
    assert third["written"] == 1
    assert not list(folder.glob(".*preproc-tmp*"))
    assert [s["sha256"] for s in third["shards"]] == [s["sha256"] for s in first["shards"]]


def test_cli_and_config_key(rgb, tmp_path, capsys):
    cfg, folder = rgb
    assert main(["cache", str(cfg.path), str(folder), "--workers", "2"]) == 0
    assert "shard" in capsys.readouterr().err
    assert main(["cache", str(cfg.path), str(folder), "--verify"]) == 0
    text = cfg.path.read_text().replace("batches:\n", f"batches:\n  cache: {folder.name}\n")
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text(text)
    with flow(keyed, "training", workers=0) as it:
        assert it._cache is not None and len(_all_batches(it)) == len(it)
    victim = min((cfg.source.directory / "b").iterdir())
    os.utime(victim, ns=(0, 0))  # a touched file with the same content is fine for --verify
    assert main(["cache", str(cfg.path), str(folder), "--verify"]) == 0
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(victim)
    assert main(["cache", str(cfg.path), str(folder), "--verify"]) == 1
    assert "cache-stale" in capsys.readouterr().out


def test_index_holds_the_cut_spec_and_sources(rgb):
    cfg, folder = rgb
    build_cache(cfg, folder, workers=0)
    index = json.loads((folder / "index.json").read_text())
    assert len(index["files"]) == len(index["labels"]) == len(index["sources"]) == 14
    assert index["spec"]["dtype"] == "uint8" and index["preproc_version"]
    assert all(len(s) == 3 and len(s[2]) == 64 for s in index["sources"])


def test_torch_samples_read_the_cache(rgb):
    torch = pytest.importorskip("torch")
    from preproc.batches.adapters import torch_dataset

    cfg, folder = rgb
    build_cache(cfg, folder, workers=0)
    with flow(cfg, "training", workers=0, cache=folder) as cached, \
            flow(cfg, "training", workers=0) as files:
        a = torch.utils.data.DataLoader(torch_dataset(cached), batch_size=3, num_workers=2)
        b = torch.utils.data.DataLoader(torch_dataset(files), batch_size=3)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_featurewise_statistics_come_from_the_cache(rgb, tmp_path):
    cfg, folder = rgb
    fw = flow_config(tmp_path, cfg.source.directory, name="fw.yaml",
                      stages=[{"rescale": {"factor": "1/255"}},
                              {"normalize": {"mode": "featurewise"}}],
                      target_size=[8, 8], batch_size=4, seed=0, class_mode="sparse",
                      validation_split=0.3)
    index = build_cache(fw, folder, workers=0)
    assert index["cut"] == 0 and list(index["fitted"]) == ["1"]
    with flow(fw, "validation", workers=0) as files, \
            flow(fw, "validation", workers=0, cache=folder) as cached:
        _assert_same(_all_batches(files), _all_batches(cached))


def test_random_stages_run_after_the_cut_and_draw_as_from_files(tmp_path):
    """clahe is cached; random_crop and flip run per epoch, drawn exactly as from the files;
    validation gets center_crop (the evaluation twin) from the same shards."""
    pytest.importorskip("skimage")
    gray16_dataset(tmp_path / "g", per_class=6)
    cfg = flow_config(tmp_path, tmp_path / "g",
                       stages=[{"clahe": {"clip_limit": 0.02}}, {"random_crop": {"size": [8, 8]}},
                               {"flip": {"horizontal": True}}, {"rescale": {"factor": 2}}],
                       expect={"dtype": "uint16", "bit_depth": 12}, target_size=[12, 12],
                       color_mode="grayscale", batch_size=3, seed=4, class_mode="sparse",
                       validation_split=0.34)
    index = build_cache(cfg, tmp_path / "c", workers=0)
    assert index["stages_cached"] == ["clahe"]
    for subset in ("training", "validation"):
        with flow(cfg, subset, workers=2) as files, \
                flow(cfg, subset, workers=2, cache=tmp_path / "c") as cached:
            assert [s.name for s in cached._stages][:1] == (
                ["random_crop"] if subset == "training" else ["center_crop"])
            for _ in range(2):
                _assert_same(_all_batches(files), _all_batches(cached))
                files.on_epoch_end()
                cached.on_epoch_end()
