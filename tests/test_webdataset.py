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


# ------------------------------------------------------------------ atomic and resumable
def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _export(cfg, out, **kwargs):
    with flow(cfg, workers=0) as it:
        return export_webdataset(it, out, samples_per_shard=3, **kwargs)


def test_an_interrupted_export_resumes_to_the_bytes_of_an_uninterrupted_one(cfg, tmp_path,
                                                                           monkeypatch):
    from preproc.batches import webdataset

    whole = _export(cfg, tmp_path / "whole")
    assert whole["written"] == 4 and whole["reused"] == 0
    calls = {"n": 0}
    real = webdataset._member

    def interrupted(tar, name, data, mtime):  # Ctrl-C in the middle of the second tar
        calls["n"] += 1
        if calls["n"] == 6 + 3:
            raise KeyboardInterrupt
        real(tar, name, data, mtime)

    monkeypatch.setattr(webdataset, "_member", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _export(cfg, tmp_path / "part")
    monkeypatch.setattr(webdataset, "_member", real)
    names = sorted(p.name for p in (tmp_path / "part").iterdir())
    # the first shard is complete; the second never appears under its final name
    assert names == ["export.json", "shard-000000.json", "shard-000000.tar"]
    resumed = _export(cfg, tmp_path / "part")
    assert resumed["reused"] == 1 and resumed["written"] == 3
    assert _files(tmp_path / "part") == _files(tmp_path / "whole")
    again = _export(cfg, tmp_path / "part")
    assert again["reused"] == 4 and again["written"] == 0
    assert _files(tmp_path / "part") == _files(tmp_path / "whole")


def test_a_killed_export_leaves_no_partial_tar_and_resumes(cfg, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    code = ("import sys, preproc.batches.webdataset as w\n"
            "real = w._Shard.write\n"
            "def slow(*a, **k):\n"
            "    entry = real(*a, **k)\n"
            "    import time; time.sleep(60)\n"
            "    return entry\n"
            "w._Shard.write = slow\n"
            "from preproc.commands import main\n"
            f"main(['export', {str(cfg.path)!r}, {str(out)!r}, '--samples-per-shard', '3', "
            "'--workers', '0'])\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while not (out / "shard-000000.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "shard-000001.tar").exists()
    assert main(["export", str(cfg.path), str(out), "--samples-per-shard", "3",
                 "--workers", "0"]) == 0
    _export(cfg, tmp_path / "whole")
    assert _files(out) == _files(tmp_path / "whole")


def test_a_changed_source_file_redoes_only_its_shard(cfg, tmp_path):
    import os

    _export(cfg, tmp_path / "w")
    with flow(cfg, workers=0) as it:
        first = it.filepath_of(int(it.batch_indices(0)[0]))
    st = os.stat(first)
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    index = _export(cfg, tmp_path / "w")
    assert index["written"] == 1 and index["reused"] == 3


def test_an_export_of_another_config_is_refused_not_mixed(cfg, tmp_path):
    from preproc.batches.webdataset import ExportMismatch

    _export(cfg, tmp_path / "w")
    before = _files(tmp_path / "w")
    other = flow_config(tmp_path, tmp_path / "d", target_size=[6, 6], batch_size=4, seed=0,
                        class_mode="sparse", name="other.yaml")
    with pytest.raises(ExportMismatch, match="another recipe.*Export into another folder"):
        _export(other, tmp_path / "w")
    with flow(cfg, workers=0) as it, pytest.raises(ExportMismatch, match="samples_per_shard 3"):
        export_webdataset(it, tmp_path / "w", samples_per_shard=5)
    assert _files(tmp_path / "w") == before
    assert main(["export", str(other.path), str(tmp_path / "w"), "--samples-per-shard", "3",
                 "--workers", "0"]) != 0


def test_an_evaluation_export_does_not_resume_a_training_one(tmp_path):
    """The two modes run different pipelines (here: with and without the flip), so their shards
    never mix in one folder."""
    from preproc.batches.webdataset import ExportMismatch

    rgb_dataset(tmp_path / "d", per_class=5)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                      class_mode="sparse", stages=[{"flip": {"horizontal": True}}])
    with flow(cfg, workers=0, mode="training") as it:
        export_webdataset(it, tmp_path / "w", samples_per_shard=3)
    before = _files(tmp_path / "w")
    with flow(cfg, workers=0, mode="evaluation") as it, \
            pytest.raises(ExportMismatch, match="mode 'training' there, 'evaluation' now"):
        export_webdataset(it, tmp_path / "w", samples_per_shard=3)
    assert _files(tmp_path / "w") == before


def test_shards_without_a_record_are_not_overwritten(cfg, tmp_path):
    from preproc.batches.webdataset import ExportMismatch

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "shard-000000.tar").write_bytes(b"someone else's")
    with pytest.raises(ExportMismatch, match="no export.json"):
        _export(cfg, tmp_path / "w")
