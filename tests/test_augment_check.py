"""The check covers both pipelines a config runs: training (random stages) and evaluation."""

from __future__ import annotations

import pytest

from preproc.analysis import check
from preproc.config import load_config
from preproc.errors import CheckFailed
from preproc.io.paths import display_path

TRAINING_ONLY = """\
version: 1
source:
  expect: {dtype: uint8}
stages:
  - random_affine: {rotation: 20}
  - brightness: {range: [0.5, 1.5]}   # training only: the rescale then gets [0, 382.5]
  - rescale: {factor: 1/255}
batches:
  validation_split: 0.2
"""

EVALUATION_ONLY = """\
version: 1
source:
  expect: {dtype: uint8, range: [0, 1]}   # masks
stages:
  - brightness: {range: [0.9, 1.0]}       # promotes to float32 in training only
  - gamma: {gamma: 0.8}                   # needs float: uint8 reaches it in evaluation
batches:
  validation_split: 0.2
"""


def _load(write_config, text):
    return load_config(write_config(text))


def _codes(report):
    return [(f.code, f.stage, f.data.get("pipeline")) for f in report.findings]


def test_a_finding_of_the_training_pipeline_says_so(write_config):
    report = check(_load(write_config, TRAINING_ONLY), sample=0)
    assert _codes(report) == [("range-overflow", 2, "training")]
    finding = report.findings[0]
    assert finding.message.endswith("[training pipeline only]")
    assert finding.to_json()["data"]["pipeline"] == "training"


def test_a_finding_of_the_evaluation_pipeline_says_so(write_config):
    report = check(_load(write_config, EVALUATION_ONLY), sample=0)
    assert _codes(report) == [("dtype-mismatch", 1, "evaluation")]
    assert "receives uint8 [evaluation pipeline only: validation subset" in report.findings[0].message


def test_a_finding_of_both_pipelines_is_reported_once_untagged(write_config):
    text = TRAINING_ONLY.replace("brightness: {range: [0.5, 1.5]}", "flip: {}").replace(
        "1/255", "1/65535")  # under-used range in both pipelines
    report = check(_load(write_config, text), sample=0)
    assert _codes(report) == [("range-underuse", 2, None)]
    assert "pipeline only" not in report.findings[0].message


def test_without_split_only_the_mode_pipeline_is_checked(write_config):
    text = EVALUATION_ONLY.replace("validation_split: 0.2", "validation_split: 0.0")
    assert check(_load(write_config, text), sample=0).findings == []
    evaluation = check(_load(write_config, text + "  mode: evaluation\n"), sample=0)
    assert [(f.code, f.data.get("pipeline")) for f in evaluation.findings] == [
        ("dtype-mismatch", None)]  # one pipeline runs: nothing to tell apart
    asked = check(_load(write_config, text), sample=0, mode="evaluation")
    assert ("dtype-mismatch", 1, "evaluation") in _codes(asked)


def test_flow_checks_the_pipeline_it_runs(tmp_path, write_config):
    from preproc.batches.flow import flow

    text = EVALUATION_ONLY.replace("validation_split: 0.2", "validation_split: 0.0").replace(
        "source:\n", f"source:\n  directory: {tmp_path}\n")
    cfg = _load(write_config, text)
    with pytest.raises(CheckFailed, match="dtype-mismatch"):
        flow(cfg, mode="evaluation", workers=0)


def test_size_mismatch_between_pipelines_is_an_error(write_config):
    text = """\
version: 1
source:
  expect: {dtype: uint8}
stages:
  - center_crop: {size: [200, 200], apply_to: [training]}
  - rescale: {factor: 1/255}
batches:
  validation_split: 0.2
"""
    path = write_config(text)
    report = check(load_config(path), sample=0)
    (finding,) = report.findings
    assert finding.code == "pipeline-mismatch" and str(finding.severity) == "error"
    assert "200x200x3 in training but 256x256x3 in evaluation" in finding.message
    assert finding.stage == 0
    assert (finding.location.file, finding.location.line) == (display_path(path), 5)
    assert finding.data["evaluation"]["shape"] == [256, 256, 3]


def test_dtype_mismatch_between_pipelines_is_a_warning(write_config):
    text = """\
version: 1
source:
  expect: {dtype: uint8}
stages:
  - random_affine: {rotation: 10}
  - brightness: {range: [0.8, 1.2], clip: [0, 255]}
batches:
  validation_split: 0.2
"""
    report = check(_load(write_config, text), sample=0)
    (finding,) = report.findings
    assert finding.code == "pipeline-mismatch" and str(finding.severity) == "warning"
    assert "float32 batches in training but uint8 in evaluation" in finding.message
    assert finding.stage == 1 and "brightness" in finding.message


def test_random_crop_and_its_twin_agree(write_config):
    text = TRAINING_ONLY.replace("brightness: {range: [0.5, 1.5]}", "random_crop: {size: [9, 9]}")
    assert check(_load(write_config, text), sample=0).findings == []
