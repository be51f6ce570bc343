"""The audit on real DICOM files from pydicom's test data: header columns, confounds, lossy
sources, multi-frame files, MONOCHROME1 mixes, patient leakage and missing decoders."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from builders import pydicom_file

from preproc.auditing import audit
from preproc.commands import main
from preproc.dataset.dicom_tally import (
    DicomOptions,
    DicomTally,
    PatientIds,
    corrected_cramers_v,
    judge_confound,
)
from preproc.dataset.records import read_header
from preproc.findings import Severity

pydicom = pytest.importorskip("pydicom")



def copy_ct(path: Path, *, patient: str = "1CT1", **tags) -> Path:
    """CT_small with some header elements changed."""
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.PatientID = patient
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def by_code(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, [f.code for f in report.findings]
    return found[0]


@pytest.fixture
def mono_split(tmp_path):
    """Class a: 3 MONOCHROME1 CTs; class b: 4 MONOCHROME2 CTs; otherwise identical headers."""
    root = tmp_path / "data"
    for i in range(3):
        copy_ct(root / "a" / f"{i}.dcm", patient=f"A{i}", PhotometricInterpretation="MONOCHROME1")
    for i in range(4):
        copy_ct(root / "b" / f"{i}.dcm", patient=f"B{i}")
    return root


@pytest.mark.parametrize("quick", [True, False])
def test_photometric_that_separates_the_classes_is_an_error_with_its_table(mono_split, quick):
    report = audit(mono_split, quick=quick, workers=1)
    confound = by_code(report, "class-confound")
    assert confound.severity == Severity.ERROR
    assert "MONOCHROME1: class a 3/3, class b 0/4" in confound.message
    assert confound.data["property"] == "photometric"
    assert confound.data["separates"] is True
    assert confound.data["table"]["MONOCHROME1"] == {"a": 3, "b": 0}
    assert confound.data["table"]["MONOCHROME2"] == {"a": 0, "b": 4}


def test_a_partial_split_is_a_warning_and_a_balanced_one_is_clean(tmp_path):
    root = tmp_path / "data"
    for i in range(4):  # a: 3 of 4 from vendor X; b: none
        copy_ct(root / "a" / f"{i}.dcm", Manufacturer="X" if i < 3 else "GE MEDICAL SYSTEMS")
        copy_ct(root / "b" / f"{i}.dcm")
    report = audit(root, quick=True)
    confound = by_code(report, "class-confound")
    assert confound.severity == Severity.WARNING and confound.data["property"] == "manufacturer"
    for i in range(4):  # now b has as many X files: no association left
        copy_ct(root / "b" / f"{i}.dcm", Manufacturer="X" if i < 3 else "GE MEDICAL SYSTEMS")
    assert "class-confound" not in audit(root, quick=True).codes


def test_confound_judgement():
    assert judge_confound({"M1": {"a": 3}, "M2": {"b": 4}})[1] is True
    assert judge_confound({"M1": {"a": 2, "b": 2}, "M2": {"a": 2, "b": 2}}) is None
    assert judge_confound({"M1": {"a": 1}, "M2": {"a": 3, "b": 4}}) is None  # weak
    # unique values separate anything and say nothing
    assert judge_confound({f"{i}x{i}": {"a" if i % 2 else "b": 1} for i in range(8)}) is None
    assert judge_confound({"only": {"a": 3, "b": 3}}) is None
    assert corrected_cramers_v(8.0, 8, 2, 2) == pytest.approx(1.0)
    assert corrected_cramers_v(0.0, 8, 2, 2) == 0.0


@pytest.mark.parametrize("quick", [True, False])
def test_dicom_columns_in_csv_and_json_with_hashed_patient_ids(tmp_path, quick):
    root = tmp_path / "data"
    copy_ct(root / "a" / "1.dcm", patient="SECRET-7")
    copy_ct(root / "a" / "2.dcm", patient="SECRET-7")
    shutil.copy(pydicom_file("MR_small.dcm"), root / "a" / "mr.dcm")
    report = audit(root, quick=quick, workers=1)
    paths = report.write(tmp_path / "out")
    rows = {r["path"]: r for r in csv.DictReader(paths["csv"].open(encoding="utf-8"))}
    ct = rows["a/1.dcm"]
    assert (ct["modality"], ct["manufacturer"], ct["photometric"]) == \
        ("CT", "GE MEDICAL SYSTEMS", "MONOCHROME2")
    assert (ct["transfer_syntax"], ct["lossy"]) == ("1.2.840.10008.1.2.1", "false")
    assert (ct["slope"], ct["intercept"], ct["frames"]) == ("1", "-1024", "1")
    assert ct["pixel_spacing"] == "0.661468;0.661468"
    assert rows["a/mr.dcm"]["modality"] == "MR"
    assert ct["patient_id"].startswith("pt-") and ct["patient_id"] == rows["a/2.dcm"]["patient_id"]
    assert rows["a/mr.dcm"]["patient_id"] != ct["patient_id"]
    for path in paths.values():
        assert "SECRET-7" not in path.read_text(encoding="utf-8")
    files = json.loads(paths["json"].read_text(encoding="utf-8"))["files"]
    assert {f["patient_id"] for f in files if f["path"] != "a/mr.dcm"} == {ct["patient_id"]}


def test_patient_ids_are_kept_on_request_and_hashes_change_between_reports(tmp_path):
    root = tmp_path / "data"
    copy_ct(root / "a" / "1.dcm", patient="SECRET-7")
    kept = {r.path: r for r in audit(root, quick=True, show_patient_ids=True).records()}
    assert kept["a/1.dcm"].patient_id == "SECRET-7"
    assert main(["audit", str(root), "--quick", "--show-patient-ids",
                 "--report", str(tmp_path / "shown")]) == 0
    assert "SECRET-7" in (tmp_path / "shown" / "files.csv").read_text(encoding="utf-8")
    one, two = PatientIds(), PatientIds()
    assert one("SECRET-7") == one("SECRET-7") != two("SECRET-7")
    assert one(None) is None and PatientIds(show=True)("x") == "x"


def test_lossy_jpeg2000_is_a_lossy_source_from_headers(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("693_J2KI.dcm"), root / "a" / "j2k.dcm")
    copy_ct(root / "a" / "flagged.dcm", LossyImageCompression="01")  # uncompressed now, lossy once
    copy_ct(root / "a" / "clean.dcm")
    report = audit(root, quick=True)
    lossy = by_code(report, "lossy-source")
    assert lossy.count == 2 and set(lossy.files) == {"a/j2k.dcm", "a/flagged.dcm"}
    assert lossy.severity == Severity.WARNING
    assert lossy.data["reasons"] == {"JPEG 2000 Image Compression": 1,
                                     "LossyImageCompression 01": 1}
    records = {r.path: r for r in report.records()}
    assert records["a/j2k.dcm"].lossy and not records["a/clean.dcm"].lossy


def test_lossless_only_jpeg2000_is_not_lossy(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("MR_small_jp2klossless.dcm"), root / "a" / "mr.dcm")
    assert "lossy-source" not in audit(root, quick=True).codes


def test_multi_frame_files_count_the_dropped_frames(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("rtdose.dcm"), root / "a" / "dose.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), root / "a" / "ct.dcm")
    finding = by_code(audit(root, quick=True), "multi-frame")
    assert finding.files == ("a/dose.dcm",)
    assert finding.data == {"files": 1, "dropped_frames": 14}
    rec, _ = read_header(str(root), "a/dose.dcm", "a")
    everything = DicomTally(DicomOptions(frames="all"), "data")
    everything.add(rec)
    assert "multi-frame" not in {f.code for f in everything.findings()}


def _tally_of(root: Path, items, **options) -> set[str]:
    tally = DicomTally(DicomOptions(**options), str(root))
    for rel, cls in items:
        tally.add(read_header(str(root), rel, cls)[0])
    return tally


def test_real_monochrome1_radiograph_mixed_with_monochrome2_when_kept(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("dicomdirtests/77654033/CR1/6154"), root / "a" / "cr.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), root / "a" / "ct.dcm")
    items = [("a/cr.dcm", "a"), ("a/ct.dcm", "a")]
    kept = _tally_of(root, items, monochrome1="keep").findings()
    mixed = [f for f in kept if f.code == "mixed-photometric"]
    assert len(mixed) == 1 and mixed[0].severity == Severity.ERROR
    assert mixed[0].data == {"class": "a", "MONOCHROME1": 1, "MONOCHROME2": 1}
    inverted = _tally_of(root, items).findings()
    assert "mixed-photometric" not in {f.code for f in inverted}


def test_monochrome1_keep_is_read_from_the_config_when_it_has_the_key():
    class Dicom:
        monochrome1, frames = "keep", "all"

    class Source:
        dicom = Dicom()

    class Batches:
        validation_split, split_by = 0.25, None

    class Cfg:
        source, batches = Source(), Batches()

    assert DicomOptions.from_config(Cfg()) == DicomOptions("keep", "all", 0.25, None)
    Source.dicom = None
    assert DicomOptions.from_config(Cfg()).monochrome1 == "invert"


def test_per_file_split_leaking_patients_is_an_error_in_audit(tmp_path, write_config):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(4):  # patient P0 holds the first two files, P1 the last two
            copy_ct(root / cls / f"{i}.dcm", patient=f"{cls}-P{i // 2}")
    leaky = write_config("version: 1\nsource: {directory: data, extensions: [dcm]}\n"
                         "batches: {validation_split: 0.25}\n", "leaky.yaml")
    leak = by_code(audit(leaky, quick=True), "split-leakage")
    assert leak.severity == Severity.ERROR  # first file of each class: validation, second: training
    assert leak.data["patients"] == 2 and leak.data["files"] == 4
    assert all(p.startswith("pt-") for p in leak.data["examples"])
    clean = write_config("version: 1\nsource: {directory: data, extensions: [dcm]}\n"
                         "batches: {validation_split: 0.5}\n", "clean.yaml")
    assert "split-leakage" not in audit(clean, quick=True).codes  # the cut falls between patients
    grouped = write_config("version: 1\nsource: {directory: data, extensions: [dcm]}\n"
                           "batches: {validation_split: 0.25, split_by: {dicom: PatientID}}\n",
                           "grouped.yaml")
    assert "split-leakage" not in audit(grouped, quick=True).codes


def test_check_warns_about_a_per_file_split_of_repeated_patients(tmp_path, write_config):
    from preproc import check, load_config

    root = tmp_path / "data"
    for i in range(4):
        copy_ct(root / "a" / f"{i}.dcm", patient="P0")
    cfg = write_config("version: 1\nsource: {directory: data, extensions: [dcm]}\n"
                       "batches: {validation_split: 0.25}\n")
    leak = [f for f in check(load_config(cfg)).findings if f.code == "split-leakage"]
    assert len(leak) == 1 and leak[0].severity == Severity.WARNING
    assert "sample" in leak[0].message


def _jpeg_ls_decoder_missing() -> bool:
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import JPEGLSNearLossless

    return not get_decoder(JPEGLSNearLossless).is_available


@pytest.mark.skipif(not _jpeg_ls_decoder_missing(), reason="a JPEG-LS decoder is installed")
def test_missing_decoder_names_the_pip_command_everywhere(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("JPEGLSNearLossless_16.dcm"), root / "a" / "jls.dcm")
    code = main(["audit", str(root), "--workers", "1", "--report", str(tmp_path / "out")])
    assert code == 1
    out = capsys.readouterr().out
    assert "unreadable-file" in out and "pip install pylibjpeg pylibjpeg-libjpeg" in out
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "a/jls.dcm" in page and "pip install pylibjpeg pylibjpeg-libjpeg" in page
    rows = list(csv.DictReader((tmp_path / "out" / "files.csv").open(encoding="utf-8")))
    assert rows[0]["error"] == "compressed-unsupported" and "pip install" in rows[0]["detail"]
    assert rows[0]["lossy"] == "true"  # its header still says what the file is


def test_html_shows_the_dicom_properties_per_class(mono_split, tmp_path):
    paths = audit(mono_split, quick=True).write(tmp_path / "out")
    page = paths["html"].read_text(encoding="utf-8")
    assert "DICOM properties per class" in page
    assert "<td>MONOCHROME1</td><td class='n'>3</td><td class='n'>0</td>" in page


def test_the_config_keys_drive_the_rules_end_to_end(tmp_path, write_config):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    shutil.copy(pydicom_file("dicomdirtests/77654033/CR1/6154"), root / "a" / "cr.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), root / "a" / "ct.dcm")
    shutil.copy(pydicom_file("rtdose.dcm"), root / "a" / "dose.dcm")
    base = "version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n  dicom: {}\n"
    kept = audit(write_config(base.format("{monochrome1: keep}"), "kept.yaml"), quick=True)
    assert {"mixed-photometric", "multi-frame"} <= kept.codes
    every = audit(write_config(base.format("{frames: all}"), "all.yaml"), quick=True)
    assert not {"mixed-photometric", "multi-frame"} & every.codes
