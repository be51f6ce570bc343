"""DICOM units end to end: source.dicom in the config, decode, flow, the source spec and check."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import write_dicom

from preproc import CheckFailed
from preproc import check, flow, load_config
from preproc.errors import ConfigError, DecodeError
from preproc.io import decode

from conftest import CONFIGS

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402

RNG = np.random.default_rng(5)


def pydicom_testfile(name: str):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    return path


def _config(tmp_path, source: str, stages: str = "", batches: str = "") -> object:
    text = (f"version: 1\nsource:\n  directory: data\n  extensions: [dcm]\n{source}"
            f"stages:\n{stages or '  []'}\n"
            "batches: {color_mode: grayscale, class_mode: null, shuffle: false, workers: 0, "
            f"target_size: [4, 4]{batches}}}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path)


def _ct(path, stored, *, bits=12, intercept=-1024, slope=1, signed=False, **tags):
    return write_dicom(path, stored, bits_stored=bits, signed=signed, rescale=(slope, intercept),
                       tags={"Modality": "CT", **tags})


# ------------------------------------------------------------------------------- config


def test_defaults_are_the_documented_ones(tmp_path):
    d = _config(tmp_path, "").source.dicom
    assert (d.modality_lut, d.voi, d.monochrome1, d.frames) == (True, "none", "invert", "first")


def test_unknown_key_and_bad_value_name_the_key_path_and_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, "  dicom:\n    modality_lut: true\n    voii: header\n")
    assert err.value.path == "source.dicom.voii" and err.value.line == 7
    assert "voi" in err.value.hint
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, "  dicom: {monochrome1: inverse}\n")
    assert err.value.path == "source.dicom.monochrome1" and err.value.line == 5
    assert "invert" in err.value.hint
    with pytest.raises(ConfigError, match="needs `modality_lut: true`") as err:
        _config(tmp_path, "  dicom: {modality_lut: false, voi: header}\n")
    assert err.value.path == "source.dicom" and err.value.line == 5


# ------------------------------------------------------------------------------- decode


class Opts:
    def __init__(self, modality_lut=True, voi="none", monochrome1="invert", frames="first"):
        self.modality_lut, self.voi, self.monochrome1, self.frames = (
            modality_lut, voi, monochrome1, frames)


def test_decode_ct_small_in_hounsfield_units():
    path = pydicom_testfile("CT_small.dcm")
    out, info = decode(path, dicom=Opts())
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(out[:, :, 0], apply_modality_lut(ds.pixel_array, ds))
    assert out.dtype == np.int32 and info.extra["modality_lut_applied"]
    stored, _ = decode(path, dicom=Opts(modality_lut=False))
    np.testing.assert_array_equal(stored[:, :, 0], ds.pixel_array)


def test_decode_voi_header_and_no_window(tmp_path):
    path = pydicom_testfile("MR_small.dcm")  # WindowCenter 600, WindowWidth 1600, LINEAR
    out, info = decode(path, dicom=Opts(voi="header"))
    x = pydicom.dcmread(path).pixel_array.astype(np.float64)
    expected = np.clip((x - 599.5) / 1599 + 0.5, 0, 1)
    expected[x <= 599.5 - 799.5] = 0
    expected[x > 599.5 + 799.5] = 1
    assert out.dtype == np.float32 and info.extra["voi_applied"]
    np.testing.assert_allclose(out[:, :, 0], expected, atol=1e-6)
    with pytest.raises(DecodeError) as err:
        decode(pydicom_testfile("CT_small.dcm"), dicom=Opts(voi="header"))
    assert err.value.reason == "no-voi-window" and "voi: none" in str(err.value)


def _cr(path, stored):
    """A CR radiograph as pydicom's CR1-CR3 store it: MONOCHROME1, slope 0.684, intercept 200."""
    return write_dicom(path, stored, bits_stored=12, photometric="MONOCHROME1",
                       rescale=(0.684, 200), tags={"Modality": "CR"})


def test_decode_monochrome1_invert_keep_error(tmp_path):
    stored = RNG.integers(0, 4096, (5, 6)).astype(np.uint16)
    path = _cr(tmp_path / "cr.dcm", stored)
    ds = pydicom.dcmread(path)
    modality = apply_modality_lut(ds.pixel_array, ds)
    lo, hi = 200, 4095 * 0.684 + 200
    inverted, info = decode(path, dicom=Opts())
    assert info.photometric == "MONOCHROME2" and info.extra["stored_photometric"] == "MONOCHROME1"
    np.testing.assert_allclose(inverted[:, :, 0], lo + hi - modality, rtol=1e-6)
    kept, info = decode(path, dicom=Opts(monochrome1="keep"))
    assert info.photometric == "MONOCHROME1"
    np.testing.assert_allclose(kept[:, :, 0], modality, rtol=1e-6)
    with pytest.raises(DecodeError) as err:
        decode(path, dicom=Opts(monochrome1="error"))
    assert err.value.reason == "monochrome1-refused"


def test_decode_frame_index(tmp_path):
    frames = RNG.integers(0, 4096, (3, 4, 5)).astype(np.uint16)
    path = write_dicom(tmp_path / "mf.dcm", frames, frames=3, bits_stored=12)
    for k in range(3):
        out, info = decode(path, dicom=Opts(), frame=k)
        np.testing.assert_array_equal(out[:, :, 0], frames[k])
        assert info.extra["frame"] == k
    with pytest.raises(DecodeError) as err:
        decode(path, frame=3)
    assert err.value.reason == "no-frame"


# --------------------------------------------------------------------------------- flow


def test_frames_all_lists_every_frame_and_keeps_files_in_one_subset(tmp_path):
    frames = RNG.integers(0, 4096, (3, 4, 4)).astype(np.uint16)
    (tmp_path / "data" / "c").mkdir(parents=True)
    write_dicom(tmp_path / "data" / "c" / "a.dcm", frames, frames=3, bits_stored=12)
    single = RNG.integers(0, 4096, (4, 4)).astype(np.uint16)
    write_dicom(tmp_path / "data" / "c" / "b.dcm", single, bits_stored=12)
    cfg = _config(tmp_path, "  dicom: {frames: all}\n")
    it = flow(cfg)
    assert it.filenames == ["c/a.dcm#0", "c/a.dcm#1", "c/a.dcm#2", "c/b.dcm"]
    x = np.concatenate([it[i] for i in range(len(it))])
    np.testing.assert_array_equal(x[:3, :, :, 0], frames)
    np.testing.assert_array_equal(x[3, :, :, 0], single)
    assert flow(_config(tmp_path, "")).filenames == ["c/a.dcm", "c/b.dcm"]
    split = _config(tmp_path, "  dicom: {frames: all}\n", batches=", validation_split: 0.5")
    assert flow(split, subset="validation").filenames == ["c/a.dcm#0", "c/a.dcm#1", "c/a.dcm#2"]
    assert flow(split, subset="training").filenames == ["c/b.dcm"]


def test_frames_all_on_a_real_multiframe_file(tmp_path):
    (tmp_path / "data" / "dose").mkdir(parents=True)
    shutil.copy(pydicom_testfile("rtdose.dcm"), tmp_path / "data" / "dose" / "rtdose.dcm")
    cfg = _config(tmp_path, "  dicom: {frames: all}\n").model_copy(
        update={"batches": _config(tmp_path, "").batches.model_copy(
            update={"target_size": (10, 10)})})
    it = flow(cfg)
    assert it.samples == 15 and it.filenames[7] == "dose/rtdose.dcm#7"
    x = np.concatenate([it[i] for i in range(len(it))])
    expected = pydicom.dcmread(pydicom_testfile("rtdose.dcm")).pixel_array
    np.testing.assert_array_equal(x[:, :, :, 0], expected)


def test_flow_applies_voi_and_inverts_monochrome1(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    stored = RNG.integers(0, 4096, (4, 4)).astype(np.uint16)
    path = _cr(tmp_path / "data" / "c" / "cr.dcm", stored)
    ds = pydicom.dcmread(path)
    modality = apply_modality_lut(ds.pixel_array, ds)
    x = flow(_config(tmp_path, ""))[0]
    lo, hi = 200, 4095 * 0.684 + 200
    np.testing.assert_allclose(x[0, :, :, 0], lo + hi - modality, rtol=1e-6)
    refusing = _config(tmp_path, "  dicom: {monochrome1: error}\n")
    with pytest.raises(CheckFailed, match="MONOCHROME1"):  # the check sees it in the headers
        flow(refusing)
    with pytest.raises(DecodeError):  # and decoding refuses the file itself
        flow(refusing, check=False)[0]


# ---------------------------------------------------------------------- source spec, check


def test_source_spec_knows_hounsfield_units_from_headers(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    _ct(tmp_path / "data" / "c" / "a.dcm", RNG.integers(0, 4096, (4, 4)).astype(np.uint16))
    report = check(_config(tmp_path, "", "  - window: {center: 40, width: 400}\n"))
    source = report.trace[0]["spec"]
    assert source["range"] == [-1024, 3071] and source["units"] == "HU"
    assert source["dtype"] == "int16"
    assert report.findings == []
    assert "units" not in report.trace[-1]["spec"]  # the window leaves HU behind


def test_voi_header_spec_and_missing_window_in_check(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    stored = RNG.integers(0, 4096, (4, 4)).astype(np.uint16)
    _ct(tmp_path / "data" / "c" / "a.dcm", stored, WindowCenter=40, WindowWidth=400)
    _ct(tmp_path / "data" / "c" / "b.dcm", stored)
    report = check(_config(tmp_path, "  dicom: {voi: header}\n", "  - gamma: {gamma: 0.8}\n"))
    source = report.trace[0]["spec"]
    assert (source["dtype"], source["range"], source["units"]) == ("float32", [0, 1], "voi")
    (f,) = report.findings
    assert f.code == "unreadable-file" and f.files == ("c/b.dcm",)
    assert f.data["reason"] == "no-voi-window"


def test_dicom_stored_units_names_the_rescale(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    _ct(tmp_path / "data" / "c" / "a.dcm", RNG.integers(0, 4096, (4, 4)).astype(np.uint16))
    stored = "  dicom: {modality_lut: false}\n"
    for stages in ("  - window: {center: 40, width: 400}\n",
                   "  - clip: {min: -100, max: 100}\n",
                   "  - normalize: {mean: 40, std: 400}\n"):
        report = check(_config(tmp_path, stored, stages))
        (f,) = [f for f in report.findings if f.code == "dicom-stored-units"]
        assert f.severity.name == "ERROR" and f.stage == 0 and f.location.line == 7
        assert "RescaleIntercept -1024" in f.message
    clean = check(_config(tmp_path, stored, "  - rescale_intensity: {in_range: bit_depth}\n"))
    assert clean.findings == [] and clean.trace[0]["spec"]["units"] == "stored"
    after = check(_config(tmp_path, stored, "  - rescale_intensity: {in_range: bit_depth}\n"
                                            "  - window: {center: 0.5, width: 0.5}\n"))
    assert "dicom-stored-units" not in after.codes
    assert "dicom-stored-units" not in check(_config(
        tmp_path, "", "  - window: {center: 40, width: 400}\n")).codes


def test_identity_lut_stored_values_are_not_flagged(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    write_dicom(tmp_path / "data" / "c" / "a.dcm",
                RNG.integers(0, 4096, (4, 4)).astype(np.uint16), bits_stored=12)
    report = check(_config(tmp_path, "  dicom: {modality_lut: false}\n",
                           "  - clip: {min: 0, max: 4095}\n"))
    assert "dicom-stored-units" not in report.codes


def test_mixed_rescale_and_bit_depth_with_and_without_the_lut(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    _ct(tmp_path / "data" / "c" / "a.dcm", RNG.integers(0, 4096, (4, 4)).astype(np.uint16))
    _ct(tmp_path / "data" / "c" / "b.dcm", RNG.integers(0, 2**14, (4, 4)).astype(np.uint16),
        bits=14, intercept=-8192)
    stages = "  - rescale_intensity: {in_range: source}\n"
    off = check(_config(tmp_path, "  dicom: {modality_lut: false}\n", stages))
    (mixed,) = [f for f in off.findings if f.code == "mixed-rescale"]
    assert mixed.severity.name == "ERROR" and mixed.count == 2
    assert "RescaleIntercept -8192" in mixed.message
    assert [f.severity.name for f in off.findings if f.code == "mixed-bit-depth"] == ["ERROR"]
    on = check(_config(tmp_path, "", stages))
    assert "mixed-rescale" not in on.codes
    (bits,) = [f for f in on.findings if f.code == "mixed-bit-depth"]
    assert bits.severity.name == "INFO" and not on.failed
    assert on.trace[0]["spec"]["range"] == [-8192, 8191]


def test_monochrome1_error_is_named_in_check(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    _cr(tmp_path / "data" / "c" / "cr.dcm", RNG.integers(0, 4096, (4, 4)).astype(np.uint16))
    report = check(_config(tmp_path, "  dicom: {monochrome1: error}\n"))
    (f,) = report.findings
    assert f.code == "unreadable-file" and f.data["reason"] == "monochrome1-refused"
    cr = check(_config(tmp_path, "", "  - rescale_intensity: {in_range: source}\n"))
    assert cr.findings == []
    by_bits = check(_config(tmp_path, "", "  - rescale_intensity: {in_range: bit_depth}\n"))
    assert by_bits.codes == {"dtype-mismatch"}  # float modality values have no bit depth
    assert cr.trace[0]["spec"]["range"] == pytest.approx([200, 4095 * 0.684 + 200])
    assert cr.trace[0]["spec"]["dtype"] == "float32"


# --------------------------------------------------------------------- ct-window.yaml


def _ct_window_config(tmp_path):
    text = (CONFIGS / "ct-window.yaml").read_text()
    text = text.replace("source:\n", "source:\n  directory: data\n", 1)
    text += "  shuffle: false\n  workers: 0\n"
    path = tmp_path / "ct-window.yaml"
    path.write_text(text)
    return load_config(path)


def _soft_tissue(path):
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    return hu, (np.clip((hu - (40 - 400 / 2)) / 400, 0, 1) - 0.5) / 0.5


def test_ct_window_config_on_real_ct_files(tmp_path):
    (tmp_path / "data" / "ct").mkdir(parents=True)
    shutil.copy(pydicom_testfile("CT_small.dcm"), tmp_path / "data" / "ct" / "CT_small.dcm")
    cfg = _ct_window_config(tmp_path)
    report = check(cfg)
    assert report.findings == [] and report.trace[0]["spec"]["units"] == "HU"
    x, _ = flow(cfg)[0]
    hu, expected = _soft_tissue(pydicom_testfile("CT_small.dcm"))
    big = np.repeat(np.repeat(expected, 4, axis=0), 4, axis=1)  # 128 -> 512, nearest
    np.testing.assert_allclose(x[0, :, :, 0], big, atol=1e-6)
    white = float((x >= 1).mean())
    assert white == pytest.approx(float((hu >= 240).mean()))
    assert 0.08 < white < 0.10  # soft tissue: ~8.8% saturates, not 87% as on stored values


def test_ct_window_config_on_a_lossy_jpeg2000_ct(tmp_path):
    path = pydicom_testfile("693_J2KI.dcm")  # RescaleIntercept -1024, JPEG 2000, 512 x 512
    try:
        pydicom.dcmread(path).pixel_array
    except Exception as exc:
        pytest.skip(f"no JPEG 2000 decoder: {exc}")
    (tmp_path / "data" / "ct").mkdir(parents=True)
    shutil.copy(path, tmp_path / "data" / "ct" / "693_J2KI.dcm")
    x, _ = flow(_ct_window_config(tmp_path))[0]
    _, expected = _soft_tissue(path)
    np.testing.assert_allclose(x[0, :, :, 0], expected, atol=1e-6)


def test_flow_spec_follows_voi_header_even_when_expect_is_declared(tmp_path):
    (tmp_path / "data" / "c").mkdir(parents=True)
    stored = RNG.integers(0, 4096, (4, 4)).astype(np.uint16)
    _ct(tmp_path / "data" / "c" / "a.dcm", stored, WindowCenter=40, WindowWidth=400)
    cfg = _config(tmp_path, "  dicom: {voi: header}\n  expect: {dtype: uint16, bit_depth: 12}\n",
                  "  - gamma: {gamma: 0.8}\n")
    with flow(cfg, guard="raise") as it:
        assert it.pipeline.source_spec.units == "voi"
        x = it[0]
    hu = stored.astype(np.float64) - 1024
    window = np.clip((hu - 39.5) / 399 + 0.5, 0, 1)
    np.testing.assert_allclose(x[0, :, :, 0], window.astype(np.float32) ** np.float32(0.8),
                               rtol=1e-5, atol=1e-6)
