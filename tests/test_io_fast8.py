"""The 8-bit fast path returns exactly what decode() returns, or steps aside."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from fixtures_images import png_bytes, write_png
from PIL import Image

from preproc.errors import DecodeError
from preproc.io import decode
from preproc.io.fast8 import open_8bit

RNG = np.random.default_rng(8)


def pillow_file(path, array, fmt, **options):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **options)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("shape", [(9, 7), (9, 7, 2), (9, 7, 3), (9, 7, 4)])
def test_8bit_png_matches_decode(tmp_path, shape):
    array = RNG.integers(0, 256, shape).astype(np.uint8)
    path = write_png(tmp_path / "a.png", array, sbit=5)  # sBIT does not change the samples
    image = open_8bit(path)
    assert image is not None
    expected, _ = decode(path)
    assert np.array_equal(np.asarray(image).reshape(expected.shape), expected)
    assert np.array_equal(np.asarray(image).reshape(array.shape), array)  # the written pixels


@pytest.mark.parametrize("fmt", ["JPEG", "BMP"])
def test_jpeg_and_bmp_match_decode(tmp_path, fmt):
    rows, cols = np.mgrid[0:16, 0:12]  # smooth content: JPEG keeps it close
    array = np.stack([rows * 15, cols * 20, 255 - rows * 10], axis=-1).astype(np.uint8)
    path = pillow_file(tmp_path / f"a.{fmt.lower()}", array, fmt,
                       **({"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}))
    image = open_8bit(path)
    assert image is not None
    assert np.array_equal(np.asarray(image), decode(path)[0])
    error = np.abs(np.asarray(image).astype(int) - array)
    assert error.max() == 0 if fmt == "BMP" else error.mean() < 3  # the written pixels (JPEG: near)


def test_16bit_gray_png_matches_decode(tmp_path):
    array = RNG.integers(0, 65536, (9, 7)).astype(np.uint16)
    path = write_png(tmp_path / "g16.png", array, sbit=12)
    image = open_8bit(path)
    assert image is not None and image.mode.startswith("I;16")
    got = np.asarray(image)
    expected, _ = decode(path)
    assert np.array_equal(got.astype(got.dtype.newbyteorder("=")), expected[..., 0])
    assert np.array_equal(got.astype(np.uint16), array)  # the written pixels


@pytest.mark.parametrize("make", [
    lambda: png_bytes(RNG.integers(0, 65536, (5, 5, 3)).astype(np.uint16)),               # 16 RGB
    lambda: png_bytes(RNG.integers(0, 16, (5, 5)).astype(np.uint8), bit_depth=4),         # 4-bit
    lambda: png_bytes(RNG.integers(0, 4, (5, 5)).astype(np.uint8),
                      palette=RNG.integers(0, 256, (4, 3)).astype(np.uint8)),            # palette
    lambda: b"GIF89a" + b"\0" * 40,
    lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 10,                                            # truncated
])
def test_other_files_step_aside(tmp_path, make):
    path = tmp_path / "x.png"
    path.write_bytes(make())
    assert open_8bit(path) is None


def test_corrupt_8bit_png_steps_aside_and_decode_names_it(tmp_path):
    good = png_bytes(RNG.integers(0, 256, (32, 32, 3)).astype(np.uint8))
    path = tmp_path / "bad.png"
    path.write_bytes(good[: len(good) // 2])
    assert open_8bit(path) is None
    with pytest.raises(DecodeError):
        decode(path)


def test_fifo_and_empty_files_raise_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DecodeError, match="not a regular file"):
        open_8bit(fifo)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError) as info:
        open_8bit(empty)
    assert info.value.reason == "empty"


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_interlaced_8bit_png_takes_the_fast_path_and_matches_decode(tmp_path, channels):
    array = RNG.integers(0, 256, (11, 13, channels)).astype(np.uint8)
    path = write_png(tmp_path / "i.png", array, interlace=True)
    image = open_8bit(path)
    assert image is not None
    np.testing.assert_array_equal(np.asarray(image).reshape(array.shape), array)


def test_apng_steps_aside(tmp_path):
    array = RNG.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    actl = (b"acTL", (2).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    path = write_png(tmp_path / "a.png", array, chunks_before_idat=(actl,))
    assert open_8bit(path) is None


def test_pngs_the_fast_path_refuses_are_not_parsed_before_decode(tmp_path, monkeypatch):
    from preproc.io import png

    path = tmp_path / "c16.png"
    path.write_bytes(png_bytes(RNG.integers(0, 65536, (6, 6, 3)).astype(np.uint16)))

    calls = []
    real = png.parse_png
    monkeypatch.setattr(png, "parse_png", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert open_8bit(path) is None
    assert calls == []  # 16-bit colour steps aside on its IHDR alone; decode() reads it once
