"""The one decode entrance: ``read(path, want)`` over the per-format reader table.

``"pillow-or-array"`` (the batch and audit fast path) hands over exactly the values ``"array"``
gives, reads each file once, and lets every error through instead of trying another route.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from builders import png_bytes, write_netpbm, write_png
from PIL import Image

from preproc.errors import DecodeError
from preproc.io import FORMATS, READERS, WANTS, decode, probe, read

RNG = np.random.default_rng(8)


def pillow_file(path, array, fmt, **options):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **options)
    path.write_bytes(buf.getvalue())
    return path


def as_array(pixels, shape):
    return np.asarray(pixels).reshape(shape) if isinstance(pixels, Image.Image) else pixels


def test_every_format_has_exactly_one_reader():
    assert set(READERS) == set(FORMATS)
    assert WANTS == ("header", "pillow-or-array", "array")


@pytest.mark.parametrize("shape", [(9, 7), (9, 7, 2), (9, 7, 3), (9, 7, 4)])
def test_8bit_png_comes_as_a_pillow_image_with_the_array_values(tmp_path, shape):
    array = RNG.integers(0, 256, shape).astype(np.uint8)
    path = write_png(tmp_path / "a.png", array, sbit=5)  # sBIT does not change the samples
    image, info = read(path, "pillow-or-array")
    assert isinstance(image, Image.Image)
    expected, expected_info = read(path)
    assert info == expected_info == read(path, "header")
    assert np.array_equal(np.asarray(image).reshape(expected.shape), expected)


@pytest.mark.parametrize("fmt", ["JPEG", "BMP"])
def test_jpeg_and_bmp_come_as_pillow_images_with_the_array_values(tmp_path, fmt):
    array = RNG.integers(0, 256, (16, 12, 3)).astype(np.uint8)
    path = pillow_file(tmp_path / f"a.{fmt.lower()}", array, fmt)
    image, _ = read(path, "pillow-or-array")
    assert isinstance(image, Image.Image)
    assert np.array_equal(np.asarray(image), decode(path)[0])


@pytest.mark.parametrize("make", [
    lambda: png_bytes(RNG.integers(0, 65536, (5, 5)).astype(np.uint16), sbit=12),        # 16 gray
    lambda: png_bytes(RNG.integers(0, 65536, (5, 5, 3)).astype(np.uint16)),               # 16 RGB
    lambda: png_bytes(RNG.integers(0, 16, (5, 5)).astype(np.uint8), bit_depth=4),         # 4-bit
    lambda: png_bytes(RNG.integers(0, 4, (5, 5)).astype(np.uint8),
                      palette=RNG.integers(0, 256, (4, 3)).astype(np.uint8)),            # palette
])
def test_other_pngs_come_as_the_lossless_array(tmp_path, make):
    path = tmp_path / "x.png"
    path.write_bytes(make())
    pixels, info = read(path, "pillow-or-array")
    expected, expected_info = decode(path)
    assert isinstance(pixels, np.ndarray) and pixels.dtype.isnative
    np.testing.assert_array_equal(pixels, expected)
    assert info == expected_info


def test_pgm_and_pbm_take_their_own_readers(tmp_path):
    pgm = write_netpbm(tmp_path / "a.pgm", RNG.integers(0, 1024, (4, 5)).astype(np.uint16), 1023)
    pixels, info = read(pgm)
    assert pixels.dtype == np.uint16 and info.stored_bits == 10
    pbm = tmp_path / "b.pbm"
    pbm.write_bytes(b"P1\n3 2\n1 0 1\n0 1 0\n")
    bits, info = read(pbm)
    assert info.format == "ppm" and bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
    assert read(pbm, "header") == info


@pytest.mark.parametrize("want", ["pillow-or-array", "array", "header"])
@pytest.mark.parametrize("data,reason", [
    (b"GIF89a" + b"\0" * 40, "corrupt"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 10, "truncated"),
    (b"not an image at all", "unsupported"),
])
def test_bad_files_raise_whatever_is_wanted(tmp_path, want, data, reason):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(DecodeError) as info:
        read(path, want)
    assert info.value.reason in (reason, "corrupt", "truncated")


def test_a_corrupt_8bit_png_raises_after_one_read(tmp_path, monkeypatch):
    from preproc.io import png

    good = png_bytes(RNG.integers(0, 256, (32, 32, 3)).astype(np.uint8))
    path = tmp_path / "bad.png"
    path.write_bytes(good[: len(good) // 2])
    calls = []
    real = png.parse_png
    monkeypatch.setattr(png, "parse_png", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.raises(DecodeError) as info:
        read(path, "pillow-or-array")
    assert info.value.reason == "truncated"
    assert len(calls) == 1  # no second route tried after the error


@pytest.mark.parametrize("bits,channels", [(8, 3), (16, 1), (16, 3)])
def test_each_png_is_parsed_once(tmp_path, monkeypatch, bits, channels):
    from preproc.io import png

    dtype = np.uint8 if bits == 8 else np.uint16
    array = RNG.integers(0, 2**bits, (6, 6, channels)).astype(dtype)
    path = write_png(tmp_path / "c.png", array)
    calls = []
    real = png.parse_png
    monkeypatch.setattr(png, "parse_png", lambda *a, **k: calls.append(a) or real(*a, **k))
    pixels, _ = read(path, "pillow-or-array")
    np.testing.assert_array_equal(as_array(pixels, array.shape), array)
    assert len(calls) == 1


def test_fifo_and_empty_files_raise_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for want in WANTS:
        with pytest.raises(DecodeError, match="not a regular file"):
            read(fifo, want)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError) as info:
        read(empty, "pillow-or-array")
    assert info.value.reason == "empty"


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_interlaced_8bit_png_takes_the_fast_path_and_matches(tmp_path, channels):
    array = RNG.integers(0, 256, (11, 13, channels)).astype(np.uint8)
    path = write_png(tmp_path / "i.png", array, interlace=True)
    image, _ = read(path, "pillow-or-array")
    assert isinstance(image, Image.Image)
    np.testing.assert_array_equal(np.asarray(image).reshape(array.shape), array)


def test_apng_gives_its_default_image_either_way(tmp_path):
    array = RNG.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    actl = (b"acTL", (2).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    path = write_png(tmp_path / "a.png", array, chunks_before_idat=(actl,))
    pixels, info = read(path, "pillow-or-array")
    assert info.frames == 2
    np.testing.assert_array_equal(as_array(pixels, array.shape), read(path)[0])


def test_want_and_options_are_checked(tmp_path):
    path = write_png(tmp_path / "a.png", RNG.integers(0, 256, (4, 4)).astype(np.uint8))
    with pytest.raises(ValueError, match="want must be one of"):
        read(path, "pixels")
    with pytest.raises(TypeError, match="modality_lutt"):
        read(path, modality_lutt=True)
    # an option of another format's reader is accepted and not passed to this one
    np.testing.assert_array_equal(read(path, modality_lut=True)[0], read(path)[0])


def test_probe_and_decode_are_read_spelled_as_functions(tmp_path):
    array = RNG.integers(0, 65536, (5, 4)).astype(np.uint16)
    path = write_png(tmp_path / "g.png", array)
    assert probe(path) == read(path, "header")
    np.testing.assert_array_equal(decode(path)[0], read(path)[0])


@pytest.mark.parametrize("color_mode", ["grayscale", "rgba"])
@pytest.mark.parametrize("content", ["gray16", "rgb8", "truncated"])
def test_the_batch_worker_reads_each_file_once(tmp_path, monkeypatch, color_mode, content):
    import preproc.io.readers as entrance
    from preproc.batches.workers import ImageJob

    if content == "gray16":
        path = write_png(tmp_path / "a.png", RNG.integers(0, 4096, (6, 5)).astype(np.uint16),
                         sbit=12)
    else:
        data = png_bytes(RNG.integers(0, 256, (6, 5, 3)).astype(np.uint8))
        path = tmp_path / "a.png"
        path.write_bytes(data if content == "rgb8" else data[: len(data) // 2])
    reads = []
    real = entrance.read_source
    monkeypatch.setattr(entrance, "read_source", lambda p: reads.append(p) or real(p))
    job = ImageJob([str(path)], color_mode, (4, 4), "nearest", False, [])
    if content == "truncated":
        with pytest.raises(DecodeError):
            job.load(0)
    else:
        out = job.load(0)
        assert out.shape == (4, 4, 1 if color_mode == "grayscale" else 4)
        if content == "gray16" and color_mode == "rgba":
            assert out.dtype == np.uint16 and (out[..., 3] == 4095).all()  # alpha from sBIT
    assert reads == [str(path)]


def test_jpeg_draft_is_a_jpeg_reader_option(tmp_path):
    array = RNG.integers(0, 256, (64, 80, 3)).astype(np.uint8)
    jpeg = pillow_file(tmp_path / "a.jpg", array, "JPEG")
    image, info = read(jpeg, "pillow-or-array", draft=(10, 8))
    assert (info.width, info.height) == (80, 64)  # the header's size
    assert image.size == (10, 8)  # decoded at 1/8: the smallest scale still covering (10, 8)
    full, _ = read(jpeg, "pillow-or-array")
    assert full.size == (80, 64)
    png = write_png(tmp_path / "a.png", array)  # other formats do not take the option
    np.testing.assert_array_equal(read(png, draft=(10, 8))[0], read(png)[0])
