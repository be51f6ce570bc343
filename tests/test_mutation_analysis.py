"""The static check's promises that mutation testing found unpinned: require_check's error and
warning (message, findings, config, the line the warning points at), the ``on_error: skip``
severity rewrite, the repair step after a range finding, and the range rules' edge cases."""

from __future__ import annotations

import dis
import inspect
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from builders import rgb_dataset, write_dicom
from PIL import Image
from pydantic import BaseModel

from preproc import analysis
from preproc.analysis import CheckWarning, check, require_check, stage_findings
from preproc.errors import CheckFailed
from preproc.findings import Severity
from preproc.io.paths import display_path
from preproc.spec import Interval, ValueSpec
from preproc.stages.base import Stage, StageTraits

UNDERUSED = {"version": 1, "source": {"expect": {"dtype": "uint8"}},
             "stages": [{"rescale": {"factor": "1/65535"}}]}


def test_an_unknown_source_is_one_finding_at_source():
    report = check({"version": 1, "stages": [{"rescale": {"factor": 0.5}}]}, sample=0)
    assert report.codes == {"source-unknown"}


def test_a_failing_check_raises_with_its_text_findings_and_config_file(tmp_path):
    doc = {"version": 1, "source": {"expect": {"dtype": "uint16", "bit_depth": 12}},
           "stages": [{"rescale": {"factor": "1/255"}}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    expected = check(path, sample=0)
    with pytest.raises(CheckFailed) as info:
        require_check(path, sample=0)
    err = info.value
    assert str(err) == expected.format_text()
    assert err.findings == expected.findings and err.codes == {"range-overflow"}
    assert err.config == str(path)
    with pytest.raises(CheckFailed) as info:
        require_check(doc, sample=0)
    assert info.value.config is None  # a mapping has no file
    assert info.value.findings == check(doc, sample=0).findings


def _start(doc):
    """Stands for a flow: the function that calls require_check for the user."""
    return require_check(doc, sample=0)


def test_findings_below_fail_on_warn_once_at_the_line_that_started_the_flow():
    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(CheckWarning) as caught:
        report, src = _start(UNDERUSED)
    assert len(caught) == 1
    record = caught[0]
    assert str(record.message) == report.format_text() == check(UNDERUSED, sample=0).format_text()
    assert report.codes == {"range-underuse"}
    assert src.dtype == "uint8"
    # require_check runs inside a flow (stacklevel=3): the warning names the line that called
    # the flow, here the test's call of _start
    code = require_check.__code__
    if code.co_filename == analysis.__file__:
        assert (record.filename, record.lineno) == (__file__, line)
    else:  # mutation testing wraps require_check in two frames (an inner trampoline and the
        # outer wrapper whose code is require_check.__code__): the caller's caller of the body
        # is then that outer wrapper
        assert record.filename == code.co_filename != __file__
        assert record.lineno in {n for _, n in dis.findlinestarts(code)}


def test_a_passing_check_without_findings_warns_nothing(recwarn):
    doc = {"version": 1, "source": {"expect": {"dtype": "uint8"}},
           "stages": [{"rescale": {"factor": "1/255"}}]}
    report, _ = require_check(doc, sample=0)
    assert report.findings == [] and not recwarn.list
    assert report.trace == check(doc, sample=0).trace != []


def _unreadable_dataset(root):
    data = rgb_dataset(root, per_class=2)
    (data / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("CMYK", (8, 8)).save(data / "a" / "cmyk.jpg")  # lossy to read as gray or RGB
    return data


def test_on_error_skip_turns_unreadable_and_lossy_files_into_warnings(tmp_path):
    data = _unreadable_dataset(tmp_path / "d")
    doc: dict[str, Any] = {"version": 1, "source": {"directory": str(data)},
                           "batches": {"target_size": [8, 8]}}
    plain = check(doc)
    assert [(f.code, f.severity) for f in plain.findings] == [
        ("unreadable-file", Severity.ERROR), ("lossy-decode", Severity.ERROR)]
    with pytest.raises(CheckFailed):
        require_check(doc)
    doc["batches"]["on_error"] = "skip"
    with pytest.warns(CheckWarning) as caught:
        report, _ = require_check(doc)
    assert [(f.code, f.severity) for f in report.findings] == [
        ("unreadable-file", Severity.WARNING), ("lossy-decode", Severity.WARNING)]
    assert [f.message for f in report.findings] == [f.message for f in plain.findings]
    assert report.trace == plain.trace and report.trace != []
    assert report.fail_on == Severity.ERROR and not report.failed
    assert str(caught[0].message) == report.format_text()
    assert "warning[unreadable-file]" in report.format_text()


def test_on_error_skip_keeps_other_errors_and_the_fail_on_level(tmp_path):
    data = _unreadable_dataset(tmp_path / "d")
    doc = {"version": 1, "source": {"directory": str(data)},
           "stages": [{"rescale": {"factor": "1/65535"}}],  # range-underuse, a warning
           "batches": {"target_size": [8, 8], "on_error": "skip"},
           "checks": {"fail_on": "warning"}}
    with pytest.raises(CheckFailed) as info:
        require_check(doc)
    assert [(f.code, f.severity) for f in info.value.findings] == [
        ("unreadable-file", Severity.WARNING), ("lossy-decode", Severity.WARNING),
        ("range-underuse", Severity.WARNING)]
    assert "check FAILED" in str(info.value)


def test_on_error_skip_keeps_errors_of_other_codes(tmp_path):
    data = _unreadable_dataset(tmp_path / "d")
    doc = {"version": 1, "source": {"directory": str(data)},
           "stages": [{"rescale": {"factor": "1/15"}}],  # 8-bit data: range-overflow, an error
           "batches": {"target_size": [8, 8], "on_error": "skip"}}
    with pytest.raises(CheckFailed) as info:
        require_check(doc)
    assert [(f.code, f.severity) for f in info.value.findings] == [
        ("unreadable-file", Severity.WARNING), ("lossy-decode", Severity.WARNING),
        ("range-overflow", Severity.ERROR)]


def test_require_check_reads_64_headers_by_default(tmp_path):
    folder = tmp_path / "d" / "a"
    folder.mkdir(parents=True)
    for i in range(70):
        (folder / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\nbad")
    with pytest.raises(CheckFailed) as info:
        require_check({"version": 1, "source": {"directory": str(tmp_path / "d")}})
    (finding,) = info.value.findings
    assert finding.message == (
        "64 of 64 files could not be read: truncated (64) (sample of 64 of 70 files)")


def test_require_check_checks_the_pipeline_asked_for(tmp_path):
    doc = {"version": 1, "source": {"expect": {"dtype": "uint8", "range": [0, 1]}},
           "stages": [{"brightness": {"range": [0.9, 1.0]}}, {"gamma": {"gamma": 0.8}}]}
    require_check(doc, sample=0)  # training: brightness makes float32, gamma accepts it
    with pytest.raises(CheckFailed) as info:
        require_check(doc, sample=0, mode="evaluation")
    assert info.value.codes == {"dtype-mismatch"}


def test_a_repaired_stage_passes_on_what_it_expects_for_this_spec():
    """clahe's expected input depends on the spec (float data: [0, 1]); after its
    range-overflow the next stages see [0, 1], so nothing else is reported."""
    doc = {"version": 1, "source": {"expect": {"dtype": "float32", "range": [0, 2]}},
           "stages": [{"clahe": {}}, {"clip": {"min": 0, "max": 1}}]}
    report = check(doc, sample=0)
    assert [(f.code, f.stage) for f in report.findings] == [("range-overflow", 0)]
    assert report.findings[0].message == (
        "stage 0 `clahe` expects [0, 1] but receives [0, 2] from the source")


def test_zero_one_integer_data_is_told_to_drop_the_rescale():
    doc = {"version": 1, "source": {"expect": {"dtype": "uint8", "range": [0, 1]}},
           "stages": [{"rescale": {"factor": "1/255"}}]}
    (finding,) = check(doc, sample=0).findings
    assert finding.code == "range-underuse"
    assert finding.hint == "the data is 8-bit: its values already lie in [0, 1], so drop the rescale"


class _Params(BaseModel):
    pass


class _Plugin(Stage):
    """A plugin stage whose expected input and traits are set per test."""

    name: ClassVar[str] = "plugin"
    Params = _Params

    def __init__(self, expected: Interval | None, traits: StageTraits) -> None:
        object.__setattr__(self, "_expected", expected)
        object.__setattr__(self, "_traits", traits)
        super().__init__({})

    def traits(self) -> StageTraits:
        return self._traits

    def implied_input(self, spec: ValueSpec) -> Interval | None:
        return self._expected

    def infer(self, spec: ValueSpec) -> ValueSpec:
        return spec


def _spec(lo, hi):
    return ValueSpec(dtype="float32", interval=Interval(lo, hi), known=True)


def test_an_unbounded_expected_input_is_never_under_used():
    stage = _Plugin(Interval(0, float("inf")), StageTraits())
    assert stage_findings(stage, _spec(0, 1)) == []


def test_a_stretching_stage_is_never_under_used():
    stage = _Plugin(Interval(0, 1000), StageTraits(stretches=True))
    assert stage_findings(stage, _spec(0, 1)) == []
    plain = _Plugin(Interval(0, 1000), StageTraits())
    assert [f.code for f in stage_findings(plain, _spec(0, 1))] == ["range-underuse"]


# --- every finding names the config file it came from ------------------------------------------


def _write(tmp_path, doc, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if isinstance(doc, dict) else doc)
    return path


PIPELINES = """\
version: 1
source:
  expect: {dtype: uint8, range: [0, 1]}
stages:
  - brightness: {range: [0.9, 1.0]}  # float32 in training only
  - STAGE
batches:
  validation_split: 0.2
"""


@pytest.mark.parametrize(("stage", "code", "pipeline"), [
    ("gamma: {gamma: 0.8}", "dtype-mismatch", "evaluation"),  # uint8 reaches it in evaluation
    ("rescale: {factor: 1/65535}", "compounded-scaling", "training"),  # after brightness
])
def test_a_finding_of_one_pipeline_names_the_config_file(tmp_path, stage, code, pipeline):
    path = _write(tmp_path, PIPELINES.replace("STAGE", stage))
    found = [(f.code, f.data.get("pipeline"), f.location.file)
             for f in check(path, sample=0).findings]
    assert (code, pipeline, display_path(path)) in found
    assert all(file == display_path(path) for _, _, file in found), found


def test_an_arithmetic_finding_names_the_config_file_and_stage_line(tmp_path):
    doc = {"version": 1, "source": {"expect": {"dtype": "uint16"}},
           "stages": [{"rescale": {"factor": 1e308}}]}
    path = _write(tmp_path, doc)
    (finding,) = check(path, sample=0).findings
    assert finding.code == "non-finite-output"
    assert (finding.location.file, finding.location.line) == (display_path(path), 5)


def test_jpeg_draft_is_a_finding_at_its_key(tmp_path):
    doc = {"version": 1, "source": {"expect": {"dtype": "uint8"}},
           "stages": [{"rescale": {"factor": "1/255"}}],
           "batches": {"decode": {"jpeg_draft": True}}}
    path = _write(tmp_path, doc)
    (finding,) = check(path, sample=0).findings
    assert finding.code == "jpeg-draft" and finding.severity == Severity.INFO
    assert finding.message == (
        "batches.decode.jpeg_draft: JPEGs are decoded at 1/2, 1/4 or 1/8 scale before the "
        "resize, so batches differ slightly from Keras' (and from jpeg_draft: false)")
    assert finding.hint == ("keep it for speed on large JPEGs; set it to false where batches "
                            "must equal Keras'")
    assert (finding.location.file, finding.location.path) == (
        display_path(path), "batches.decode.jpeg_draft")
    doc["batches"]["decode"]["jpeg_draft"] = False
    assert check(doc, sample=0).findings == []


def _dicom_data(tmp_path, photometric, **kw):
    pytest.importorskip("pydicom")
    folder = tmp_path / "data" / "c"
    folder.mkdir(parents=True)
    stored = np.random.default_rng(3).integers(0, 4096, (8, 8)).astype(np.uint16)
    write_dicom(folder / "a.dcm", stored, bits_stored=12, photometric=photometric, **kw)


def _dicom_config(tmp_path, dicom, stages):
    return _write(tmp_path, "version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n"
                  + dicom + "stages:\n" + stages + "batches: {color_mode: grayscale, "
                  "class_mode: binary, target_size: [8, 8]}\n")


def test_dicom_stored_units_finding_names_the_config_file(tmp_path):
    _dicom_data(tmp_path, "MONOCHROME2", rescale=(1, -1024), tags={"Modality": "CT"})
    path = _dicom_config(tmp_path, "  dicom: {modality_lut: false}\n",
                         "  - window: {center: 40, width: 400}\n")
    (f,) = [f for f in check(path).findings if f.code == "dicom-stored-units"]
    assert (f.stage, f.location.file, f.location.line) == (0, display_path(path), 7)
    assert "RescaleIntercept -1024" in f.message


def test_inverted_twice_finding_names_the_config_file(tmp_path):
    _dicom_data(tmp_path, "MONOCHROME1", rescale=(0.684, 200), tags={"Modality": "CR"})
    path = _dicom_config(tmp_path, "", "  - rescale_intensity: {in_range: source}\n"
                                       "  - invert: {max: 1}\n")
    (f,) = [f for f in check(path).findings if f.code == "inverted-twice"]
    assert (f.stage, f.location.file, f.location.line) == (1, display_path(path), 7)
    assert f.files == ("c/a.dcm",)
