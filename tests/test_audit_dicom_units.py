"""The audit measures DICOM values in the units the pipeline receives (``source.dicom``):
modality units (HU for CT), VOI windows, MONOCHROME1 inverted; headers keep the stored facts."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from builders import pydicom_file, write_dicom

from preproc.auditing import audit
from preproc.auditing.suggest import expect_yaml

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_modality_lut

RNG = np.random.default_rng(11)



def _config(tmp_path, source: str = "") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n" + source
                    + "stages: []\nbatches: {color_mode: grayscale, class_mode: binary, "
                    "target_size: [32, 32]}\n")
    return path


@pytest.fixture
def ct_small(tmp_path):
    (tmp_path / "data" / "ct").mkdir(parents=True)
    shutil.copy(pydicom_file("CT_small.dcm"), tmp_path / "data" / "ct" / "CT_small.dcm")
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    return apply_modality_lut(ds.pixel_array, ds)


def _only(report):
    (rec,) = list(report.records())
    return rec


def test_ct_small_in_hounsfield_units_passes_an_hu_range(tmp_path, ct_small):
    report = audit(_config(tmp_path, "  expect: {dtype: int16, range: [-1024, 3071], "
                                     "channels: 1}\n"), workers=1)
    assert "out-of-declared-range" not in report.codes
    rec = _only(report)
    assert (rec.units, rec.dtype, rec.value_dtype) == ("HU", "int16", "int32")
    assert rec.min == [float(ct_small.min())] and rec.max == [float(ct_small.max())]
    assert rec.mean == pytest.approx([float(ct_small.mean())])
    assert rec.stored_bits == 16 and rec.effective_bits == 13  # stored facts stay stored
    assert report.stats["units"] == "HU" and report.stats["min"] == [float(ct_small.min())]


def test_a_wrong_hu_range_fails_with_the_values_in_hu(tmp_path, ct_small):
    report = audit(_config(tmp_path, "  expect: {dtype: int16, range: [0, 4095], "
                                     "channels: 1}\n"), workers=1)
    (f,) = [f for f in report.findings if f.code == "out-of-declared-range"]
    assert f.data["observed"] == [float(ct_small.min()), float(ct_small.max())]  # -896, 1167


def test_the_suggestion_is_in_hu_and_passes_its_own_audit(tmp_path, ct_small):
    report = audit(_config(tmp_path), workers=1)
    block = report.suggestion["expect"]
    assert "bit_depth" not in block
    lo, hi = block["range"]
    assert lo <= ct_small.min() and ct_small.max() <= hi
    assert block["range"] == [-4096 - 1024, 4095 - 1024]  # 13 signed stored bits, intercept
    assert "HU" in expect_yaml(report.suggestion)
    again = audit(_config(tmp_path, f"  expect: {{dtype: int16, range: [{lo}, {hi}], "
                                    "channels: 1}\n"), workers=1)
    assert not {"out-of-declared-range", "bit-depth-mismatch"} & again.codes


def test_signed_stored_suggestion_is_not_one_bit_short(tmp_path, ct_small):
    """CT_small stores int16 values 128..2191: 13 signed bits, not 12 ([-2048, 2047])."""
    stored = "  dicom: {modality_lut: false}\n"
    report = audit(_config(tmp_path, stored), workers=1)
    rec = _only(report)
    assert rec.units == "stored" and rec.max == [2191.0] and rec.effective_bits == 13
    block = report.suggestion["expect"]
    assert block["range"] == [-4096, 4095]
    assert "bit_depth" not in block  # 13 would contradict BitsStored 16 of the header
    again = audit(_config(tmp_path, stored + "  expect: {dtype: int16, range: [-4096, 4095], "
                                             "channels: 1}\n"), workers=1)
    assert not {"out-of-declared-range", "bit-depth-mismatch"} & again.codes


def _cr(path: Path, stored: np.ndarray) -> Path:
    """A MONOCHROME1 CR radiograph as pydicom's CR1-CR3 store it (slope 0.684, intercept 200)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dicom(path, stored, bits_stored=12, photometric="MONOCHROME1",
                       rescale=(0.684, 200), tags={"Modality": "CR"})


def test_monochrome1_is_measured_inverted_and_kept_on_request(tmp_path):
    stored = RNG.integers(100, 3000, (16, 16)).astype(np.uint16)
    path = _cr(tmp_path / "data" / "cr" / "cr.dcm", stored)
    ds = pydicom.dcmread(path)
    modality = apply_modality_lut(ds.pixel_array, ds)
    lo, hi = 200.0, 4095 * 0.684 + 200
    inverted = _only(audit(_config(tmp_path), workers=1))
    assert inverted.units == "modality" and inverted.value_dtype == "float32"
    assert inverted.units_range == pytest.approx([lo, hi])
    assert inverted.min[0] == pytest.approx(lo + hi - modality.max(), rel=1e-6)
    assert inverted.max[0] == pytest.approx(lo + hi - modality.min(), rel=1e-6)
    kept = _only(audit(_config(tmp_path, "  dicom: {monochrome1: keep}\n"), workers=1))
    assert kept.min[0] == pytest.approx(modality.min(), rel=1e-6)
    # the image measures see what the model sees: inversion turns bright into dark
    assert inverted.brightness == pytest.approx(1 - kept.brightness, abs=1e-3)
    assert (inverted.level_lo, inverted.level_hi) == pytest.approx((lo, hi))


def test_voi_header_values_are_the_window_output(tmp_path):
    stored = RNG.integers(0, 4096, (8, 8)).astype(np.uint16)
    (tmp_path / "data" / "c").mkdir(parents=True)
    write_dicom(tmp_path / "data" / "c" / "a.dcm", stored, bits_stored=12,
                rescale=(1, -1024), tags={"Modality": "CT", "WindowCenter": 40,
                                           "WindowWidth": 400})
    report = audit(_config(tmp_path, "  dicom: {voi: header}\n"), workers=1)
    rec = _only(report)
    assert rec.units == "voi" and 0.0 <= rec.min[0] and rec.max[0] <= 1.0
    assert report.suggestion["expect"]["range"] == [0, 1]


def test_frames_all_measures_every_frame(tmp_path):
    frames = np.stack([np.full((4, 5), v, np.uint16) for v in (10, 20, 4000)])
    (tmp_path / "data" / "c").mkdir(parents=True)
    write_dicom(tmp_path / "data" / "c" / "mf.dcm", frames, frames=3, bits_stored=12)
    first = _only(audit(_config(tmp_path), workers=1))
    every = _only(audit(_config(tmp_path, "  dicom: {frames: all}\n"), workers=1))
    assert (first.min, first.max) == ([10.0], [10.0])
    assert (every.min, every.max, every.pixels) == ([10.0], [4000.0], 60)


def test_quick_audit_names_the_units_from_headers(tmp_path, ct_small):
    report = audit(_config(tmp_path), quick=True)
    rec = _only(report)
    assert rec.units == "HU" and rec.units_range == [-32768 - 1024, 32767 - 1024]
    assert report.suggestion["expect"]["range"] == [-33792, 31743]


def test_files_csv_says_the_units(tmp_path, ct_small):
    out = tmp_path / "out"
    audit(_config(tmp_path), workers=1).write(out)
    with open(out / "files.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["dtype"], row["stored_bits"], row["units"], row["value_dtype"]) == (
        "int16", "16", "HU", "int32")
    assert (row["min"], row["max"], row["units_range"]) == ("-896", "1167", "-5120;3071")


# ------------------------------------------------------------------ check: inverted twice


def _check_config(tmp_path, dicom: str = "") -> Path:
    path = tmp_path / "chk.yaml"
    path.write_text("version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n" + dicom
                    + "stages:\n  - rescale_intensity: {in_range: source}\n"
                    "  - invert: {max: 1}\n"
                    "batches: {color_mode: grayscale, class_mode: binary, "
                    "target_size: [32, 32]}\n")
    return path


def test_check_warns_when_invert_meets_data_inverted_at_decode(tmp_path):
    from preproc import check

    _cr(tmp_path / "data" / "cr" / "cr.dcm", RNG.integers(0, 4096, (8, 8)).astype(np.uint16))
    report = check(_check_config(tmp_path))
    (f,) = [f for f in report.findings if f.code == "inverted-twice"]
    assert f.severity.name == "WARNING" and f.stage == 1 and f.stage_name == "invert"
    assert f.location.line == 7 and f.files == ("cr/cr.dcm",)
    assert "monochrome1: keep" in f.hint and "remove the `invert` stage" in f.hint
    kept = check(_check_config(tmp_path, "  dicom: {monochrome1: keep}\n"))
    assert "inverted-twice" not in kept.codes


def test_no_inverted_twice_warning_for_monochrome2(tmp_path):
    from preproc import check

    (tmp_path / "data" / "c").mkdir(parents=True)
    write_dicom(tmp_path / "data" / "c" / "a.dcm", RNG.integers(0, 4096, (8, 8)).astype(np.uint16),
                bits_stored=12)
    assert "inverted-twice" not in check(_check_config(tmp_path)).codes


# --------------------------------------------------------------- thumbnails, contact sheet


def _image_of(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _halves(path: Path, left: int, right: int, **kw) -> Path:
    stored = np.full((16, 16), left, np.uint16)
    stored[:, 8:] = right
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_dicom(path, stored, bits_stored=12, **kw)


def test_finding_thumbnails_are_decoded_with_the_dicom_options(tmp_path):
    from preproc.auditing.thumbs import thumbnail_uri

    _halves(tmp_path / "data" / "cr" / "cr.dcm", 100, 3000, photometric="MONOCHROME1",
            rescale=(0.684, 200), tags={"Modality": "CR"})
    for dicom, bright_left in (("", True), ("  dicom: {monochrome1: keep}\n", False)):
        report = audit(_config(tmp_path, dicom), workers=1)
        rec = _only(report)
        options = report._collector.dicom.options.decoding()
        thumb = _image_of(thumbnail_uri(report.dataset, rec, options)).astype(int)
        assert (thumb[:, 0].mean() > thumb[:, -1].mean()) == bright_left


def test_contact_sheet_shows_the_pipeline_output_on_hu(tmp_path):
    from preproc.auditing.thumbs import contact_sheets

    # stored 24 -> -1000 HU (below the window: black); stored 1124 -> 100 HU: (100 + 160) / 400
    _halves(tmp_path / "data" / "ct" / "ct.dcm", 24, 1124, rescale=(1, -1024),
            tags={"Modality": "CT"})
    cfg = tmp_path / "w.yaml"
    cfg.write_text("version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n"
                   "stages:\n  - window: {center: 40, width: 400}\n"
                   "batches: {color_mode: grayscale, class_mode: binary, "
                   "target_size: [16, 16]}\n")
    report = audit(cfg, workers=1)
    html = contact_sheets(report)
    assert "What the model sees" in html and "class ct" in html
    uri = html.split("src='", 1)[1].split("'", 1)[0]
    sheet = _image_of(uri).astype(int)
    assert sheet[:, 0].max() == 0
    assert abs(sheet[:, -1].mean() - 260 / 400 * 255) <= 1
    report.write(tmp_path / "out")
    assert "What the model sees" in (tmp_path / "out" / "report.html").read_text()


def test_check_and_audit_name_the_units_of_a_ct_stored_in_hu_alike(tmp_path):
    """A CT whose rescale is the identity (slope 1, intercept 0) stores HU directly: the check's
    value spec and the audit's records must not call it HU on one side and modality on the
    other."""
    from preproc.analysis import check

    (tmp_path / "data" / "ct").mkdir(parents=True)
    array = RNG.integers(0, 2000, (8, 8)).astype(np.int16)
    write_dicom(tmp_path / "data" / "ct" / "a.dcm", array, signed=True, rescale=(1.0, 0.0),
                tags={"Modality": "CT"})
    cfg = _config(tmp_path)
    source = check(cfg).trace[0]["spec"]
    assert source["units"] == "HU", source
    assert _only(audit(cfg, workers=1)).units == "HU"
