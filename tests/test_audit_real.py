"""Audits of real files that ship with installed packages: pydicom's test files and
scikit-image's sample images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from preproc.auditing import audit
from preproc.io import DECODE_REASONS

pydicom = pytest.importorskip("pydicom")
KNOWN_REASONS = set(DECODE_REASONS) | {"missing-dependency", "decoder-error", "decoder-crash"}


@pytest.fixture(scope="module")
def dicom_report():
    root = Path(pydicom.__file__).parent / "data" / "test_files"
    return root, audit(root, workers=2)


def test_pydicom_test_files_audit_completes_with_reasons(dicom_report):
    _, report = dicom_report
    records = list(report.records())
    assert report.summary["files"] == len(records) > 100
    assert report.summary["readable"] > 50
    for rec in records:
        assert rec.ok or rec.error in KNOWN_REASONS, (rec.path, rec.error, rec.detail)
    reasons = next(f for f in report.findings if f.code == "unreadable-file").data["reasons"]
    assert reasons["no-pixel-data"] >= 10


def test_pydicom_stored_bits_come_from_bits_stored(dicom_report):
    root, report = dicom_report
    twelve_in_sixteen = [r for r in report.records()
                         if r.ok and r.dtype in ("uint16", "int16") and r.stored_bits == 12]
    assert len(twelve_in_sixteen) >= 3
    for rec in twelve_in_sixteen + [r for r in report.records() if r.ok][:10]:
        ds = pydicom.dcmread(root / rec.path, stop_before_pixels=True, force=True)
        assert rec.stored_bits == ds.BitsStored
        assert rec.stored_bits_declared
        assert rec.effective_bits <= max(ds.BitsStored, 1) or ds.BitsStored == 1


def test_pydicom_monochrome1_is_reported(dicom_report):
    _, report = dicom_report
    mono1 = [r for r in report.records() if r.photometric == "MONOCHROME1"]
    assert mono1
    assert report.summary["photometric"]["MONOCHROME1"] == len(mono1)
    assert any(row["photometric"] == "MONOCHROME1" for row in report.summary["breakdown"])


def test_pydicom_files_without_pixels_are_unreadable_not_fatal(dicom_report):
    root, report = dicom_report
    records = {r.path: r for r in report.records()}
    for name in ("rtplan.dcm", "rtstruct.dcm", "test-SR.dcm"):
        assert "PixelData" not in pydicom.dcmread(root / name, force=True)
        assert records[name].error == "no-pixel-data"
        assert records[name].error_code == "unreadable-file"


def test_skimage_sample_images(tmp_path):
    skimage = pytest.importorskip("skimage")
    root = Path(skimage.__file__).parent / "data"
    report = audit(root, workers=2)
    records = {r.path: r for r in report.records()}
    images = {n for n in os.listdir(root) if n.rsplit(".", 1)[-1] in ("png", "jpg", "tif", "gif")}
    assert set(records) == images  # .npz, .py, .txt and .xml files are not listed
    assert (records["astronaut.png"].dtype, records["astronaut.png"].channels) == ("uint8", 3)
    assert (records["camera.png"].dtype, records["camera.png"].channels) == ("uint8", 1)
    assert all(r.ok for r in records.values()), [(r.path, r.error) for r in records.values()
                                                  if not r.ok]
    assert "mixed-bit-depth" in report.codes  # gray, RGB and RGBA samples
    paths = report.write(tmp_path / "out")
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert {f["path"] for f in doc["files"]} == images
    assert doc["summary"]["readable"] == len(images)
    assert "astronaut.png" in paths["csv"].read_text(encoding="utf-8")
