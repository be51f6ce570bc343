"""TIFF decoding facts pinned whole: the info a page yields, each refusal and its reason."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from builders import write_tiff
from PIL import Image

from preproc.errors import DecodeError, LossyDecodeError
from preproc.io import decode, probe
from preproc.io import tiff as T

tifffile = pytest.importorskip("tifffile")


def _ramp(dtype, shape):
    return (np.arange(int(np.prod(shape))) % 200).astype(dtype).reshape(shape)


def _facts(info):
    return (info.format, info.dtype, info.channels, info.height, info.width, info.stored_bits,
            info.photometric, info.signed, info.frames, info.extra)


@pytest.mark.parametrize("dtype, byteorder, fmt, bits, signed", [
    ("uint16", "<", "uint", 16, False),
    ("int16", ">", "int", 16, True),
    ("float32", "<", "ieeefp", 32, False),
    ("int32", "<", "int", 32, True),
])
def test_gray_info_is_pinned_whole(tmp_path, dtype, byteorder, fmt, bits, signed):
    array = _ramp(dtype, (5, 7))
    path = write_tiff(tmp_path / "g.tif", array, byteorder=byteorder, photometric="minisblack")
    expected = ("tiff", dtype, 1, 5, 7, bits, "gray", signed, 1,
                {"compression": "none", "planar": "contig", "byteorder": byteorder,
                 "sample_format": fmt})
    assert _facts(probe(path)) == expected
    out, info = decode(path)
    assert _facts(info) == expected
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_planar_rgb_moves_samples_last(tmp_path):
    array = _ramp("uint8", (3, 4, 6))  # samples first: planar separate
    path = write_tiff(tmp_path / "p.tif", array, photometric="rgb", planarconfig="separate")
    out, info = decode(path)
    assert (info.channels, info.photometric, info.extra["planar"]) == (3, "rgb", "separate")
    np.testing.assert_array_equal(out, np.moveaxis(array, 0, -1))
    assert out.flags["C_CONTIGUOUS"]


def test_contiguous_samples_stay_in_place(tmp_path):
    array = _ramp("uint16", (4, 6, 4))
    path = write_tiff(tmp_path / "c.tif", array, photometric="rgb", extrasamples=["unassalpha"])
    out, info = decode(path)
    assert (info.channels, info.photometric) == (4, "rgba")
    np.testing.assert_array_equal(out, array)


def test_two_samples_are_gray_and_alpha(tmp_path):
    array = _ramp("uint8", (4, 6, 2))
    path = write_tiff(tmp_path / "ga.tif", array, photometric="minisblack",
                      planarconfig="contig")
    out, info = decode(path)
    assert (info.channels, info.photometric) == (2, "gray+alpha")
    np.testing.assert_array_equal(out, array)


def test_more_than_four_samples_are_unsupported(tmp_path):
    path = write_tiff(tmp_path / "five.tif", _ramp("uint8", (4, 6, 5)), photometric="minisblack",
                      planarconfig="contig")
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert caught.value.reason == "unsupported"
    assert caught.value.detail == "5 samples per pixel"
    assert type(caught.value) is DecodeError


def test_miniswhite_keeps_its_samples_and_says_so(tmp_path):
    array = _ramp("uint8", (3, 4))
    path = write_tiff(tmp_path / "w.tif", array, photometric="miniswhite")
    out, info = decode(path)
    assert (info.photometric, info.channels, info.stored_bits) == ("miniswhite", 1, 8)
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_palette_info_and_pixels(tmp_path):
    indices = np.array([[0, 1], [2, 3]], np.uint8)
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :4] = [[0, 1000, 2000, 65535], [5, 6, 7, 8], [9, 10, 11, 12]]
    path = write_tiff(tmp_path / "pal.tif", indices, photometric="palette", colormap=colormap)
    out, info = decode(path)
    assert (info.dtype, info.channels, info.stored_bits, info.photometric) == \
        ("uint16", 3, 16, "rgb")
    assert info.extra["palette_bits"] == 8
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[1, 1], [65535, 8, 12])
    np.testing.assert_array_equal(out[0, 1], [1000, 6, 10])


def test_bilevel_is_uint8_with_one_stored_bit(tmp_path):
    array = np.array([[True, False, True], [False, False, True]])
    path = write_tiff(tmp_path / "b.tif", array, photometric="minisblack")
    out, info = decode(path)
    assert (out.dtype, info.dtype, info.stored_bits) == (np.uint8, "uint8", 1)
    np.testing.assert_array_equal(out[:, :, 0], array.astype(np.uint8))


def test_cmyk_names_the_colour_space(tmp_path):
    path = write_tiff(tmp_path / "k.tif", _ramp("uint8", (3, 3, 4)), photometric="separated")
    with pytest.raises(LossyDecodeError) as caught:
        probe(path)
    assert caught.value.reason == "lossy"
    assert caught.value.detail == ("TIFF photometric SEPARATED can only be read as gray or RGB "
                                   "by a lossy colour conversion")


def test_volumes_are_unsupported(tmp_path):
    path = write_tiff(tmp_path / "v.tif", _ramp("uint8", (2, 3, 4)), volumetric=True,
                      photometric="minisblack", tile=(16, 16))
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "unsupported"
    assert caught.value.detail.startswith("TIFF page with axes ")
    assert "(volumetric or tiled depth)" in caught.value.detail


def test_enum_names_fall_back_to_the_number():
    assert T._enum_name(tifffile.COMPRESSION, 8) == "adobe_deflate"
    assert T._enum_name(tifffile.COMPRESSION, 1.0) == "none"
    assert T._enum_name(tifffile.COMPRESSION, 54321) == "54321"


@pytest.mark.parametrize("exc, reason, detail", [
    (RuntimeError("needs imagecodecs"), "compressed-unsupported",
     "RuntimeError: needs imagecodecs; install imagecodecs"),
    (ValueError("COMPRESSION.LZW"), "compressed-unsupported",
     "ValueError: COMPRESSION.LZW; install imagecodecs"),
    (EOFError("x"), "truncated", "EOFError: x"),
    (ValueError("data Truncated"), "truncated", "ValueError: data Truncated"),
    (OSError("unexpected EOF"), "truncated", "OSError: unexpected EOF"),
    (KeyError("eof"), "corrupt", "KeyError: 'eof'"),
    (ValueError("bad tag"), "corrupt", "ValueError: bad tag"),
])
def test_errors_are_classified_by_what_they_say(exc, reason, detail):
    err = T._tiff_errors("f.tif", exc)
    assert (err.path, err.reason, err.detail) == ("f.tif", reason, detail)


def test_garbage_is_corrupt_for_probe_and_decode(tmp_path):
    path = tmp_path / "g.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 40)
    for read in (probe, decode):
        with pytest.raises(DecodeError) as caught:
            read(path)
        assert caught.value.reason in ("corrupt", "truncated")
        assert type(caught.value) is DecodeError


def test_extent_check_counts_the_last_byte_exactly():
    page = type("Page", (), {"dataoffsets": (10, 50, 0), "databytecounts": (40, 10, 0)})()
    T._check_extent("f.tif", page, 60)  # 50 + 10 ends exactly at the end of the file
    with pytest.raises(DecodeError) as caught:
        T._check_extent("f.tif", page, 59)
    assert (caught.value.reason, caught.value.detail) == (
        "truncated", "image data at 50+10 past end of file (59)")
    empty = type("Page", (), {"dataoffsets": (100,), "databytecounts": (0,)})()
    T._check_extent("f.tif", empty, 10)  # an empty strip reads nothing


def test_pillow_fallback_keeps_bilevel_as_zero_one(tmp_path):
    array = np.zeros((6, 9), bool)
    array[::2, 1::3] = True
    path = tmp_path / "bw.tif"
    Image.fromarray(array).save(path, compression="tiff_lzw")
    out, info = decode(path)
    assert info.extra["compression"] == "lzw"
    assert out.dtype == np.uint8 and out.shape == (6, 9, 1)
    np.testing.assert_array_equal(out[:, :, 0], array.astype(np.uint8))


def test_pillow_fallback_refuses_what_it_would_change(tmp_path):
    array = _ramp("uint8", (6, 9))
    path = tmp_path / "lzw.tif"
    Image.fromarray(array).save(path, compression="tiff_lzw")
    _, info = decode(path)
    cause = DecodeError(path, "compressed-unsupported", "needs imagecodecs")
    data = path.read_bytes()
    wrong_dtype = type(info)(**{**info.__dict__, "dtype": "uint16"})
    with pytest.raises(DecodeError) as caught:
        T._pillow_fallback(path, data, wrong_dtype, cause)
    assert caught.value is cause
    wrong_channels = type(info)(**{**info.__dict__, "channels": 2})
    with pytest.raises(DecodeError) as caught:
        T._pillow_fallback(path, data, wrong_channels, cause)
    assert caught.value is cause
    out = T._pillow_fallback(path, data, info, cause)
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_lzw_rgb_through_pillow(tmp_path):
    array = _ramp("uint8", (5, 6, 3))
    path = tmp_path / "rgb.tif"
    Image.fromarray(array).save(path, compression="tiff_lzw")
    out, info = decode(path)
    assert (info.channels, info.photometric) == (3, "rgb")
    np.testing.assert_array_equal(out, array)


def test_decoded_shape_must_match_the_tags(tmp_path, monkeypatch):
    path = write_tiff(tmp_path / "s.tif", _ramp("uint8", (4, 5)), photometric="minisblack")
    monkeypatch.setattr(T, "_to_hwc", lambda page, array: array[:, :2, None])
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert (caught.value.reason, caught.value.detail) == (
        "corrupt", "decoded shape (4, 2, 1) does not match the tags")


def test_multipage_counts_frames_in_the_probe(tmp_path):
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as w:
        for i in range(3):
            w.write(_ramp("uint8", (4, 4)) + i, photometric="minisblack")
    assert probe(path).frames == 3
    out, info = decode(path)
    assert info.frames == 3
    np.testing.assert_array_equal(out[:, :, 0], _ramp("uint8", (4, 4)))


def test_decode_from_an_in_memory_file():
    buf = io.BytesIO()
    tifffile.imwrite(buf, _ramp("uint16", (3, 3)), photometric="minisblack")
    out, info = T.decode_tiff("mem.tif", buf.getvalue())
    assert info.path == "mem.tif"
    np.testing.assert_array_equal(out[:, :, 0], _ramp("uint16", (3, 3)))


# --- TIFFs tifffile cannot decode without imagecodecs, made by hand ---------------------------

def _lzw_literals(data: bytes) -> bytes:
    """TIFF LZW of ``data`` using literal codes only (9 bits, a Clear code every 200 bytes)."""
    codes = []
    for i in range(0, len(data), 200):
        codes.append(256)
        codes.extend(data[i : i + 200])
    codes.append(257)
    bits = "".join(format(c, "09b") for c in codes)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def _as_lzw(array, *, byteorder=">", corrupt=False, **options) -> bytes:
    """An uncompressed one-strip TIFF of ``array`` turned into an LZW one."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, byteorder=byteorder, **options)
    data = buf.getvalue()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        (offset,), (count,) = page.dataoffsets, page.databytecounts
        compression = page.tags["Compression"].valueoffset
        counts = page.tags["StripByteCounts"]
    assert offset + count == len(data)  # the strip is the file's last part
    encoded = b"\xff" * 8 if corrupt else _lzw_literals(data[offset:])
    out = bytearray(data[:offset] + encoded)
    struct.pack_into(byteorder + "H", out, compression, 5)
    struct.pack_into(byteorder + ("I" if counts.dtype == 4 else "H"), out, counts.valueoffset,
                     len(encoded))
    return bytes(out)


def test_big_endian_pixels_from_the_pillow_fallback_come_in_native_order(tmp_path):
    array = (np.arange(48, dtype=np.uint16) * 1361).reshape(6, 8)
    path = tmp_path / "be.tif"
    path.write_bytes(_as_lzw(array, photometric="minisblack"))
    out, info = decode(path)
    assert (info.extra["compression"], info.extra["byteorder"]) == ("lzw", ">")
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_what_pillow_would_narrow_stays_unsupported(tmp_path):
    array = (np.arange(72, dtype=np.uint16) * 900).reshape(4, 6, 3)
    path = tmp_path / "rgb16.tif"
    path.write_bytes(_as_lzw(array, photometric="rgb"))
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "compressed-unsupported"
    assert caught.value.path == str(path)
    assert caught.value.detail.endswith("; install imagecodecs")


def test_data_pillow_cannot_read_either_names_the_file(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(_as_lzw(np.arange(64, dtype=np.uint8).reshape(8, 8), corrupt=True,
                             photometric="minisblack"))
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)


def test_refusals_name_the_file_and_what_is_wrong(tmp_path):
    def refused(read, name, data):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DecodeError) as caught:
            read(path)
        assert caught.value.path == str(path)
        return caught.value.reason, caught.value.detail

    for read in (probe, decode):
        assert refused(read, "nopages.tif", b"II*\x00" + b"\xff" * 40) == (
            "corrupt", "TIFF without pages")
        reason, detail = refused(read, "tags.tif", b"II*\x00\x08\x00\x00\x00\xff\xff" + bytes(20))
        assert reason == "corrupt" and detail.startswith("TiffFileError: ")
        reason, detail = refused(read, "short.tif", b"II*\x00\x08\x00")
        assert reason == "corrupt" and detail.startswith("error: ")
        five = write_tiff(tmp_path / "five.tif", _ramp("uint8", (4, 6, 5)),
                          photometric="minisblack", planarconfig="contig")
        assert refused(read, "five2.tif", five.read_bytes()) == (
            "unsupported", "5 samples per pixel")
        cmyk = write_tiff(tmp_path / "k.tif", _ramp("uint8", (3, 3, 4)), photometric="separated")
        assert refused(read, "k2.tif", cmyk.read_bytes())[0] == "lossy"
        volume = write_tiff(tmp_path / "v.tif", _ramp("uint8", (2, 3, 4)), volumetric=True,
                            photometric="minisblack", tile=(16, 16))
        assert refused(read, "v2.tif", volume.read_bytes())[0] == "unsupported"


def test_truncation_and_shape_errors_name_the_file(tmp_path, monkeypatch):
    path = write_tiff(tmp_path / "t.tif", _ramp("uint16", (64, 64)), photometric="minisblack")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DecodeError) as caught:
        decode(cut)
    assert (caught.value.reason, caught.value.path) == ("truncated", str(cut))
    monkeypatch.setattr(T, "_to_hwc", lambda page, array: array[:, :2, None])
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert (caught.value.reason, caught.value.path) == ("corrupt", str(path))


def test_too_many_pixels_names_the_file(tmp_path, monkeypatch):
    path = write_tiff(tmp_path / "l.tif", _ramp("uint8", (20, 20)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 399)
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert (caught.value.reason, caught.value.path) == ("decompression-bomb", str(path))
