"""``run --out``: atomic .npy shards plus an index; an interrupted run resumes and completes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from builders import flow_config, rgb_dataset

from preproc.batches import export
from preproc.batches.flow import flow


@pytest.fixture
def cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=5)
    return flow_config(tmp_path, tmp_path / "d", target_size=[6, 6], batch_size=3, seed=2)


def test_shards_hold_the_batches_and_index_lists_files_and_labels(tmp_path, cfg):
    out = tmp_path / "out"
    with flow(cfg, workers=0) as it:
        index = export.export_epoch(it, out)
        it.set_epoch(0)
        expected = [it[i] for i in range(len(it))]
    assert index["written"] == 4 and index["images"] == 10
    on_disk = json.loads((out / "index.json").read_text())
    for shard, (x, y) in zip(on_disk["shards"], expected):
        np.testing.assert_array_equal(np.load(out / shard["file"]), x)
        assert shard["labels"] == np.argmax(y, axis=1).tolist()
    rows = (out / "index.csv").read_text().splitlines()
    assert rows[0] == "shard,row,filename,class,label" and len(rows) == 11
    assert not [p for p in os.listdir(out) if ".tmp-" in p]


def test_interrupted_run_leaves_no_half_shard_and_rerun_completes(tmp_path, cfg, monkeypatch):
    out = tmp_path / "out"
    real_replace = os.replace
    calls = {"n": 0}

    def dying_replace(src, dst):
        if str(dst).endswith("batch-00002.npy"):
            calls["tmp"] = os.path.basename(src)
            raise KeyboardInterrupt  # the process is stopped between write and rename
        calls["n"] += 1
        return real_replace(src, dst)

    monkeypatch.setattr(export.os, "replace", dying_replace)
    with flow(cfg, workers=0) as it, pytest.raises(KeyboardInterrupt):
        export.export_epoch(it, out)
    monkeypatch.setattr(export.os, "replace", real_replace)
    names = os.listdir(out)
    assert "batch-00002.npy" not in names and "index.json" not in names
    # the bytes only ever had a temporary name, removed when the write was interrupted
    assert calls["tmp"].startswith(".batch-00002.npy.preproc-tmp-")
    assert not any(calls["tmp"] == n for n in names)

    (out / "batch-00001.npy").write_bytes(b"\x93NUMPY damaged")  # a shard that no longer checks out
    with flow(cfg, workers=0) as it:
        index = export.export_epoch(it, out)
    assert index["reused"] == 1 and index["written"] == 3  # shard 0 kept, 1 redone, 2-3 new
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    for shard in index["shards"]:
        assert np.load(out / shard["file"]).shape[0] == shard["rows"]


def test_write_bytes_replaces_whole_file(tmp_path):
    from preproc.io.atomic import write_bytes

    target = tmp_path / "f.bin"
    write_bytes(target, b"old")
    write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_resume_redoes_shards_after_a_config_or_source_change(tmp_path):
    """A shard is reused only when made with the same config from unchanged files."""
    import os

    import yaml
    from PIL import Image

    import preproc
    from preproc.batches.export import export_epoch

    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    for k in range(4):
        Image.fromarray(np.full((8, 8), 40 * k, np.uint8)).save(root / "a" / f"{k}.png")

    def cfg(factor, size):
        doc = {"version": 1, "source": {"directory": str(root)},
               "stages": [{"rescale": {"factor": factor}}],
               "batches": {"target_size": [size, size], "color_mode": "grayscale",
                           "batch_size": 2, "shuffle": False}}
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(doc))
        return preproc.load_config(path)

    out = tmp_path / "out"
    with preproc.flow(cfg("1/255", 8), workers=0) as it:
        assert export_epoch(it, out)["written"] == 2
    with preproc.flow(cfg("1/255", 8), workers=0) as it:
        assert export_epoch(it, out)["reused"] == 2
    with preproc.flow(cfg("1/100", 4), workers=0) as it:
        index = export_epoch(it, out)
    assert index["reused"] == 0
    assert np.load(out / "batch-00000.npy").shape == (2, 4, 4, 1)
    stat = os.stat(root / "a" / "3.png")
    os.utime(root / "a" / "3.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with preproc.flow(cfg("1/100", 4), workers=0) as it:
        index = export_epoch(it, out)
    assert (index["reused"], index["written"]) == (1, 1)  # only the shard holding 3.png


def test_atomic_files_get_normal_permissions_and_leave_no_temporary(tmp_path):
    import os

    from preproc.io.atomic import TMP_PREFIX, write_bytes

    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "r.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert not [p for p in tmp_path.iterdir() if TMP_PREFIX in p.name]
