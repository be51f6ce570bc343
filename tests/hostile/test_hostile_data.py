"""Hostile data: NaN and infinity are reported, and no file name or header string can crash a
report or forge a line on a terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout

import numpy as np
import tifffile
from hostile_kit import env
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from preproc.errors import printable

CONTROL = {chr(c) for c in (*range(0x20), 0x7F)} - {"\n"}


def tiff(path, array):
    buf = io.BytesIO()
    tifffile.imwrite(buf, array)
    with open(os.fsencode(path), "wb") as handle:
        handle.write(buf.getvalue())
    return path


def nan_dataset(root):
    a = root / "a"
    a.mkdir(parents=True)
    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    x[0, 0], x[1, 1], x[2, 2] = np.nan, np.inf, -np.inf
    tiff(a / "some.tif", x)
    tiff(a / "all.tif", np.full((16, 16), np.nan, np.float32))
    return root


def test_audit_reports_non_finite_values_with_counts_and_still_writes_html(tmp_path):
    from preproc.auditing import audit

    data = nan_dataset(tmp_path / "data")
    report = audit(data, workers=1)
    (finding,) = [f for f in report.findings if f.code == "non-finite-values"]
    assert finding.severity.name == "ERROR" and report.failed
    assert finding.count == 2 and finding.data["pixels"] == 3 + 256
    paths = report.write(tmp_path / "rep")
    assert (tmp_path / "rep" / "report.html").exists(), paths
    assert "nan" not in (report.suggested_yaml() or "").lower()


def test_run_reports_non_finite_values_in_a_batch(tmp_path):
    from preproc.batches.flow import flow
    from preproc.config import load_config

    data = nan_dataset(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"version: 1\nsource: {{directory: {data}}}\nstages: []\n"
                   "batches: {target_size: [16, 16], color_mode: grayscale, batch_size: 2,"
                   " shuffle: false, workers: 0}\n")
    with flow(load_config(cfg), guard="record") as it:
        for _ in it:
            pass
    found = [f for f in it.findings if f.code == "non-finite-values"]
    assert found and found[0].data["values"] == 3 + 256


NAMES = st.binary(min_size=1, max_size=12).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b".."))


def _forged(text: str) -> list[str]:
    return [c for c in text if c in CONTROL and c != "\t"]


@settings(max_examples=int(os.environ.get("PREPROC_HOSTILE_EXAMPLES", "8")))
@given(name=NAMES)
@example(name=b"bad\xff\xfename")
@example(name=b"evil\x1b[2J\x07\ncheck passed")
@example(name=b"\xe2\x80\xaeright-to-left")
def test_any_file_name_is_shown_escaped_in_every_audit_output(tmp_path_factory, name):
    from preproc.auditing import audit
    from preproc.auditing.html import render_html
    from preproc.auditing.terminal import print_report

    root = tmp_path_factory.mktemp("names")
    (root / "a").mkdir()
    bad = os.path.join(os.fsencode(root / "a"), name + b".tif")
    with open(bad, "wb") as handle:
        handle.write(b"II*\x00 not really a tiff")  # unreadable: the name lands in a finding
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "a" / "ok.png")
    report = audit(root, workers=1)
    out = io.StringIO()
    with redirect_stdout(out):
        print_report(report)
    text = out.getvalue()
    assert not _forged(text), text
    shown = printable(os.fsdecode(name))
    assert shown in text
    page = render_html(report)
    assert not _forged(page.replace("\n", ""))
    written = report.write(root.parent / (root.name + "-rep"))
    for path in written.values():
        data = open(path, "rb").read()
        data.decode("utf-8")  # valid UTF-8 whatever the name
    json.loads(open(written["json"], encoding="utf-8").read())


def test_run_out_and_audit_report_with_a_non_utf8_name_exit_cleanly(tmp_path):
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    for name in (b"bad\xff\xfe.png", b"evil\x1b[2J\x07\ncheck passed.png", b"ok.png"):
        buf = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
        with open(os.path.join(os.fsencode(data / "a"), name), "wb") as handle:
            handle.write(buf.getvalue())
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"version: 1\nsource: {{directory: {data}}}\nstages: []\n"
                   "batches: {target_size: [8, 8], color_mode: grayscale, batch_size: 2}\n")
    for args in (["audit", str(data), "--report", str(tmp_path / "rep")],
                 ["run", str(cfg), "--out", str(tmp_path / "out")]):
        res = subprocess.run([sys.executable, "-m", "preproc", *args], env=env(),
                             capture_output=True, timeout=120)
        assert res.returncode in (0, 1), res.stderr
        assert b"internal error" not in res.stderr + res.stdout
        assert b"\x1b" not in res.stdout + res.stderr and b"\x07" not in res.stdout + res.stderr
    assert (tmp_path / "rep" / "report.html").exists()
    assert json.loads((tmp_path / "out" / "index.json").read_text())


def test_printable_escapes_the_class():
    assert printable("plain name.png") == "plain name.png"
    assert printable("bad\udcff.png") == "bad\\xff.png"
    assert printable("a\x1b[2Jb\x07\nc") == "a\\x1b[2Jb\\x07\\x0ac"
    assert printable("\u202eevil") == "\\u202eevil"
    assert printable("été 東京") == "été 東京"
