"""Output faults: every I/O failure is one message and exit 2; re-runs leave exactly what the
index lists; nothing that is not ours is overwritten; warnings are one line each."""

from __future__ import annotations

import errno
import json
import logging
import os
import warnings

import numpy as np
import pytest
from hostile_kit import config, dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from preproc.commands import main as cli


@pytest.fixture
def setup(tmp_path):
    data = dataset(tmp_path / "data", per_class=5, size=(12, 12))
    cfg = config(tmp_path / "c.yaml", data, batch_size=2, shuffle=False, workers=0)
    return tmp_path, cfg


def _one_io_line(capsys, rc):
    out, err = capsys.readouterr()
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "I/O error" in lines[0], err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("target", ["file", "/dev/null", "/proc", "/proc/self/x"])
def test_out_that_cannot_be_a_folder_is_one_io_message(setup, capsys, target):
    tmp_path, cfg = setup
    if target == "file":
        target = str(tmp_path / "a-file")
        open(target, "w").close()
    if target.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    _one_io_line(capsys, cli(["run", str(cfg), "--out", target]))


def test_demo_keep_dev_null_is_one_io_message(capsys):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    _one_io_line(capsys, cli(["demo", "--keep", "/dev/null"]))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
@pytest.mark.parametrize("command", ["run", "audit-report", "audit-stats"])
def test_a_full_or_read_only_disk_is_one_io_message(setup, capsys, monkeypatch, code, command):
    """Any OSError on the write path (fsync of a shard, a report, a stats file)."""
    from preproc.io import atomic

    tmp_path, cfg = setup

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    args = {"run": ["run", str(cfg), "--out", str(tmp_path / "out")],
            "audit-report": ["audit", str(cfg), "--report", str(tmp_path / "rep")],
            "audit-stats": ["audit", str(cfg), "--stats", str(tmp_path / "s.json")]}[command]
    rc = cli(args)
    out, err = capsys.readouterr()
    assert rc == 2 and os.strerror(code) in err, err
    assert "internal error" not in err and "Traceback" not in err
    leftovers = [p for p in tmp_path.rglob("*") if ".preproc-tmp-" in p.name]
    assert not leftovers


def _shards(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("batch-"))


@settings(max_examples=8)
@given(sizes=st.lists(st.integers(1, 10), min_size=2, max_size=4))
def test_rerunning_out_with_another_batch_size_leaves_only_listed_shards(tmp_path_factory, sizes):
    tmp = tmp_path_factory.mktemp("rerun")
    data = dataset(tmp / "data", per_class=5, size=(12, 12))
    out = tmp / "out"
    for size in sizes:
        cfg = config(tmp / "c.yaml", data, batch_size=size, shuffle=False, workers=0)
        assert cli(["run", str(cfg), "--out", str(out)]) == 0
        index = json.loads((out / "index.json").read_text())
        listed = sorted(s["file"] for s in index["shards"])
        listed_json = sorted(f.replace(".npy", ".json") for f in listed)
        assert _shards(out) == sorted(listed + listed_json)
        assert sum(np.load(out / f).shape[0] for f in listed) == 10


def test_a_deeply_nested_sidecar_is_rewritten_not_a_crash(setup, capsys):
    tmp_path, cfg = setup
    out = tmp_path / "out"
    assert cli(["run", str(cfg), "--out", str(out)]) == 0
    (out / "batch-00000.json").write_text("[" * 100000 + "]" * 100000)
    (out / "batch-00001.json").write_text("[1, 2]")
    assert cli(["run", str(cfg), "--out", str(out)]) == 0
    capsys.readouterr()
    assert json.loads((out / "batch-00000.json").read_text())["rows"] == 2


def test_stats_never_overwrites_a_file_that_is_not_a_stats_file(setup, capsys):
    tmp_path, cfg = setup
    image = next((tmp_path / "data" / "a").iterdir())
    before = image.read_bytes()
    rc = cli(["audit", str(cfg), "--stats", str(image)])
    out, err = capsys.readouterr()
    assert rc == 2 and "not a preproc stats file" in err
    assert image.read_bytes() == before
    stats = tmp_path / "s.json"
    assert cli(["audit", str(cfg), "--stats", str(stats)]) in (0, 1)
    assert cli(["audit", str(cfg), "--stats", str(stats)]) in (0, 1)  # its own file: replaced
    assert json.loads(stats.read_text())["format"] == "preproc-stats"


def test_warnings_are_one_line_and_third_party_logs_stay_quiet(setup, capsys, monkeypatch):
    from preproc.commands import check as check_command

    def noisy(args):
        warnings.warn("first line\nsecond line", UserWarning)
        logging.getLogger("tifffile").warning("<tifffile.TiffFile 'x'> contains no pages")
        return 0

    monkeypatch.setattr(check_command, "main", noisy)
    tmp_path, cfg = setup
    assert cli(["check", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == ["warning: first line second line"], err
