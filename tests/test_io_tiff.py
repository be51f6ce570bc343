"""TIFF through tifffile: every sample type, planar layouts, byte orders, pages."""

from __future__ import annotations

import numpy as np
import pytest
from builders import write_tiff
from PIL import Image

from preproc.errors import DecodeError, LossyDecodeError
from preproc.io import decode, probe

tifffile = pytest.importorskip("tifffile")

RNG = np.random.default_rng(3)


def random_array(dtype, shape) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (RNG.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return RNG.integers(info.min, info.max, shape, endpoint=True, dtype=dt)


DTYPES = ["uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64"]


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gray_round_trip_every_sample_type(tmp_path, dtype, byteorder):
    array = random_array(dtype, (6, 7))
    path = write_tiff(tmp_path / "g.tif", array, byteorder=byteorder, photometric="minisblack")
    out, info = decode(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (6, 7, 1)
    np.testing.assert_array_equal(out[:, :, 0], array)
    assert info.dtype == dtype
    assert info.stored_bits == np.dtype(dtype).itemsize * 8
    assert info.signed == (np.dtype(dtype).kind == "i")
    assert info.extra["sample_format"] in ("uint", "int", "ieeefp")
    assert probe(path) == info


@pytest.mark.parametrize("planar", ["contig", "separate"])
@pytest.mark.parametrize("channels,photometric", [(3, "rgb"), (4, "rgb"), (2, "minisblack")])
def test_multichannel_to_hwc(tmp_path, planar, channels, photometric):
    array = random_array("uint16", (5, 8, channels))
    options = {"photometric": photometric, "planarconfig": planar}
    if channels != 3:
        options["extrasamples"] = ["unassalpha"] * (1 if channels in (2, 4) else 0)
    if planar == "separate":
        written = np.moveaxis(array, -1, 0)
    else:
        written = array
    path = write_tiff(tmp_path / "c.tiff", written, byteorder=">", **options)
    out, info = decode(path)
    assert out.shape == (5, 8, channels) and out.dtype == np.uint16
    np.testing.assert_array_equal(out, array)
    assert info.photometric == {2: "gray+alpha", 3: "rgb", 4: "rgba"}[channels]
    assert info.extra["planar"] == planar


def test_multipage_decodes_first_page_and_counts_pages(tmp_path):
    pages = random_array("uint16", (4, 3, 5))
    path = write_tiff(tmp_path / "m.tif", pages, photometric="minisblack")
    out, info = decode(path)
    assert info.frames == 4 and probe(path).frames == 4
    np.testing.assert_array_equal(out[:, :, 0], pages[0])


def test_bilevel_reads_zero_one(tmp_path):
    array = RNG.integers(0, 2, (5, 11)).astype(bool)
    out, info = decode(write_tiff(tmp_path / "b.tif", array))
    assert out.dtype == np.uint8 and info.stored_bits == 1
    np.testing.assert_array_equal(out[:, :, 0], array.astype(np.uint8))


def test_palette_expands_through_16_bit_colormap(tmp_path):
    colormap = RNG.integers(0, 65536, (3, 256)).astype(np.uint16)
    indices = RNG.integers(0, 256, (4, 6)).astype(np.uint8)
    path = write_tiff(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap)
    out, info = decode(path)
    assert out.dtype == np.uint16 and info.channels == 3 and probe(path).channels == 3
    np.testing.assert_array_equal(out, colormap[:, indices].transpose(1, 2, 0))


def test_miniswhite_is_not_inverted(tmp_path):
    array = random_array("uint8", (3, 3))
    out, info = decode(write_tiff(tmp_path / "w.tif", array, photometric="miniswhite"))
    assert info.photometric == "miniswhite"
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_cmyk_is_lossy(tmp_path):
    path = write_tiff(tmp_path / "k.tif", random_array("uint8", (3, 3, 4)), photometric="separated")
    with pytest.raises(LossyDecodeError):
        decode(path)


def test_deflate_compressed_round_trip(tmp_path):
    array = random_array("uint16", (16, 16, 3))
    out, info = decode(write_tiff(tmp_path / "z.tif", array, photometric="rgb", compression="zlib"))
    np.testing.assert_array_equal(out, array)
    assert info.extra["compression"] in ("adobe_deflate", "deflate")


def test_lzw_without_imagecodecs_falls_back_to_pillow_when_exact(tmp_path):
    array = random_array("uint8", (9, 10))
    path = tmp_path / "lzw.tif"
    Image.fromarray(array).save(path, compression="tiff_lzw")
    out, info = decode(path)
    assert info.extra["compression"] == "lzw"
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_truncated_strip_is_an_error_not_zeros(tmp_path):
    # tifffile itself would fill the missing part of the strip with zeros
    path = write_tiff(
        tmp_path / "t.tif", random_array("uint16", (64, 64)), photometric="minisblack"
    )
    with tifffile.TiffFile(path) as tif:
        ifd_offset, data_offset = tif.pages[0].offset, tif.pages[0].dataoffsets[0]
    assert ifd_offset < data_offset  # the tags survive the cut below
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: data_offset + 100])
    assert probe(cut).height == 64
    with pytest.raises(DecodeError) as caught:
        decode(cut)
    assert caught.value.reason == "truncated"


def test_tiff_pixel_limit(tmp_path, monkeypatch):
    path = write_tiff(tmp_path / "l.tif", random_array("uint8", (20, 20)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 399)
    for call in (probe, decode):
        with pytest.raises(DecodeError) as caught:
            call(path)
        assert caught.value.reason == "decompression-bomb"
