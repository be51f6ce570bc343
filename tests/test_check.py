"""The static check: every example config gives exactly its codes; the rules of the value model."""

from __future__ import annotations

import json

import pytest

from preproc import check, load_config
from preproc.commands import main
from preproc.findings import Severity

from conftest import CONFIGS

EXPECTED = {
    "keras-8bit-rescale.yaml": set(),
    "keras-16bit-rescale.yaml": {"range-overflow"},
    "xray-12bit-in-16bit.yaml": {"range-underuse"},
    "clahe-then-rescale.yaml": {"compounded-scaling"},
    "imagenet-stats-on-raw.yaml": {"normalize-units"},
    "ct-window.yaml": set(),
    "xray-16bit-clahe.yaml": set(),
    "plugins-sharpen.yaml": set(),
    "window-after-rescale.yaml": {"degenerate-output"},
    "mammo-monochrome1.yaml": set(),
    "samplewise-then-gamma.yaml": {"unbounded-input"},
    "keras-8bit-augment.yaml": set(),
    "augment-fill-after-rescale.yaml": {"fill-out-of-range"},
}


def test_every_example_config_is_listed():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_config_codes(name):
    report = check(load_config(CONFIGS / name), sample=0)
    assert report.codes == EXPECTED[name]
    for finding in report.findings:
        assert finding.location.line is not None and finding.stage is not None
        assert finding.hint


def run_check(write_config, stages: str, expect: str = "{dtype: uint8}", extra: str = ""):
    path = write_config(f"version: 1\nsource:\n  expect: {expect}\nstages:\n{stages}{extra}")
    return check(load_config(path), sample=0)


def test_compounded_scaling_names_both_stages(write_config):
    report = run_check(write_config, "  - clahe: {}\n  - rescale: {factor: 1/255}\n")
    (f,) = report.findings
    assert f.code == "compounded-scaling" and f.stage == 1 and f.location.line == 6
    assert f.data["blame"] == {"stage": 0, "name": "clahe", "line": 5}
    assert "stage 0 `clahe`" in f.message and "stage 1 `rescale`" in f.message


def test_overflow_is_reported_once_not_cascading(write_config):
    report = run_check(
        write_config,
        "  - rescale: {factor: 1/255}\n  - normalize: {mean: 0.5, std: 0.25}\n",
        expect="{dtype: uint16}",
    )
    assert [f.code for f in report.findings] == ["range-overflow"]
    # the trace still shows what the data will really be
    assert report.trace[-2]["spec"]["range"] == [0.0, pytest.approx(65535 / 255, rel=1e-6)]


def test_clipping_stage_overflow_is_not_a_finding(write_config):
    report = run_check(write_config, "  - clip: {min: 10, max: 100}\n")
    assert report.codes == set()


def test_window_narrow_input_is_underuse_only_without_clip(write_config):
    # rescale_intensity with clip=false does not clip: a narrow input is underuse
    report = run_check(write_config, "  - rescale_intensity: {in_range: [0, 4095], clip: false}\n")
    assert report.codes == {"range-underuse"}


def test_stretching_stage_never_underused(write_config):
    report = run_check(write_config, "  - rescale: {factor: 1/255}\n  - clahe: {}\n",
                       expect="{dtype: uint8, range: [0, 20]}")
    assert report.codes == {"range-underuse"}  # the rescale, not the clahe
    assert report.findings[0].stage == 0


def test_normalize_units_raw_stats_on_scaled_data(write_config):
    report = run_check(write_config, "  - rescale: {factor: 1/255}\n  - normalize: {mean: 120, std: 60}\n")
    assert report.codes == {"normalize-units"}


def test_dtype_mismatch_and_expects_override(write_config):
    report = run_check(write_config, "  - gamma: {gamma: 2}\n")
    assert "dtype-mismatch" in report.codes
    report = run_check(write_config, "  - rescale: {factor: 2, expects: {range: [0, 10]}}\n")
    assert report.codes == {"range-overflow"}
    report = run_check(write_config, "  - rescale: {factor: 2, expects: {dtype: float32}}\n")
    assert report.codes == {"dtype-mismatch"}


def test_to_dtype_clipping_and_precision_loss(write_config):
    report = run_check(write_config, "  - to_dtype: {dtype: uint8}\n", expect="{dtype: uint16, bit_depth: 12}")
    assert report.codes == {"clipping"}  # saturation, not quantization
    report = run_check(write_config, "  - to_dtype: {dtype: uint8}\n", expect="{dtype: float32, range: [0, 1]}")
    assert report.codes == {"precision-loss"}  # a continuous input rounded to 2 levels
    report = run_check(write_config, "  - to_dtype: {dtype: uint8, scale: true}\n", expect="{dtype: uint16}")
    assert report.codes == {"precision-loss"}
    report = run_check(write_config, "  - to_dtype: {dtype: uint16, scale: true}\n")
    assert report.codes == set()


def test_unknown_source_skips_range_checks_and_says_so(write_config):
    path = write_config("version: 1\nstages:\n  - rescale: {factor: 1/255}\n")
    report = check(load_config(path), sample=0)
    assert report.codes == {"source-unknown"}
    assert not report.failed


def test_policy_ignore_severity_and_fail_on(write_config):
    base = "  - rescale: {factor: 1/65535}\n"
    expect = "{dtype: uint16, bit_depth: 12}"
    assert not run_check(write_config, base, expect).failed
    strict = run_check(write_config, base, expect, "checks: {severity: {range-underuse: error}}\n")
    assert strict.failed and strict.findings[0].severity.name == "ERROR"
    assert run_check(write_config, base, expect, "checks: {fail_on: warning}\n").failed
    ignored = run_check(write_config, base, expect, "checks: {ignore: [range-underuse], fail_on: info}\n")
    assert ignored.findings == [] and not ignored.failed


def test_cli_text_is_compiler_style_and_json_has_contract(capsys):
    cfg = CONFIGS / "clahe-then-rescale.yaml"
    assert main(["check", str(cfg), "--sample", "0"]) == 1
    out = capsys.readouterr().out
    assert ":9:5: error[compounded-scaling]:" in out and "hint:" in out
    assert main(["check", str(cfg), "--format", "json", "--sample", "0"]) == 1
    data = json.loads(capsys.readouterr().out)
    (f,) = data["findings"]
    assert set(f) >= {"code", "severity", "message", "hint", "stage", "stage_name", "location", "files"}
    assert f["location"]["line"] == 9 and f["location"]["path"] == "stages[1].rescale"
    assert [row["name"] for row in data["trace"]] == ["source", "batches", "clahe", "rescale"]


def test_cli_clean_config_exits_0(capsys):
    assert main(["check", str(CONFIGS / "keras-8bit-rescale.yaml")]) == 0
    assert "no findings" in capsys.readouterr().out


def test_cli_says_when_the_data_folder_is_missing(write_config, capsys):
    path = write_config("version: 1\nsource: {directory: nowhere, expect: {dtype: uint8}}\n")
    assert main(["check", str(path)]) == 0
    assert "does not exist; no file headers were sampled" in capsys.readouterr().err


@pytest.mark.parametrize("stage", [
    "normalize: {mean: 3.4028235677973366e+38, std: 3.4028235677973366e+38}",
    "normalize: {mean: 0, std: 5e-324}",
    "rescale: {factor: 1e308}",
    "rescale: {factor: 1, offset: 1e308}",
    "rescale: {factor: 1e-300}",
])
def test_output_leaving_float32_is_a_finding_not_an_exception(write_config, stage):
    report = run_check(write_config, f"  - {stage}\n", expect="{dtype: uint16, bit_depth: 12}")
    (f,) = [f for f in report.findings if f.code in ("non-finite-output", "degenerate-output")]
    assert f.stage == 0 and f.severity == Severity.ERROR and f.location.line == 5


@pytest.mark.parametrize(("top", "underused"), [
    (1023, True),    # uses 1023/4095, just under a quarter of the range
    (1000, True),    # exactly a quarter of [0, 4000] (see below) still counts as underuse
    (1024, False),   # just over a quarter
    (1365, False),   # a third
    (4095, False),
])
def test_underuse_threshold_is_a_quarter_of_the_range(write_config, top, underused):
    hi = 4000 if top == 1000 else 4095
    report = run_check(write_config,
                       f"  - rescale_intensity: {{in_range: [0, {hi}], clip: false}}\n",
                       expect=f"{{dtype: uint16, range: [0, {top}]}}")
    assert report.codes == ({"range-underuse"} if underused else set())
    if underused:
        (f,) = report.findings
        assert f.data == {"received": [0.0, float(top)], "expected": [0.0, float(hi)]}
        assert f"{top / hi:.1%} of the range" in f.message


def _twelve_bit_dataset(root, n, odd=None):
    """``n`` 12-bit PNGs (sBIT 12) in one class folder; ``odd`` names one that claims 10 bits."""
    import numpy as np
    from builders import write_png

    (root / "c").mkdir(parents=True)
    for i in range(n):
        arr = np.full((4, 4), i, np.uint16)
        arr.flat[0] = 4095
        write_png(root / "c" / f"{i:03d}.png", arr, sbit=10 if f"{i:03d}" == odd else 12)
    return root


def test_check_joins_sample_findings_and_stage_findings(tmp_path):
    _twelve_bit_dataset(tmp_path / "data", 3, odd="001")
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nsource:\n  directory: data\n"
                    "  expect: {dtype: uint16, bit_depth: 12}\n"
                    "stages:\n  - rescale: {factor: 1/255}\n")
    report = check(load_config(path))
    assert report.codes == {"bit-depth-mismatch", "mixed-bit-depth", "range-overflow"}
    assert check(load_config(path), sample=0).codes == {"range-overflow"}  # no sample: no header


def test_check_builds_the_source_from_headers_when_nothing_is_declared(tmp_path):
    _twelve_bit_dataset(tmp_path / "data", 3)
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nsource:\n  directory: data\n"
                    "stages:\n  - rescale: {factor: 1/255}\n")
    (f,) = check(load_config(path)).findings
    assert f.code == "range-overflow" and f.data["received"] == [0.0, 4095.0]
    assert check(load_config(path), sample=0).codes == {"source-unknown"}


def test_check_samples_64_headers_by_default(tmp_path):
    _twelve_bit_dataset(tmp_path / "data", 70, odd="005")
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nsource:\n  directory: data\n"
                    "  expect: {dtype: uint16, bit_depth: 12}\n")
    report = check(load_config(path))
    assert all("(sample of 64 of 70 files)" in f.message for f in report.findings)
    assert report.codes == set()  # the evenly spread sample of 64 misses file 005 (65 would not)
    assert check(load_config(path), sample=70).codes == {"bit-depth-mismatch", "mixed-bit-depth"}
