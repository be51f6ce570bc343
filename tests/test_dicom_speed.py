"""What the DICOM audit computes differently for speed is still exact where a finding needs it.

* Uncompressed grayscale pixels are taken from PixelData's bytes without pydicom's decoder:
  they must equal ``pixel_array`` (unused high bits cleared, or the sign spread).
* 16-bit DICOM display statistics come from a grid subsample: min, max, the effective bits,
  the pixel count and the content hash stay those of every pixel.
* Values in modality units (HU, MONOCHROME1 inverted, a Modality LUT Sequence): the audited
  min/max equal those of pydicom's ``apply_modality_lut`` output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import pydicom_file, write_dicom

from preproc.auditing import audit
from preproc.auditing.measure import SAMPLE_STEP, measure
from preproc.io import read

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_modality_lut  # noqa: E402

RNG = np.random.default_rng(23)



def _native_used(path: Path, frame: int | str | None = None) -> bool:
    """Whether the PixelData shortcut (not pydicom's decoder) decodes ``path``."""
    from preproc.io import dicom

    ds = pydicom.dcmread(path, force=True)
    info = dicom._info(path, ds, has_pixels=True)
    return dicom._native_gray(ds, info, None if frame == "all" else int(frame or 0)) is not None


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm",
                                  "examples_overlay.dcm", "rtdose_1frame.dcm"])
def test_uncompressed_grayscale_equals_pixel_array(name):
    path = pydicom_file(name)
    assert _native_used(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array if ds.get("NumberOfFrames", 1) in (None, 1) else ds.pixel_array[0]
    got, info = read(path, "array")
    assert got.dtype == expected.dtype and got.flags.writeable
    np.testing.assert_array_equal(got[..., 0], expected)


def test_every_frame_equals_pixel_array():
    path = pydicom_file("rtdose.dcm")
    assert _native_used(path, "all") and _native_used(path, 14)
    expected = pydicom.dcmread(path).pixel_array
    got, _ = read(path, "array", frame=14)
    np.testing.assert_array_equal(got[..., 0], expected[14])
    got, _ = read(path, "array", frame="all")
    np.testing.assert_array_equal(got[..., 0], expected)


@pytest.mark.parametrize("dtype, bits", [("uint16", 10), ("int16", 12), ("uint8", 6),
                                         ("int8", 5)])
def test_unused_high_bits_are_corrected_as_pydicom_does(tmp_path, dtype, bits):
    info = np.iinfo(dtype)
    raw = RNG.integers(info.min, info.max, (12, 10), endpoint=True).astype(dtype)  # garbage above
    path = write_dicom(tmp_path / "a.dcm", raw, bits_stored=bits, signed=dtype.startswith("int"))
    assert _native_used(path)
    expected = pydicom.dcmread(path).pixel_array
    got, _ = read(path, "array")
    np.testing.assert_array_equal(got[..., 0], expected)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if dtype.startswith("int") \
        else (0, (1 << bits) - 1)
    assert lo <= got.min() and got.max() <= hi


def test_short_pixel_data_still_goes_to_pydicom(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", np.zeros((8, 8), np.uint16))
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:-8]
    ds.save_as(path)
    assert not _native_used(path)
    with pytest.raises(Exception, match="less than expected|truncated|corrupt"):
        read(path, "array")


@pytest.mark.parametrize("dtype, shape", [("int16", (512, 512, 1)), ("uint16", (256, 384, 1))])
def test_sampled_statistics_keep_every_exact_value(dtype, shape):
    y, z = np.mgrid[0:shape[0], 0:shape[1]]
    x = ((y + z) * (3000 / sum(shape[:2])) + RNG.normal(0, 40, shape[:2]) + 300).astype(dtype)
    x = x[..., None]
    x[3, 5, 0], x[7, 1, 0] = x.min() - 50, x.max() + 90  # extremes off the sampled grid
    sampled, exact = measure(x, sample=SAMPLE_STEP), measure(x)
    for key in ("pixels", "min", "max", "effective_bits", "hash"):
        assert sampled[key] == exact[key], key
    _, _, _, counts = sampled["hist"]
    assert int(counts.sum()) == x.size
    assert sampled["mean"][0] == pytest.approx(exact["mean"][0], rel=0.01)
    assert sampled["std"][0] == pytest.approx(exact["std"][0], rel=0.01)


@pytest.mark.parametrize("shape", [(510, 512, 1), (64, 32, 1)])
def test_odd_sides_and_small_images_are_counted_pixel_by_pixel(shape):
    x = RNG.integers(0, 4096, shape).astype(np.uint16)
    sampled, exact = measure(x, sample=SAMPLE_STEP), measure(x)
    np.testing.assert_array_equal(sampled.pop("hist")[3], exact.pop("hist")[3])
    assert sampled == exact


def _audited(folder: Path):
    report = audit(folder, workers=1)
    try:
        (rec,) = list(report.records())
    finally:
        report.close()
    return rec


def _lut_sequence(table: np.ndarray):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.LUTDescriptor = [len(table), 0, 16]
    item.add_new(0x00283006, "US", table.tolist())  # LUTData
    item.ModalityLUTType = "US"
    return Sequence([item])


def test_ct_small_min_max_in_hu_equal_the_lut_applied_image(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "CT_small.dcm").write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    ds = pydicom.dcmread(folder / "CT_small.dcm")
    hu = apply_modality_lut(ds.pixel_array, ds)
    rec = _audited(folder)
    assert (rec.min, rec.max) == ([float(hu.min())], [float(hu.max())])


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_sampled_hu_min_max_equal_the_lut_applied_image(tmp_path, photometric):
    stored = RNG.integers(0, 4096, (512, 512)).astype(np.uint16)
    stored[1, 3], stored[5, 7] = 0, 4095  # the extremes only off the sampled grid
    stored[::2, ::2] = stored[::2, ::2].clip(10, 4000)
    (tmp_path / "data").mkdir()
    path = write_dicom(tmp_path / "data" / "a.dcm", stored, bits_stored=12,
                       photometric=photometric, rescale=(1, -1024), tags={"Modality": "CT"})
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    if photometric == "MONOCHROME1":  # inverted over the modality range [-1024, 3071]
        hu = -1024 + 3071 - hu
    rec = _audited(tmp_path / "data")
    assert rec.value_dtype == "int16" and rec.units == "HU"
    assert (rec.min, rec.max) == ([float(hu.min())], [float(hu.max())])
    assert rec.effective_bits == 12


def test_lut_sequence_min_max_equal_the_lut_applied_image(tmp_path):
    stored = RNG.integers(0, 4096, (256, 256)).astype(np.uint16)
    table = (np.arange(4096) * 7 // 5 + 100).astype(np.uint16)
    (tmp_path / "data").mkdir()
    path = write_dicom(tmp_path / "data" / "a.dcm", stored, bits_stored=12,
                       tags={"ModalityLUTSequence": _lut_sequence(table)})
    ds = pydicom.dcmread(path)
    values = apply_modality_lut(ds.pixel_array, ds)
    rec = _audited(tmp_path / "data")
    assert rec.units == "modality"
    assert (rec.min, rec.max) == ([float(values.min())], [float(values.max())])
