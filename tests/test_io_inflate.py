"""PNG image data inflated by ISA-L or zlib gives identical pixels, and bad streams are named."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from builders import png_bytes, write_png

from preproc.errors import DecodeError
from preproc.io import decode, inflate

RNG = np.random.default_rng(17)


def test_isal_is_the_backend_where_installed():
    pytest.importorskip("isal")
    assert inflate.BACKEND == "isal"


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_001])
def test_stored_stream_inflates_to_its_input(size):
    raw = RNG.integers(0, 256, size, dtype=np.uint8).tobytes()
    assert zlib.decompress(inflate.stored_stream(raw)) == raw


@pytest.mark.parametrize("backend", [None, zlib], ids=["default", "zlib"])
def test_inflate_bounds_output_and_names_problems(backend):
    raw = bytes(100_000)
    stream = zlib.compress(raw)
    assert inflate.inflate(stream, 1000, backend=backend) == raw[:1000]  # a bomb cannot grow
    with pytest.raises(inflate.TruncatedStream):
        inflate.inflate(stream[: len(stream) // 2], len(raw), backend=backend)
    with pytest.raises(inflate.CorruptStream):
        inflate.inflate(stream, len(raw) + 1, backend=backend)  # complete but short
    with pytest.raises(inflate.CorruptStream):
        inflate.inflate(b"\x78\x9c" + b"\xff" * 50, 10, backend=backend)


@pytest.mark.parametrize("shape,dtype", [((23, 31, 3), np.uint8), ((23, 31, 4), np.uint8),
                                         ((23, 31), np.uint16), ((23, 31, 3), np.uint16)])
def test_decode_is_identical_with_either_backend(tmp_path, monkeypatch, shape, dtype):
    top = np.iinfo(dtype).max
    array = RNG.integers(0, top + 1, shape).astype(dtype)
    path = write_png(tmp_path / "a.png", array)
    default, _ = decode(path)
    monkeypatch.setattr(inflate, "_zlib", zlib)
    fallback, _ = decode(path)
    np.testing.assert_array_equal(default, fallback)
    np.testing.assert_array_equal(default, array.reshape(default.shape))


def test_image_data_with_a_bad_filter_type_is_corrupt(tmp_path):
    array = RNG.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    data = bytearray(png_bytes(array, filters=0))
    idat = data.index(b"IDAT") + 4
    length = int.from_bytes(data[idat - 8 : idat - 4], "big")
    rows = bytearray(zlib.decompress(bytes(data[idat : idat + length])))
    rows[0] = 9  # no such filter
    stream = zlib.compress(bytes(rows))
    chunk = len(stream).to_bytes(4, "big") + b"IDAT" + stream
    chunk += zlib.crc32(b"IDAT" + stream).to_bytes(4, "big")
    path = tmp_path / "f.png"
    path.write_bytes(bytes(data[: idat - 8]) + chunk + bytes(data[idat + length + 4 :]))
    with pytest.raises(DecodeError) as info:
        decode(path)
    assert info.value.reason == "corrupt"


def test_8bit_palette_png_expands_through_the_fast_unfilter(tmp_path):
    palette = RNG.integers(0, 256, (7, 3)).astype(np.uint8)
    indices = RNG.integers(0, 7, (9, 10)).astype(np.uint8)
    path = write_png(tmp_path / "p.png", indices, palette=palette, bit_depth=8)
    out, info = decode(path)
    np.testing.assert_array_equal(out, palette[indices])
    assert info.channels == 3


@pytest.mark.parametrize("shape,dtype,kwargs", [
    ((21, 17, 3), np.uint8, {}), ((21, 17), np.uint16, {}), ((21, 17, 2), np.uint8, {}),
    ((21, 17, 4), np.uint16, {}), ((21, 17, 3), np.uint8, {"interlace": True}),
])
def test_large_images_are_left_to_pillow_streaming_with_the_same_pixels(tmp_path, monkeypatch,
                                                                        shape, dtype, kwargs):
    from preproc.io import png, read

    array = RNG.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    path = write_png(tmp_path / "big.png", array, **kwargs)
    fast, _ = decode(path)
    image, _ = read(path, "pillow-or-array")
    monkeypatch.setattr(png, "_FAST_PATH_MAX_BYTES", 0)  # every image counts as "large"
    streamed, _ = decode(path)
    np.testing.assert_array_equal(streamed, fast)
    np.testing.assert_array_equal(fast, array.reshape(fast.shape))
    streamed_image, _ = read(path, "pillow-or-array")
    np.testing.assert_array_equal(np.asarray(streamed_image), np.asarray(image))


def test_running_out_of_memory_is_a_decompression_bomb_not_a_crash(tmp_path, monkeypatch):
    from preproc.io import read

    path = write_png(tmp_path / "a.png", RNG.integers(0, 256, (8, 8, 3)).astype(np.uint8))

    class Exhausted:
        crc32, adler32 = staticmethod(zlib.crc32), staticmethod(zlib.adler32)

        def decompressobj(self):
            raise MemoryError("no room")

    monkeypatch.setattr(inflate, "_zlib", Exhausted())
    for want in ("array", "pillow-or-array"):  # the batch fast path names it the same way
        with pytest.raises(DecodeError) as info:
            read(path, want)
        assert info.value.reason == "decompression-bomb"


def test_palette_with_more_than_256_entries_is_corrupt(tmp_path):
    from builders import png_chunk

    indices = RNG.integers(0, 4, (5, 5)).astype(np.uint8)
    data = png_bytes(indices, palette=RNG.integers(0, 256, (4, 3)).astype(np.uint8), bit_depth=8)
    start = data.index(b"PLTE") - 4
    end = start + 12 + int.from_bytes(data[start : start + 4], "big")
    path = tmp_path / "p.png"
    path.write_bytes(data[:start] + png_chunk(b"PLTE", bytes(300 * 3)) + data[end:])
    with pytest.raises(DecodeError) as info:
        decode(path)
    assert info.value.reason == "corrupt"


@pytest.mark.parametrize("array,trns", [
    (np.array([[0, 7], [7, 200]], np.uint8), (7).to_bytes(2, "big")),
    (np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8), b"\0\4\0\5\0\6"),
])
def test_colour_key_reaches_rgba_conversion_as_with_pillow_open(tmp_path, array, trns):
    from PIL import Image

    from preproc.io import read

    path = write_png(tmp_path / "k.png", array, trns=trns)
    expected = np.asarray(Image.open(path).convert("RGBA"))
    assert (expected[..., 3] == 0).any()  # the key pixel is transparent, as in Keras' load_img
    np.testing.assert_array_equal(np.asarray(read(path, "pillow-or-array")[0].convert("RGBA")), expected)
