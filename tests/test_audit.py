"""End-to-end behaviour of `preproc.audit` on datasets built in code."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from builders import clean_dataset, config_for, dicom12, gray12, messy_dataset, rgb8, write_png

from preproc.auditing import audit
from preproc.findings import Severity


def by_code(report, code):
    found = [f for f in report.findings if f.code == code]
    assert found, f"no {code} in {sorted(report.codes)}"
    return found


@pytest.fixture
def messy(tmp_path):
    return messy_dataset(tmp_path / "data")


def test_clean_dataset_against_its_expect_has_no_findings(tmp_path):
    cfg = config_for(clean_dataset(tmp_path / "data"))
    report = audit(cfg, workers=1)
    assert report.findings == []
    assert report.exit_code() == 0
    assert report.summary["files"] == report.summary["readable"] == 8
    assert report.suggestion["expect"] == {"dtype": "uint16", "bit_depth": 12,
                                           "range": [0, 4095], "channels": 1}


def test_every_data_finding_of_a_messy_dataset_is_grouped(messy):
    report = audit(config_for(messy), workers=1)
    expected = {"unreadable-file", "bit-depth-mismatch", "mixed-bit-depth",
                "out-of-declared-range", "empty-class", "duplicate-image", "constant-image",
                "effective-bit-depth"}
    assert expected <= report.codes
    unreadable, = by_code(report, "unreadable-file")
    assert unreadable.count == 2
    assert unreadable.data["reasons"] == {"truncated": 1, "empty": 1}
    assert set(unreadable.files) == {"pneumonia/truncated.png", "pneumonia/zero.png"}
    assert unreadable.stage is None
    mismatches = {f.data["field"]: f for f in by_code(report, "bit-depth-mismatch")}
    assert set(mismatches) == {"dtype", "channels"}
    assert mismatches["dtype"].files == ("normal/rgb.png",)
    assert mismatches["dtype"].location.path == "source.expect.dtype"
    out_of_range, = by_code(report, "out-of-declared-range")
    assert out_of_range.files == ("normal/wide.png",)
    assert out_of_range.data["observed"] == [0, 60000]
    dup, = by_code(report, "duplicate-image")
    assert set(dup.files) == {"normal/copy.png", "pneumonia/000.png"}
    assert dup.data["cross_class_groups"] == 1
    assert by_code(report, "constant-image")[0].files == ("normal/flat.png",)
    assert by_code(report, "empty-class")[0].data["classes"] == ["empty"]
    assert report.exit_code() == 1


def test_bare_directory_reports_only_data_intrinsic_findings(messy):
    report = audit(messy, workers=1)
    assert report.config is None
    assert not report.codes & {"bit-depth-mismatch", "out-of-declared-range"}
    assert {"mixed-bit-depth", "duplicate-image", "unreadable-file"} <= report.codes


def test_bare_directory_lists_root_files_and_extensionless_dicom(tmp_path):
    root = clean_dataset(tmp_path / "data", per_class=1)
    write_png(root / "loose.png", gray12(50), sbit=12)
    dicom12(root / "normal" / "IM0001", 3)
    (root / "README").write_text("not an image")
    (root / "notes.txt").write_text("not an image")
    records = {r.path: r for r in audit(root, workers=1).records()}
    assert set(records) == {"loose.png", "normal/000.png", "normal/IM0001", "pneumonia/000.png"}
    assert records["loose.png"].cls is None
    assert records["normal/IM0001"].format == "dicom"
    assert records["normal/IM0001"].stored_bits == 12


def test_checks_policy_ignores_overrides_and_decides_the_exit_code(messy):
    checks = """\
        fail_on: warning
        ignore: [unreadable-file, bit-depth-mismatch, mixed-bit-depth, out-of-declared-range]
        severity: {duplicate-image: info, constant-image: info, empty-class: info,
                   label-conflict: info}
    """
    report = audit(config_for(messy, checks=checks), workers=1)
    assert not report.codes & {"unreadable-file", "bit-depth-mismatch"}
    assert all(f.severity == Severity.INFO for f in report.findings)
    assert report.exit_code() == 0
    strict = audit(config_for(messy, checks="fail_on: info\n", name="b.yaml"), workers=1)
    assert strict.exit_code() == 1


def test_class_imbalance_over_ten_to_one(tmp_path):
    root = tmp_path / "data"
    (root / "big").mkdir(parents=True)
    (root / "small").mkdir()
    for i in range(11):
        write_png(root / "big" / f"{i}.png", gray12(i, (4, 4)), sbit=12)
    write_png(root / "small" / "0.png", gray12(99, (4, 4)), sbit=12)
    imbalance, = by_code(audit(root, workers=1), "class-imbalance")
    assert imbalance.data["counts"] == {"big": 11, "small": 1}
    (root / "big" / "10.png").unlink()
    assert "class-imbalance" not in audit(root, workers=1).codes


def test_stored_bits_header_mismatch_found_by_quick_and_full(tmp_path):
    root = clean_dataset(tmp_path / "data", per_class=2)
    write_png(root / "normal" / "ten.png", gray12(5) >> 2, sbit=10)
    for quick in (True, False):
        report = audit(config_for(root), quick=quick, workers=1)
        mismatch, = by_code(report, "bit-depth-mismatch")
        assert mismatch.data == {"field": "stored_bits", "expected": 12, "found": [10]}
        assert mismatch.files == ("normal/ten.png",)


def test_quick_audit_reads_no_values(messy):
    report = audit(config_for(messy), quick=True, workers=1)
    assert report.stats is None
    assert not report.codes & {"duplicate-image", "constant-image", "out-of-declared-range"}
    assert {"unreadable-file", "bit-depth-mismatch"} <= report.codes
    assert all(r.min is None and r.hash is None for r in report.records())


def test_effective_bits_and_statistics_per_file(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    arr = gray12(1, (30, 30))
    write_png(root / "a.png", arr)
    rec, = audit(root, workers=1).records()
    assert rec.stored_bits == 16 and not rec.stored_bits_declared
    assert rec.effective_bits == 12
    assert rec.min == [0.0] and rec.max == [4095.0]
    assert rec.mean[0] == pytest.approx(arr.mean())
    assert rec.std[0] == pytest.approx(arr.std())
    assert rec.p_high[0] == pytest.approx(np.percentile(arr, 99.5))
    assert rec.frac_max[0] == pytest.approx((arr == 4095).mean())


def test_stats_file_matches_numpy_over_all_pixels(tmp_path):
    root = tmp_path / "data"
    (root / "c").mkdir(parents=True)
    arrays = [rgb8(i, (10 + i, 12, 3)) for i in range(3)]
    for i, arr in enumerate(arrays):
        write_png(root / "c" / f"{i}.png", arr)
    write_png(root / "c" / "gray.png", gray12(9))  # another group: excluded
    report = audit(root, workers=1)
    path = report.write_stats(tmp_path / "stats.json")
    doc = json.loads(path.read_text())
    pixels = np.concatenate([a.reshape(-1, 3) for a in arrays]).astype(np.float64)
    assert doc["format"] == "preproc-stats" and doc["version"] == 1 and doc["space"] == "raw"
    assert (doc["dtype"], doc["channels"], doc["files"], doc["excluded_files"]) == ("uint8", 3, 3, 1)
    assert doc["mean"] == pytest.approx(pixels.mean(axis=0).tolist())
    assert doc["std"] == pytest.approx(pixels.std(axis=0).tolist())
    assert doc["pixels"] == len(pixels)


def test_report_files_are_written_with_the_documented_columns(messy, tmp_path):
    report = audit(config_for(messy), workers=1)
    paths = report.write(tmp_path / "out")
    rows = list(csv.DictReader(paths["csv"].open(encoding="utf-8")))
    required = {"path", "class", "format", "dtype", "channels", "height", "width", "stored_bits",
                "effective_bits", "min", "max", "photometric", "error"}
    assert required <= set(rows[0])
    assert len(rows) == report.summary["files"] == 12
    by_path = {r["path"]: r for r in rows}
    assert by_path["pneumonia/zero.png"]["error"] == "empty"
    assert by_path["normal/000.png"]["error"] == ""
    assert by_path["normal/rgb.png"]["channels"] == "3"
    # the later file of a duplicate group names the first one in listing order; no other does
    assert {p: r["duplicate_of"] for p, r in by_path.items() if r["duplicate_of"]} == \
        {"pneumonia/000.png": "normal/copy.png"}
    assert by_path["pneumonia/000.png"]["hash"] == by_path["normal/copy.png"]["hash"] != ""
    assert (by_path["normal/flat.png"]["min"], by_path["normal/flat.png"]["max"]) == ("1000", "1000")
    doc = json.loads(paths["json"].read_text())
    assert (doc["schema"], doc["version"], doc["mode"]) == ("preproc-audit", 1, "full")
    assert {f["code"] for f in doc["findings"]} == report.codes
    assert len(doc["files"]) == 12
    assert sorted(p.name for p in paths["json"].parent.iterdir()) == \
        ["files.csv", "report.html", "report.json"]  # no temporary files left behind


def test_process_pool_gives_the_same_report_as_in_process(messy):
    one = audit(config_for(messy), workers=1).to_json()
    two = audit(config_for(messy), workers=2).to_json()
    for doc in (one, two):
        doc.pop("seconds")
    assert one == two
    files = {f["path"]: f for f in two["files"]}  # and both hold what the files were made of
    assert (files["normal/wide.png"]["min"], files["normal/wide.png"]["max"]) == ([0], [60000])
    assert (files["normal/flat.png"]["min"], files["normal/flat.png"]["max"]) == ([1000], [1000])
    assert files["pneumonia/zero.png"]["error"] == "empty"
    assert files["pneumonia/000.png"]["duplicate_of"] == "normal/copy.png"


def test_progress_reports_every_file(messy):
    seen = []
    audit(messy, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
