"""WebDataset export: standard tar shards, read back by tarfile and by the webdataset package."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from builders import flow_config, rgb_dataset

from preproc.batches.flow import flow
from preproc.batches.webdataset import export_webdataset, sample_key
from preproc.commands import main


@pytest.fixture
def cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=5)
    return flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                        class_mode="sparse")


def _expected(cfg):
    with flow(cfg, workers=0) as it:
        rows = {}
        for i in range(len(it)):
            x, _, idx = it.batch_with_indices(i)
            for row, j in zip(x, idx):
                rows[sample_key(it.filename_of(int(j)))] = (row, it.label_of(int(j)))
    return rows


def test_members_are_named_key_npy_and_key_cls(cfg, tmp_path):
    with flow(cfg, workers=0) as it:
        index = export_webdataset(it, tmp_path / "wds", samples_per_shard=4)
    assert [s["samples"] for s in index["shards"]] == [4, 4, 2]
    expected = _expected(cfg)
    seen = {}
    for shard in index["shards"]:
        with tarfile.open(tmp_path / "wds" / shard["file"]) as tar:
            names = tar.getnames()
            assert names[0] == "a/000.npy" or names[0].endswith(".npy")
            for k in range(0, len(names), 2):
                key = names[k][: -len(".npy")]
                assert names[k + 1] == f"{key}.cls"
                x = np.load(io.BytesIO(tar.extractfile(names[k]).read()))
                seen[key] = (x, int(tar.extractfile(names[k + 1]).read()))
    assert set(seen) == set(expected) == {f"{c}/{i:03d}" for c in "ab" for i in range(5)}
    for key, (x, label) in seen.items():
        np.testing.assert_array_equal(x, expected[key][0])
        assert x.dtype == np.float32 and label == expected[key][1]


def test_webdataset_package_reads_the_shards(cfg, tmp_path):
    wds = pytest.importorskip("webdataset")
    assert main(["export", str(cfg.path), str(tmp_path / "w"), "--format", "webdataset",
                 "--samples-per-shard", "3", "--workers", "0"]) == 0
    urls = sorted(str(p) for p in (tmp_path / "w").glob("shard-*.tar"))
    expected = _expected(cfg)
    got = list(wds.WebDataset(urls, shardshuffle=False).decode().to_tuple("__key__", "npy", "cls"))
    assert len(got) == 10
    for key, x, label in got:
        np.testing.assert_array_equal(x, expected[key][0])
        assert label == expected[key][1]


def test_keys_drop_the_extension_and_inner_dots():
    assert sample_key("cats/0001.png") == "cats/0001"
    assert sample_key("cats/a.b.png") == "cats/a_b"
    assert sample_key("x.tif") == "x"
