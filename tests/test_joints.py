"""The joints between config, check, audit and batches: every entry point takes a config the
same way, check results reach training, and an empty dataset is a finding, not a pass."""

from __future__ import annotations

import shutil

import pytest
import yaml

import preproc
from preproc import CheckFailed, CheckWarning, Config, ConfigError, check, flow, load_config
from preproc.commands import main

from builders import rgb_dataset

CLAHE_THEN_RESCALE = {
    "version": 1,
    "source": {"expect": {"dtype": "uint8"}},
    "stages": [{"clahe": {}}, {"rescale": {"factor": 1 / 255}}],
}


def _dump(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def test_config_built_in_code_checks_its_stages():
    cfg = Config.model_validate(CLAHE_THEN_RESCALE)
    assert [e.name for e in cfg.stages] == ["clahe", "rescale"]
    assert check(cfg, sample=0).codes == {"compounded-scaling"}


def test_config_built_in_code_rejects_unknown_stages_and_params():
    with pytest.raises(Exception, match="unknown stage 'rescal'"):
        Config.model_validate({"version": 1, "stages": [{"rescal": {}}]})
    with pytest.raises(ConfigError, match="stages\\[0\\].rescale.factr") as info:
        preproc.config.as_config({"version": 1, "stages": [{"rescale": {"factr": 2}}]})
    assert "did you mean `factor`" in str(info.value.hint)


def test_every_entry_point_takes_a_path_a_config_or_a_mapping(tmp_path):
    path = _dump(tmp_path / "c.yaml", CLAHE_THEN_RESCALE)
    for target in (path, str(path), load_config(path), CLAHE_THEN_RESCALE):
        assert check(target, sample=0).codes == {"compounded-scaling"}, type(target)
    data = rgb_dataset(tmp_path / "d", per_class=2)
    doc = {"version": 1, "source": {"directory": str(data)}, "batches": {"target_size": [8, 8]}}
    for target in (_dump(tmp_path / "ok.yaml", doc), doc, Config.model_validate(doc)):
        assert len(list(preproc.audit(target, workers=0).records())) == 4, type(target)
        with flow(target, workers=0) as it:
            assert it.samples == 4
    with pytest.raises(ConfigError, match="not int"):
        check(42)


def test_flow_refuses_a_config_that_fails_its_check(tmp_path):
    data = rgb_dataset(tmp_path / "d", per_class=2)
    doc = dict(CLAHE_THEN_RESCALE, source={"directory": str(data), "expect": {"dtype": "uint8"}})
    with pytest.raises(CheckFailed) as info:
        flow(doc, workers=0)
    err = info.value
    assert err.codes == {"compounded-scaling"}
    assert "error[compounded-scaling]" in str(err) and "check FAILED: 1 error" in str(err)
    assert "remove stage 1 `rescale`" in str(err)
    # the same config runs when asked to, and its batches show why the check was right
    with flow(doc, workers=0, check=False, guard="record") as it:
        x, _ = it[0]
    assert x.max() <= 1 / 255 + 1e-6


def test_flow_warns_once_about_findings_below_fail_on(tmp_path):
    data = rgb_dataset(tmp_path / "d", per_class=2)
    doc = {"version": 1, "source": {"directory": str(data), "expect": {"dtype": "uint8"}},
           "stages": [{"rescale": {"factor": 1 / 65535}}],
           "batches": {"target_size": [8, 8], "batch_size": 2}}
    with pytest.warns(CheckWarning) as caught:
        with flow(doc, workers=0) as it:
            it[0]
            it[1]
    assert len(caught) == 1 and "range-underuse" in str(caught[0].message)


def test_run_exits_1_with_the_check_lines_and_no_check_runs_anyway(tmp_path, capsys):
    data = rgb_dataset(tmp_path / "d", per_class=2)
    doc = dict(CLAHE_THEN_RESCALE, source={"directory": str(data), "expect": {"dtype": "uint8"}},
               batches={"target_size": [8, 8]})
    path = _dump(tmp_path / "c.yaml", doc)
    assert main(["check", str(path)]) == 1
    checked = capsys.readouterr().out
    assert main(["run", str(path), "--workers", "0"]) == 1
    out, err = capsys.readouterr()
    assert "error[compounded-scaling]" in out and out.strip() in checked + out
    assert "img/s" not in out and "--no-check" in err
    assert main(["run", str(path), "--workers", "0", "--no-check"]) == 0
    assert "img/s" in capsys.readouterr().out


def test_empty_dataset_is_no_images_in_audit_and_check(tmp_path, capsys):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    assert main(["audit", str(tmp_path / "empty")]) == 1
    assert "no-images" in capsys.readouterr().out
    doc = {"version": 1, "source": {"directory": str(tmp_path / "empty")}}
    assert "no-images" in preproc.audit(doc).codes
    path = _dump(tmp_path / "c.yaml", doc)
    assert main(["check", str(path)]) == 1
    assert "error[no-images]" in capsys.readouterr().out


def test_files_outside_extensions_are_named(tmp_path):
    """DICOM files under the default (Keras) extensions are left out, and the audit says so."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for k in range(7):
            shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "d" / cls / f"{k}.dcm")
    doc = {"version": 1, "source": {"directory": str(tmp_path / "d")}}
    report = preproc.audit(doc, workers=0)
    assert {"no-images", "files-ignored"} <= report.codes
    ignored = next(f for f in report.findings if f.code == "files-ignored")
    assert ignored.count == 14 and "14 .dcm files are not in source.extensions" in ignored.message
    assert {"files-ignored", "no-images"} <= check(doc).codes
    doc["source"]["extensions"] = ["dcm"]
    assert not {"files-ignored", "no-images"} & preproc.audit(doc, workers=0).codes


def test_flow_skip_tolerates_unreadable_files_the_check_saw(tmp_path):
    data = rgb_dataset(tmp_path / "d", per_class=3)
    (data / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    doc = {"version": 1, "source": {"directory": str(data)},
           "batches": {"target_size": [8, 8], "batch_size": 2}}
    with pytest.raises(CheckFailed, match="unreadable-file"):
        flow(doc, workers=0)
    doc["batches"]["on_error"] = "skip"
    with pytest.warns(CheckWarning, match="unreadable-file"), flow(doc, workers=0) as it:
        assert sum(len(b[0]) for b in it) == 6


def test_flow_samples_the_headers_once(tmp_path, monkeypatch):
    """The check's source spec builds the flow's pipeline: headers are not sampled twice."""
    from preproc.dataset import sampling

    data = rgb_dataset(tmp_path / "d", per_class=2)
    doc = {"version": 1, "source": {"directory": str(data)}, "batches": {"target_size": [8, 8]}}
    calls = []
    real = sampling.sample_headers
    monkeypatch.setattr(sampling, "sample_headers", lambda *a, **k: calls.append(1) or real(*a, **k))
    with flow(doc, workers=0) as it:
        assert it.pipeline.source_spec.dtype == "uint8"  # built from the sampled headers
    assert len(calls) == 1
