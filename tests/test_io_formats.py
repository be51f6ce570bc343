"""JPEG, BMP, GIF and netpbm through Pillow or the netpbm parser; detection by magic bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import write_netpbm, write_png
from PIL import Image

from preproc.errors import DecodeError, LossyDecodeError
from preproc.io import SUPPORTED_EXTENSIONS, decode, probe

RNG = np.random.default_rng(7)


def save(path: Path, array: np.ndarray, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


@pytest.mark.parametrize("ext,channels", [("bmp", 1), ("bmp", 3), ("ppm", 3), ("pgm", 1)])
def test_8_bit_lossless_formats_round_trip(tmp_path, ext, channels):
    shape = (7, 9) if channels == 1 else (7, 9, 3)
    array = RNG.integers(0, 256, shape).astype(np.uint8)
    out, info = decode(save(tmp_path / f"x.{ext}", array))
    assert out.dtype == np.uint8 and out.shape == (7, 9, channels)
    np.testing.assert_array_equal(out.reshape(shape), array)
    assert info.stored_bits == 8 and info.channels == channels
    assert probe(tmp_path / f"x.{ext}") == info


def test_32_bit_bmp_reads_as_rgb(tmp_path):
    # BI_RGB 32-bit BMP has an unused fourth byte, not alpha (Pillow and Windows agree)
    array = RNG.integers(0, 256, (4, 5, 4)).astype(np.uint8)
    out, info = decode(save(tmp_path / "a.bmp", array))
    assert info.format == "bmp" and info.photometric == "rgb"
    np.testing.assert_array_equal(out, array[:, :, :3])


@pytest.mark.parametrize("mode,channels", [("L", 1), ("RGB", 3)])
def test_jpeg_decodes_like_pillow(tmp_path, mode, channels):
    array = RNG.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    path = tmp_path / "x.jpeg"
    Image.fromarray(array).convert(mode).save(path, quality=90)
    out, info = decode(path)
    expected = np.asarray(Image.open(path)).reshape(16, 16, channels)
    np.testing.assert_array_equal(out, expected)
    assert (info.format, info.dtype, info.channels, info.stored_bits) == (
        "jpeg",
        "uint8",
        channels,
        8,
    )


def test_cmyk_jpeg_is_lossy(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(path)
    with pytest.raises(LossyDecodeError) as caught:
        decode(path)
    assert caught.value.code == "lossy-decode"
    assert "CMYK" in caught.value.detail


def test_twelve_bit_jpeg_is_unsupported_not_silently_8_bit(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.encaps import generate_frames

    source = Path(pydicom.__file__).parent / "data" / "test_files" / "JPGExtended.dcm"
    if not source.exists():
        pytest.skip("pydicom test file missing")
    ds = pydicom.dcmread(source)
    path = tmp_path / "twelve.jpg"
    path.write_bytes(next(generate_frames(ds.PixelData, number_of_frames=1)))
    for call in (probe, decode):
        with pytest.raises(DecodeError) as caught:
            call(path)
        assert caught.value.reason == "unsupported"
        assert "12-bit" in caught.value.detail


def test_gif_first_frame_and_frame_count(tmp_path):
    frames = [Image.fromarray(np.full((6, 6), v, np.uint8)).convert("P") for v in (10, 200, 90)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out, info = decode(path)
    assert info.frames == 3 and probe(path).frames == 3
    assert out.dtype == np.uint8 and out.shape == (6, 6, 3)
    np.testing.assert_array_equal(out, np.asarray(Image.open(path).convert("RGB")))


def test_gif_with_transparency_expands_to_rgba(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    path = tmp_path / "t.gif"
    image.save(path, transparency=0)
    out, info = decode(path)
    assert info.channels == 4 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[:, :, 3], [[0, 255], [255, 0]])


@pytest.mark.parametrize("ascii", [False, True], ids=["binary", "ascii"])
@pytest.mark.parametrize("maxval", [1, 100, 255, 4095, 65535])
@pytest.mark.parametrize("channels", [1, 3])
def test_netpbm_keeps_raw_values_up_to_maxval(tmp_path, ascii, maxval, channels):
    array = RNG.integers(0, maxval + 1, (5, 6, channels))
    path = write_netpbm(
        tmp_path / ("x.pgm" if channels == 1 else "x.ppm"), array, maxval, ascii=ascii
    )
    out, info = decode(path)
    assert out.dtype == (np.uint16 if maxval > 255 else np.uint8)
    np.testing.assert_array_equal(out, array)
    assert info.stored_bits == int(maxval).bit_length()
    assert info.extra["maxval"] == maxval
    assert probe(path) == info


def test_netpbm_sample_above_maxval_is_corrupt(tmp_path):
    path = tmp_path / "bad.pgm"
    path.write_bytes(b"P5\n2 1\n100\n" + bytes([5, 200]))
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "corrupt"


def test_netpbm_short_raster_is_truncated(tmp_path):
    path = tmp_path / "short.ppm"
    path.write_bytes(b"P6 4 4 65535\n" + bytes(10))
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "truncated"


def test_pbm_reads_zero_one(tmp_path):
    path = tmp_path / "b.pbm"
    path.write_bytes(b"P1\n3 1\n1 0 1\n")  # 1 is black in PBM
    out, info = decode(path)
    assert out.dtype == np.uint8 and info.stored_bits == 1
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 0])


def test_detection_uses_magic_not_extension(tmp_path):
    array = RNG.integers(0, 256, (3, 3, 3)).astype(np.uint8)
    png_as_bmp = write_png(tmp_path / "really_png.bmp", array)
    assert decode(png_as_bmp)[1].format == "png"
    bmp_as_png = save(tmp_path / "really_bmp.png", array, format="BMP")
    out, info = decode(bmp_as_png)
    assert info.format == "bmp"
    np.testing.assert_array_equal(out, array)


def test_supported_extensions():
    assert SUPPORTED_EXTENSIONS >= {
        "png",
        "jpg",
        "jpeg",
        "bmp",
        "ppm",
        "pgm",
        "pbm",
        "gif",
        "tif",
        "tiff",
        "dcm",
    }
    assert all(ext == ext.lower() and not ext.startswith(".") for ext in SUPPORTED_EXTENSIONS)
