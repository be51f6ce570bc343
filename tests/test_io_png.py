"""PNG decoding: every bit depth, colour type, filter and interlace, bit for bit."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from builders import PNG_SIGNATURE, png_bytes, png_chunk, write_png
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from preproc.dtypes import dtype_range, levels_range
from preproc.errors import DecodeError
from preproc.io import decode, pngfilter, probe

RNG = np.random.default_rng(20240501)

# (bit depth, channels) of every non-palette PNG variant
VARIANTS = [
    (1, 1),
    (2, 1),
    (4, 1),
    (8, 1),
    (16, 1),
    (8, 2),
    (16, 2),
    (8, 3),
    (16, 3),
    (8, 4),
    (16, 4),
]
PHOTOMETRIC = {1: "gray", 2: "gray+alpha", 3: "rgb", 4: "rgba"}


def random_image(bit_depth: int, shape) -> np.ndarray:
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return RNG.integers(0, int(levels_range(bit_depth)[1]) + 1, shape).astype(dtype)


@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "adam7"])
@pytest.mark.parametrize("bit_depth,channels", VARIANTS)
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (19, 23)])
def test_round_trip_is_bit_exact(tmp_path, bit_depth, channels, interlace, size):
    array = random_image(bit_depth, size + (channels,))
    path = write_png(
        tmp_path / "x.png", array, bit_depth=bit_depth, interlace=interlace, seed=size[0]
    )
    out, info = decode(path)
    assert out.dtype == array.dtype
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    assert (info.format, info.dtype, info.channels) == ("png", out.dtype.name, channels)
    assert (info.height, info.width) == size
    assert info.stored_bits == bit_depth
    assert info.photometric == PHOTOMETRIC[channels]
    assert probe(path) == info


@pytest.mark.parametrize("kind", range(5), ids=["none", "sub", "up", "average", "paeth"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_each_filter_type_alone_16_bit(tmp_path, kind, channels):
    array = random_image(16, (9, 11, channels))
    out, _ = decode(write_png(tmp_path / "f.png", array, filters=kind))
    np.testing.assert_array_equal(out, array)


def test_smooth_16_bit_rgb_exercises_paeth_branches(tmp_path):
    # gradients make a, b and c tie and cross, which random noise rarely does
    y, x = np.mgrid[0:40, 0:50]
    array = np.stack([x * 1000, y * 1500, (x * y) % 65536], axis=-1).astype(np.uint16)
    out, _ = decode(write_png(tmp_path / "g.png", array, filters=4))
    np.testing.assert_array_equal(out, array)


def test_numpy_decoder_matches_pillow_on_8_bit(tmp_path):
    # Pillow reads 8-bit PNGs exactly, so it is an independent oracle for the NumPy path
    for channels, mode in [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")]:
        for interlace in (False, True):
            array = random_image(8, (13, 17, channels))
            data = png_bytes(array, interlace=interlace, seed=channels)
            pillow = np.asarray(Image.open(io.BytesIO(data))).reshape(array.shape)
            ours = pngfilter.reconstruct(
                zlib.decompress(data[data.index(b"IDAT") + 4 : -16]),  # the single IDAT payload
                height=13,
                width=17,
                bit_depth=8,
                color_type={1: 0, 2: 4, 3: 2, 4: 6}[channels],
                interlaced=interlace,
            )
            np.testing.assert_array_equal(ours, pillow)


def test_low_bit_depths_keep_stored_values_unscaled(tmp_path):
    for bits in (1, 2, 4):
        top = int(levels_range(bits)[1])
        array = np.array([[0, top, 1, top - 1 if top > 1 else 0]], np.uint8)
        out, info = decode(write_png(tmp_path / f"b{bits}.png", array, bit_depth=bits))
        assert out.dtype == np.uint8
        assert int(out.max()) == top  # not scaled to the 8-bit range
        assert info.stored_bits == bits
        np.testing.assert_array_equal(out[:, :, 0], array)


def test_one_bit_png_from_pillow_reads_as_zero_one(tmp_path):
    path = tmp_path / "pil1.png"
    Image.fromarray(np.array([[True, False], [False, True]])).save(path)
    out, info = decode(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], [[1, 0], [0, 1]])
    assert info.stored_bits == 1


def test_16_bit_gray_via_pillow_stays_16_bit(tmp_path):
    array = np.array([[0, 1, 4095], [65535, 257, 32768]], np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(array).save(path)
    out, info = decode(path)
    assert out.dtype == np.uint16 and info.dtype == "uint16"
    np.testing.assert_array_equal(out[:, :, 0], array)


def test_sbit_sets_stored_bits_to_largest_channel_value(tmp_path):
    array = random_image(12, (4, 4, 3)).astype(np.uint16)
    path = write_png(tmp_path / "s.png", array, bit_depth=16, sbit=(12, 10, 11))
    info = probe(path)
    assert info.stored_bits == 12
    assert info.extra["sbit"] == (12, 10, 11)
    out, decoded = decode(path)
    assert decoded.stored_bits == 12
    np.testing.assert_array_equal(out, array)


def test_invalid_sbit_is_ignored_and_reported(tmp_path):
    path = write_png(tmp_path / "s.png", random_image(8, (2, 2)), sbit=9)
    info = probe(path)
    assert info.stored_bits == 8
    assert info.extra["sbit_invalid"] == (9,)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_palette_expands_to_rgb_and_rgba(tmp_path, bits):
    entries = 1 << bits
    palette = RNG.integers(0, 256, (entries, 3)).astype(np.uint8)
    indices = RNG.integers(0, entries, (6, 7)).astype(np.uint8)
    out, info = decode(write_png(tmp_path / "p.png", indices, bit_depth=bits, palette=palette))
    assert (out.dtype, out.shape, info.photometric, info.stored_bits) == (
        np.uint8,
        (6, 7, 3),
        "rgb",
        8,
    )
    np.testing.assert_array_equal(out, palette[indices])
    alpha = RNG.integers(0, 256, entries).astype(np.uint8)
    path = write_png(
        tmp_path / "pa.png", indices, bit_depth=bits, palette=palette, trns=alpha[:-1].tobytes()
    )
    out, info = decode(path)
    assert out.shape == (6, 7, 4) and info.photometric == "rgba"
    expected_alpha = np.append(alpha[:-1], dtype_range(np.uint8)[1]).astype(np.uint8)[indices]
    np.testing.assert_array_equal(out[:, :, 3], expected_alpha)
    assert probe(path).channels == 4


def test_gray_trns_is_reported_not_expanded(tmp_path):
    path = write_png(tmp_path / "t.png", random_image(16, (3, 3)), trns=struct.pack(">H", 7))
    out, info = decode(path)
    assert out.shape == (3, 3, 1)
    assert info.extra["transparency"] == (7,)


def test_png_named_jpg_decodes_as_png(tmp_path):
    array = random_image(16, (4, 5, 3))
    out, info = decode(write_png(tmp_path / "photo.jpg", array))
    assert info.format == "png"
    np.testing.assert_array_equal(out, array)


def test_split_idat_and_ancillary_chunks(tmp_path):
    array = random_image(16, (8, 8, 4))
    path = write_png(
        tmp_path / "m.png", array, idat_pieces=5, chunks_before_idat=[(b"tEXt", b"k\x00v")]
    )
    out, _ = decode(path)
    np.testing.assert_array_equal(out, array)


def test_animated_png_frame_count_is_reported(tmp_path):
    path = write_png(
        tmp_path / "a.png",
        random_image(8, (2, 2)),
        chunks_before_idat=[(b"acTL", struct.pack(">II", 3, 0))],
    )
    assert probe(path).frames == 3


def _bomb_header(width: int, height: int, color_type: int = 2, depth: int = 16) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "color_type,depth", [(2, 16), (0, 8), (6, 8)], ids=["numpy", "pillow-gray", "pillow-rgba"]
)
def test_decompression_bomb_header_is_refused_before_allocation(tmp_path, color_type, depth):
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb_header(100000, 100000, color_type, depth))
    for call in (probe, decode):
        with pytest.raises(DecodeError) as caught:
            call(path)
        assert caught.value.reason == "decompression-bomb"
        assert str(path) in str(caught.value)


def test_zlib_bomb_in_small_image_does_not_inflate_past_the_image(tmp_path):
    # header says 4x4 16-bit RGB; the stream inflates to 50 MB: only what the image needs is read
    array = random_image(16, (4, 4, 3))
    rows = b"".join(b"\x00" + array[r].astype(">u2").tobytes() for r in range(4))
    stream = zlib.compress(rows + b"\x00" * 50_000_000, 9)
    ihdr = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
    path = tmp_path / "zbomb.png"
    path.write_bytes(
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", stream)
        + png_chunk(b"IEND", b"")
    )
    out, _ = decode(path)
    np.testing.assert_array_equal(out, array)


def test_limit_follows_pillow_max_image_pixels(tmp_path, monkeypatch):
    path = write_png(tmp_path / "x.png", random_image(16, (10, 10, 3)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 99)
    with pytest.raises(DecodeError, match="decompression-bomb"):
        decode(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert decode(path)[0].shape == (10, 10, 3)


def test_probe_reads_headers_only(tmp_path):
    # garbage image data: a probe that decoded pixels would fail
    ihdr = struct.pack(">IIBBBBB", 640, 480, 16, 2, 0, 0, 0)
    path = tmp_path / "h.png"
    path.write_bytes(
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"not zlib")
        + png_chunk(b"IEND", b"")
    )
    info = probe(path)
    assert (info.width, info.height, info.dtype, info.channels) == (640, 480, "uint16", 3)
    with pytest.raises(DecodeError) as caught:
        decode(path)
    assert caught.value.reason == "corrupt"


def test_bad_crc_truncation_and_bad_filter(tmp_path):
    good = png_bytes(random_image(16, (6, 6, 3)))
    bad_crc = bytearray(good)
    bad_crc[len(PNG_SIGNATURE) + 8 + 13] ^= 1  # IHDR CRC
    cases = {
        "crc.png": (bytes(bad_crc), "corrupt"),
        "cut.png": (good[: len(good) // 2], "truncated"),
    }
    rows = b"".join(b"\x07" + bytes(6 * 6) for _ in range(6))  # filter type 7 does not exist
    ihdr = struct.pack(">IIBBBBB", 6, 6, 16, 2, 0, 0, 0)
    bad_filter = (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    cases["filter.png"] = (bad_filter, "corrupt")
    short_stream = (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows[:20]))
        + png_chunk(b"IEND", b"")
    )
    cases["short.png"] = (short_stream, "corrupt")
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DecodeError) as caught:
            decode(tmp_path / name)
        assert caught.value.reason == reason, name
        assert name in str(caught.value)


def test_invalid_ihdr_combination_is_corrupt(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 2, 2, 4, 2, 0, 0, 0)  # 4-bit RGB does not exist
    path = tmp_path / "ihdr.png"
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b""))
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert caught.value.reason == "corrupt"


def reference_unfilter(block: np.ndarray, bpp: int) -> np.ndarray:
    """PNG specification, section 9, byte by byte."""
    rows, width = block.shape[0], block.shape[1] - 1
    out = np.zeros((rows, width), np.int64)
    for r in range(rows):
        kind = int(block[r, 0])
        for i in range(width):
            x = int(block[r, 1 + i])
            a = int(out[r, i - bpp]) if i >= bpp else 0
            b = int(out[r - 1, i]) if r else 0
            c = int(out[r - 1, i - bpp]) if r and i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[r, i] = (x + pred) % 256
    return out.astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(
    bpp=st.sampled_from([1, 2, 3, 4, 6, 8]),
    rows=st.integers(1, 6),
    pixels=st.integers(1, 7),
    seed=st.integers(0, 2**32 - 1),
    only_simple=st.booleans(),
)
def test_unfilter_matches_the_specification(bpp, rows, pixels, seed, only_simple):
    rng = np.random.default_rng(seed)
    block = rng.integers(0, 256, (rows, 1 + pixels * bpp)).astype(np.uint8)
    block[:, 0] = rng.integers(0, 3 if only_simple else 5, rows)  # simple rows take the fast path
    np.testing.assert_array_equal(pngfilter.unfilter(block, bpp), reference_unfilter(block, bpp))


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("interlace,filters", [(False, "random"), (True, "random"), (False, 1)])
def test_16_bit_colour_through_pillow_equals_the_numpy_unfilter(tmp_path, channels, interlace,
                                                                filters):
    # Pillow unfilters 16-bit colour in two byte-keeping passes, unless every row uses None, Sub
    # or Up (then NumPy does); the NumPy unfilter on its own is the oracle
    array = random_image(16, (19, 23, channels))
    options = {"interlace": interlace, "seed": channels, "filters": filters}
    data = png_bytes(array, **options)
    out, info = decode(write_png(tmp_path / "c.png", array, **options))
    oracle = pngfilter.reconstruct(
        zlib.decompress(data[data.index(b"IDAT") + 4 : -16]),
        height=19, width=23, bit_depth=16, color_type={3: 2, 4: 6}[channels], interlaced=interlace,
    )
    assert out.dtype == np.uint16 and out.dtype.isnative and info.dtype == "uint16"
    np.testing.assert_array_equal(out, oracle)
    np.testing.assert_array_equal(out, array)
