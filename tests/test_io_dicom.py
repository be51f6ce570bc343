"""DICOM through pydicom: written fixtures round-trip, and every pydicom test file is handled."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from builders import write_dicom

from preproc.errors import DecodeError, MissingDependencyError
from preproc.io import decode, is_dicom_file, probe

pydicom = pytest.importorskip("pydicom")

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
RNG = np.random.default_rng(11)


def pydicom_file(name: str) -> Path:
    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"pydicom test file {name} not installed")
    return path


def test_12_bit_in_16_round_trip(tmp_path):
    array = RNG.integers(0, 4096, (6, 5)).astype(np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", array, bits_stored=12)
    out, info = decode(path)
    assert out.dtype == np.uint16 and out.shape == (6, 5, 1)
    np.testing.assert_array_equal(out[:, :, 0], array)
    assert (info.format, info.stored_bits, info.signed, info.photometric) == (
        "dicom",
        12,
        False,
        "MONOCHROME2",
    )
    assert info.extra["bits_allocated"] == 16
    assert probe(path) == info


def test_signed_and_8_bit_and_rgb(tmp_path):
    signed = RNG.integers(-2048, 2048, (4, 4)).astype(np.int16)
    out, info = decode(write_dicom(tmp_path / "s.dcm", signed, bits_stored=12, signed=True))
    assert out.dtype == np.int16 and info.signed
    np.testing.assert_array_equal(out[:, :, 0], signed)
    rgb = RNG.integers(0, 256, (3, 4, 3)).astype(np.uint8)
    out, info = decode(write_dicom(tmp_path / "c.dcm", rgb, photometric="RGB"))
    assert (info.channels, info.photometric, info.dtype) == (3, "RGB", "uint8")
    np.testing.assert_array_equal(out, rgb)


def test_monochrome1_is_reported_not_inverted(tmp_path):
    array = np.array([[0, 100], [4000, 4095]], np.uint16)
    out, info = decode(
        write_dicom(tmp_path / "m1.dcm", array, bits_stored=12, photometric="MONOCHROME1")
    )
    assert info.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_multiframe_first_frame(tmp_path):
    frames = RNG.integers(0, 65536, (3, 4, 5)).astype(np.uint16)
    path = write_dicom(tmp_path / "mf.dcm", frames, frames=3)
    out, info = decode(path)
    assert info.frames == 3 and probe(path).frames == 3
    np.testing.assert_array_equal(out[:, :, 0], frames[0])


def test_big_endian_round_trip(tmp_path):
    array = RNG.integers(0, 65536, (4, 4)).astype(np.uint16)
    out, _ = decode(write_dicom(tmp_path / "be.dcm", array, big_endian=True))
    assert out.dtype.isnative
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_modality_lut_only_when_asked(tmp_path):
    array = np.array([[0, 1000], [2000, 4095]], np.uint16)
    path = write_dicom(tmp_path / "hu.dcm", array, bits_stored=12, rescale=(2.0, -1024.0))
    raw, info = decode(path)
    np.testing.assert_array_equal(raw[:, :, 0], array)
    assert info.extra["rescale_slope"] == 2.0 and info.extra["rescale_intercept"] == -1024.0
    hu, hu_info = decode(path, modality_lut=True)
    assert hu.dtype == np.float64 and hu_info.dtype == "float64"
    np.testing.assert_array_equal(hu[:, :, 0], array * 2.0 - 1024.0)
    assert hu_info.extra["modality_lut_applied"] is True


def test_without_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "np.dcm", np.zeros((2, 2), np.uint16), pixels=False)
    for call in (probe, decode):
        with pytest.raises(DecodeError) as caught:
            call(path)
        assert caught.value.reason == "no-pixel-data"


def test_without_preamble_needs_dcm_extension(tmp_path):
    array = RNG.integers(0, 256, (3, 3)).astype(np.uint8)
    path = write_dicom(tmp_path / "raw.dcm", array, preamble=False)
    assert not is_dicom_file(path)
    np.testing.assert_array_equal(decode(path)[0][:, :, 0], array)
    renamed = path.rename(tmp_path / "raw.bin")
    with pytest.raises(DecodeError) as caught:
        decode(renamed)
    assert caught.value.reason == "unsupported"


def test_is_dicom_file(tmp_path):
    path = write_dicom(tmp_path / "noext", np.zeros((2, 2), np.uint8))
    assert is_dicom_file(path)
    assert decode(path)[1].format == "dicom"
    (tmp_path / "text").write_text("hello")
    assert not is_dicom_file(tmp_path / "text")
    assert not is_dicom_file(tmp_path / "missing")
    assert not is_dicom_file(tmp_path)


def test_pixel_limit(tmp_path, monkeypatch):
    from PIL import Image

    path = write_dicom(tmp_path / "big.dcm", np.zeros((30, 30), np.uint16))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 899)
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "decompression-bomb"


def test_missing_pydicom_names_the_extra(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "x.dcm", np.zeros((2, 2), np.uint8))
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(MissingDependencyError) as caught:
        decode(path)
    assert caught.value.extra == "dicom"


# -- pydicom's own test files -------------------------------------------------------------------

ALL_FILES = sorted(p for p in TEST_FILES.rglob("*") if p.is_file()) if TEST_FILES.is_dir() else []


@pytest.mark.skipif(not ALL_FILES, reason="pydicom test files not installed")
def test_every_pydicom_test_file_decodes_or_raises_decode_error():
    decoded, refused = 0, 0
    for path in ALL_FILES:
        try:
            header = probe(path)
        except DecodeError:
            header = None
        try:
            array, info = decode(path)
        except DecodeError as exc:
            assert exc.reason and str(path) in str(exc)
            refused += 1
            continue
        decoded += 1
        assert array.ndim == 3 and array.dtype.isnative
        assert array.shape == (info.height, info.width, info.channels)
        assert array.dtype.name == info.dtype
        if header is not None:  # the probe predicts what decoding gives
            for field in (
                "format",
                "dtype",
                "channels",
                "height",
                "width",
                "stored_bits",
                "signed",
                "frames",
            ):
                assert getattr(header, field) == getattr(info, field), (path.name, field)
    assert decoded >= 40 and refused >= 1


@pytest.mark.parametrize(
    "name,dtype,stored_bits,photometric",
    [
        ("CT_small.dcm", "int16", 16, "MONOCHROME2"),
        ("MR_small_RLE.dcm", "int16", 16, "MONOCHROME2"),
        ("examples_overlay.dcm", "uint16", 12, "MONOCHROME2"),
        ("SC_rgb_rle_16bit.dcm", "uint16", 16, "RGB"),
        ("SC_ybr_full_422_uncompressed.dcm", "uint8", 8, "RGB"),
        ("liver_1frame.dcm", "uint8", 1, "MONOCHROME2"),
    ],
)
def test_known_pydicom_files(name, dtype, stored_bits, photometric):
    array, info = decode(pydicom_file(name))
    assert (info.dtype, info.stored_bits, info.photometric) == (dtype, stored_bits, photometric)
    expected = pydicom.dcmread(pydicom_file(name)).pixel_array
    if info.frames > 1:
        expected = expected[0]
    np.testing.assert_array_equal(array.reshape(expected.shape), expected)


def test_monochrome1_from_real_file():
    path = pydicom_file("dicomdirtests/77654033/CR1/6154")
    array, info = decode(path)
    assert info.photometric == "MONOCHROME1" and info.stored_bits == 12
    np.testing.assert_array_equal(array[:, :, 0], pydicom.dcmread(path).pixel_array)


@pytest.mark.parametrize(
    "name,reason",
    [
        ("MR_small_jpeg_ls_lossless.dcm", "compressed-unsupported"),
        ("JPGExtended.dcm", "compressed-unsupported"),
        ("MR_truncated.dcm", "truncated"),
        ("rtplan.dcm", "no-pixel-data"),
    ],
)
def test_known_pydicom_failures(name, reason):
    with pytest.raises(DecodeError) as caught:
        decode(pydicom_file(name))
    assert caught.value.reason == reason
    if reason == "compressed-unsupported":
        assert "1.2.840.10008.1.2.4." in caught.value.detail  # names the transfer syntax


def test_probe_does_not_read_pixel_data(monkeypatch):
    path = pydicom_file("CT_small.dcm")
    calls = []
    real = pydicom.dcmread

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", spy)
    info = probe(path)
    assert calls and all(call.get("stop_before_pixels") for call in calls)
    assert (info.height, info.width, info.dtype) == (128, 128, "int16")


@pytest.mark.parametrize("big_endian", [False, True])
def test_image_pixel_elements_read_from_their_raw_bytes(tmp_path, big_endian):
    array = RNG.integers(0, 4096, (3, 5)).astype(np.uint16)
    path = write_dicom(tmp_path / "r.dcm", array, bits_stored=12, big_endian=big_endian)
    info = probe(path)
    assert (info.height, info.width, info.stored_bits, info.channels) == (3, 5, 12, 1)
    pixels, _ = decode(path)
    np.testing.assert_array_equal(pixels[:, :, 0], array)


def test_an_empty_or_repeated_rows_element_is_a_corrupt_file(tmp_path):
    import pydicom

    array = np.zeros((2, 2), np.uint16)
    for name, value in (("empty", None), ("twice", [2, 2])):
        path = write_dicom(tmp_path / f"{name}.dcm", array)
        ds = pydicom.dcmread(path)
        ds.Rows = value
        ds.save_as(path)
        for call in (probe, decode):
            with pytest.raises(DecodeError) as caught:
                call(path)
            assert caught.value.reason == "corrupt", name
