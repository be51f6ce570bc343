"""Bad files become `unreadable-file` with a reason; the audit always completes; sources stay
untouched."""

from __future__ import annotations

import builtins
import csv
import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from builders import PNG_SIGNATURE, clean_dataset, gray12, png_chunk, write_png

from preproc.auditing import audit
from preproc.auditing import measure as records


def _corrupt(path: Path) -> None:
    data = bytearray((path.parent / "000.png").read_bytes())
    data[60] ^= 0xFF  # inside IDAT: the CRC no longer matches
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    path.write_bytes((path.parent / "000.png").read_bytes()[:70])


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_extension(path: Path) -> None:
    path.write_text("patient list, not a picture\n")


def _symlink_loop(path: Path) -> None:
    os.symlink(path.name, path)


def _bomb(path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b""))


CASES = {
    "corrupt": (_corrupt, "corrupt"),
    "truncated": (_truncated, "truncated"),
    "zero-byte": (_zero, "empty"),
    "wrong-extension": (_wrong_extension, "unsupported"),
    "symlink-loop": (_symlink_loop, "symlink-loop"),
    "decompression-bomb": (_bomb, "decompression-bomb"),
}


@pytest.fixture
def dataset(tmp_path):
    return clean_dataset(tmp_path / "data", per_class=2)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_file_is_unreadable_with_its_reason(dataset, case):
    make, reason = CASES[case]
    make(dataset / "normal" / "bad.png")
    report = audit(dataset, workers=1)
    finding = next(f for f in report.findings if f.code == "unreadable-file")
    assert finding.files == ("normal/bad.png",)
    assert finding.data["reasons"] == {reason: 1}
    assert report.summary["unreadable"] == 1
    assert report.summary["readable"] == 4


def test_permission_denied_is_reported(dataset, monkeypatch):
    target = str(dataset / "normal" / "001.png")
    real_open = builtins.open

    def guarded(file, *args, **kwargs):  # root can read anything: simulate a locked file
        if os.fspath(file) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    report = audit(dataset, workers=1)
    finding = next(f for f in report.findings if f.code == "unreadable-file")
    assert finding.data["reasons"] == {"permission-denied": 1}
    assert finding.files == ("normal/001.png",)


def test_all_bad_files_together_and_the_audit_completes(dataset, tmp_path):
    for case, (make, _) in CASES.items():
        make(dataset / "pneumonia" / f"{case}.png")
    report = audit(dataset, workers=2)
    assert report.summary["files"] == 4 + len(CASES)
    assert report.summary["unreadable"] == len(CASES)
    reasons = next(f for f in report.findings if f.code == "unreadable-file").data["reasons"]
    assert sorted(reasons) == sorted(r for _, r in CASES.values())
    paths = report.write(tmp_path / "out")  # the reports of a dataset full of bad files render
    rows = {r["path"]: r for r in csv.DictReader(paths["csv"].open(encoding="utf-8"))}
    assert len(rows) == 4 + len(CASES)
    for case, (_, reason) in CASES.items():
        assert rows[f"pneumonia/{case}.png"]["error"] == reason
        assert rows[f"pneumonia/{case}.png"]["min"] == ""
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["summary"]["unreadable"] == len(CASES)
    assert "unreadable-file" in paths["html"].read_text(encoding="utf-8")


def _fingerprint(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[str(path)] = (st.st_mtime_ns, st.st_size,
                              hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def test_sources_are_never_opened_for_writing(dataset, tmp_path, monkeypatch):
    _truncated(dataset / "normal" / "short.png")
    root = str(dataset)
    real = {"builtins": builtins.open, "io": io.open, "os": os.open}

    def inside(file) -> bool:
        return isinstance(file, (str, os.PathLike)) and \
            os.path.abspath(os.fspath(file)).startswith(root)

    def check_mode(file, mode):
        if inside(file) and any(c in mode for c in "wax+"):
            raise AssertionError(f"{file} opened for writing ({mode})")

    monkeypatch.setattr(builtins, "open", lambda f, mode="r", *a, **k: (
        check_mode(f, mode), real["builtins"](f, mode, *a, **k))[1])
    monkeypatch.setattr(io, "open", lambda f, mode="r", *a, **k: (
        check_mode(f, mode), real["io"](f, mode, *a, **k))[1])
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & write_flags:
            raise AssertionError(f"{path} opened for writing (flags {flags:#o})")
        return real["os"](path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    before = _fingerprint(dataset)
    report = audit(dataset, workers=1)
    report.write(tmp_path / "out")
    report.write_stats(tmp_path / "stats.json")
    monkeypatch.undo()
    assert report.summary["readable"] == 4
    assert _fingerprint(dataset) == before
    audit(dataset, workers=2).write(tmp_path / "out2")  # worker processes too
    assert _fingerprint(dataset) == before


def test_a_decoder_crash_costs_only_its_file(dataset, monkeypatch):
    real = records._read_and_measure

    def crashing(root, rel, cls, *options):
        if rel.endswith("001.png"):
            os._exit(3)  # what a segfault in a native decoder looks like to the pool
        return real(root, rel, cls, *options)

    monkeypatch.setattr(records, "_read_and_measure", crashing)  # inherited by forked workers
    report = audit(dataset, workers=2)
    bad = {r.path: r.error for r in report.records() if r.error}
    assert bad == {"normal/001.png": "decoder-crash", "pneumonia/001.png": "decoder-crash"}
    assert report.summary["readable"] == 2


def test_unlistable_class_folder_is_reported_not_fatal(dataset, monkeypatch):
    from preproc.dataset import listing

    real_walk = os.walk

    def walk(top, onerror=None, **kwargs):
        if top.endswith("pneumonia"):
            onerror(PermissionError(13, "Permission denied", top))
            return iter(())
        return real_walk(top, onerror=onerror, **kwargs)

    monkeypatch.setattr(listing.os, "walk", walk)
    report = audit(dataset, workers=1)
    finding = next(f for f in report.findings if f.code == "unreadable-file")
    assert finding.files == ("pneumonia/",)
    assert finding.data["reasons"] == {"permission-denied": 1}
    assert report.summary["readable"] == 2


def test_a_png_whose_pixels_hold_one_value_is_not_an_error(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    write_png(root / "x.png", gray12(1, (3, 3)) * 0)
    report = audit(root, workers=1)
    assert report.summary["readable"] == 1
    assert "constant-image" in report.codes


def test_lossy_decode_is_its_own_finding(dataset):
    from builders import write_tiff

    cmyk = np.random.default_rng(0).integers(0, 256, (8, 8, 4)).astype(np.uint8)
    write_tiff(dataset / "normal" / "print.tif", cmyk, photometric="separated")
    report = audit(dataset, workers=1)
    lossy = next(f for f in report.findings if f.code == "lossy-decode")
    assert lossy.files == ("normal/print.tif",)
    assert lossy.data["reasons"] == {"lossy": 1}
    assert "unreadable-file" not in report.codes
    assert report.summary["lossy"] == 1 and report.summary["unreadable"] == 0
