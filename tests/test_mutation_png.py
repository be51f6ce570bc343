"""PNG chunk parsing, header facts and decode routing, each refusal with its reason and words."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from builders import PNG_SIGNATURE, png_bytes, png_chunk

from preproc.errors import DecodeError
from preproc.io import png as P


def _ihdr(w=2, h=2, depth=8, ctype=0, compression=0, filt=0, interlace=0) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, compression, filt,
                                          interlace))


def _png(*chunks, end=True) -> bytes:
    return PNG_SIGNATURE + b"".join(chunks) + (png_chunk(b"IEND", b"") if end else b"")


def _idat(rows: bytes) -> bytes:
    return png_chunk(b"IDAT", zlib.compress(rows))


def _refused(data, read_pixels=True):
    with pytest.raises(DecodeError) as caught:
        P.parse_png("f.png", data, read_pixels=read_pixels)
    assert caught.value.path == "f.png"
    return caught.value.reason, caught.value.detail


def _decode_refused(data):
    with pytest.raises(DecodeError) as caught:
        P.decode_png("f.png", data)
    assert caught.value.path == "f.png"
    return caught.value.reason, caught.value.detail


# --- chunk walk ------------------------------------------------------------------------------

def test_chunk_walk_refusals_name_what_is_wrong():
    gray = _idat(b"\0\1\2\0\3\4")
    assert _refused(b"\x89PNG\r\n\x1a\0" + _ihdr()) == ("corrupt", "not a PNG signature")
    assert _refused(_png(_ihdr(), gray, end=False)) == (
        "truncated", "file ends before the IEND chunk")
    assert _refused(_png(_ihdr(), gray, end=False) + b"\0\0\0") == (
        "truncated", "file ends before the IEND chunk")
    assert _refused(_png(png_chunk(b"tEXt", b"a\0b"), _ihdr(), gray)) == (
        "corrupt", "first chunk is not IHDR")
    assert _refused(_png(_ihdr(), b"\x80\0\0\0IDAT")) == (
        "corrupt", f"chunk length {2**31} out of range")
    cut = _png(_ihdr(), gray, end=False)[:-3]
    assert _refused(cut) == ("truncated", "file ends inside a b'IDAT' chunk")
    bad = bytearray(_png(_ihdr(), gray))
    bad[8 + 8 + 13] ^= 0xFF
    assert _refused(bytes(bad)) == ("corrupt", "CRC mismatch in IHDR chunk")
    assert _refused(_png(_ihdr())) == ("corrupt", "no IDAT chunk")
    assert _refused(_png(_ihdr(ctype=3), gray)) == (
        "corrupt", "palette image without a PLTE chunk")


def test_the_largest_chunk_length_is_accepted():
    # 2**31 - 1 is in range: the file then ends inside that chunk
    assert _refused(_png(_ihdr(), b"\x7f\xff\xff\xffIDAT")) == (
        "truncated", "file ends inside a b'IDAT' chunk")


def test_a_probe_stops_at_the_first_idat_and_needs_no_idat_payload():
    header = P.parse_png("f.png", _png(_ihdr(w=3, h=5), end=False) + b"\0\0\0\5IDAT",
                         read_pixels=False)
    assert (header.width, header.height, header.idat) == (3, 5, [])
    header = P.parse_png("f.png", _png(_ihdr()), read_pixels=False)
    assert header.idat == []


@pytest.mark.parametrize("fields, detail", [
    ({"w": 0}, "invalid size 0x2"),
    ({"h": 0}, "invalid size 2x0"),
    ({"w": 2**31}, f"invalid size {2**31}x2"),
    ({"h": 2**31}, f"invalid size 2x{2**31}"),
    ({"depth": 16, "ctype": 3}, "invalid bit depth 16 for colour type 3"),
    ({"depth": 8, "ctype": 5}, "invalid bit depth 8 for colour type 5"),
    ({"depth": 2, "ctype": 4}, "invalid bit depth 2 for colour type 4"),
    ({"compression": 1}, "unknown compression, filter or interlace method"),
    ({"filt": 1}, "unknown compression, filter or interlace method"),
    ({"interlace": 2}, "unknown compression, filter or interlace method"),
])
def test_ihdr_fields_are_validated(fields, detail):
    assert _refused(_png(_ihdr(**fields)), read_pixels=False) == ("corrupt", detail)


def test_ihdr_of_the_wrong_length_and_the_largest_size():
    assert _refused(_png(png_chunk(b"IHDR", b"\0" * 12))) == (
        "corrupt", "IHDR has 12 bytes, expected 13")
    header = P.parse_png("f.png", _png(_ihdr(w=2**31 - 1, h=2**31 - 1, interlace=1)),
                         read_pixels=False)
    assert (header.width, header.height, header.interlaced) == (2**31 - 1, 2**31 - 1, True)


def test_plte_sizes():
    def plte(n):
        return _png(_ihdr(ctype=3), png_chunk(b"PLTE", bytes(n)), _idat(b"\0\0\0" * 2))

    for n in (0, 2, 769):
        assert _refused(plte(n)) == (
            "corrupt", f"PLTE has {n} bytes; a palette holds 1-256 entries")
    assert P.parse_png("f.png", plte(3), read_pixels=True).palette == bytes(3)
    assert P.parse_png("f.png", plte(768), read_pixels=True).palette == bytes(768)
    # a suggested palette in an RGB image is kept, whatever its size
    rgb = _png(_ihdr(ctype=2), png_chunk(b"PLTE", bytes(2)), _idat(bytes(14)))
    assert P.parse_png("f.png", rgb, read_pixels=True).palette == bytes(2)


def test_actl_frame_counts():
    def frames(payload):
        data = _png(_ihdr(), png_chunk(b"acTL", payload), _idat(bytes(6)))
        return P.parse_png("f.png", data, read_pixels=True).frames

    assert frames(struct.pack(">II", 4, 0)) == 4
    assert frames(struct.pack(">I", 0)) == 1
    assert frames(b"\0\0\5") == 1
    assert frames(struct.pack(">I", 2)) == 2
    assert frames(struct.pack(">I", 2**31)) == 2**31


# --- header facts ----------------------------------------------------------------------------

def _info(depth=8, ctype=0, **chunks):
    header = P.PngHeader(width=3, height=2, bit_depth=depth, color_type=ctype, **chunks)
    return P._info("f.png", header)


def test_info_of_each_colour_type():
    cases = {(8, 0): ("uint8", 1, "gray", 8), (16, 2): ("uint16", 3, "rgb", 16),
             (8, 4): ("uint8", 2, "gray+alpha", 8), (16, 6): ("uint16", 4, "rgba", 16),
             (2, 0): ("uint8", 1, "gray", 2), (4, 3): ("uint8", 3, "rgb", 8)}
    for (depth, ctype), facts in cases.items():
        info = _info(depth, ctype, palette=bytes(3) if ctype == 3 else None)
        assert (info.dtype, info.channels, info.photometric, info.stored_bits) == facts
        assert (info.format, info.path, info.height, info.width, info.frames) == (
            "png", "f.png", 2, 3, 1)
    palette = _info(4, 3, palette=bytes(3))
    assert palette.extra == {"bit_depth": 4, "interlaced": False, "palette_bits": 4}
    with_alpha = _info(2, 3, palette=bytes(3), trns=b"\0")
    assert (with_alpha.channels, with_alpha.photometric) == (4, "rgba")
    assert "transparency" not in with_alpha.extra


def test_sbit_bounds():
    assert _info(8, 0, sbit=bytes([8])).extra["sbit"] == (8,)
    assert _info(8, 0, sbit=bytes([1])).stored_bits == 1
    assert _info(8, 0, sbit=bytes([0])).extra["sbit_invalid"] == (0,)
    assert _info(8, 0, sbit=bytes([9])).stored_bits == 8
    assert _info(8, 0, sbit=b"").extra["sbit_invalid"] == ()
    assert _info(16, 2, sbit=bytes([10, 12, 11])).stored_bits == 12
    assert _info(16, 2, sbit=bytes([10, 17, 11])).extra == {
        "bit_depth": 16, "interlaced": False, "sbit_invalid": (10, 17, 11)}
    # palette entries are 8-bit whatever the index depth
    info = _info(2, 3, palette=bytes(3), sbit=bytes([5, 6, 7]))
    assert (info.stored_bits, info.extra["sbit"]) == (7, (5, 6, 7))
    assert _info(2, 0, sbit=bytes([3])).extra["sbit_invalid"] == (3,)


def test_colour_keys_are_reported_per_sample():
    assert _info(16, 0, trns=struct.pack(">H", 513)).extra["transparency"] == (513,)
    assert _info(8, 2, trns=struct.pack(">3H", 1, 2, 3)).extra["transparency"] == (1, 2, 3)
    assert _info(8, 0, trns=b"\0\7\1").extra["transparency"] == (7,)
    assert _info(8, 0, trns=b"\1").extra["transparency"] == ()


# --- palette expansion -----------------------------------------------------------------------

def test_palette_expansion_pads_missing_entries_black_and_opaque():
    header = P.PngHeader(palette=bytes([1, 2, 3, 4, 5, 6, 7]), trns=bytes([9]))
    indices = np.array([[[0], [1], [2]]], np.uint8)
    out = P._expand_palette(indices, header)
    np.testing.assert_array_equal(out, [[[1, 2, 3, 9], [4, 5, 6, 255], [0, 0, 0, 255]]])
    header = P.PngHeader(palette=bytes([1, 2, 3]))
    np.testing.assert_array_equal(P._expand_palette(indices, header),
                                  [[[1, 2, 3], [0, 0, 0], [0, 0, 0]]])
    header = P.PngHeader(palette=bytes([1, 2, 3]), trns=bytes(range(256)) * 2)
    assert P._expand_palette(indices, header)[0, 2, 3] == 2


# --- routing and Pillow --------------------------------------------------------------------

def test_pillow_keeps_exactly_the_modes_it_reconstructs_unchanged():
    kept = {(d, c) for d in (1, 2, 4, 8, 16) for c in (0, 2, 3, 4, 6) if P.pillow_keeps(d, c)}
    assert kept == {(8, 0), (8, 2), (8, 4), (8, 6), (16, 0)}


def test_colour_keys_reach_pillow_as_image_open_sets_them():
    gray = png_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), trns=struct.pack(">H", 4))
    image, info = P.decode_png("g.png", gray, as_image=True)
    assert image.info["transparency"] == 4
    assert info.extra["transparency"] == (4,)
    rgb = png_bytes(np.arange(18, dtype=np.uint8).reshape(2, 3, 3),
                    trns=struct.pack(">3H", 1, 2, 3))
    image, _ = P.decode_png("c.png", rgb, as_image=True)
    assert image.info["transparency"] == (1, 2, 3)
    short = png_bytes(np.arange(18, dtype=np.uint8).reshape(2, 3, 3), trns=b"\0\1")
    image, _ = P.decode_png("c.png", short, as_image=True)
    assert "transparency" not in image.info
    short = png_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), trns=b"\0")
    image, _ = P.decode_png("c.png", short, as_image=True)
    assert "transparency" not in image.info
    alpha = png_bytes(np.arange(12, dtype=np.uint8).reshape(2, 3, 2), trns=b"\0\1")
    image, _ = P.decode_png("a.png", alpha, as_image=True)
    assert "transparency" not in image.info


def test_as_image_only_for_eight_bit_modes():
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    image, _ = P.decode_png("g.png", png_bytes(array), as_image=True)
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), array)
    out, _ = P.decode_png("g.png", png_bytes(array))
    assert isinstance(out, np.ndarray) and out.shape == (2, 3, 1)
    wide = (np.arange(6, dtype=np.uint16) * 1000).reshape(2, 3)
    out, info = P.decode_png("w.png", png_bytes(wide), as_image=True)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16
    np.testing.assert_array_equal(out[:, :, 0], wide)
    indices = np.array([[0, 1, 1]], np.uint8)
    palette = np.array([[9, 8, 7], [1, 2, 3]], np.uint8)
    out, _ = P.decode_png("p.png", png_bytes(indices, palette=palette), as_image=True)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out[0], [[9, 8, 7], [1, 2, 3], [1, 2, 3]])


def test_large_images_stream_through_pillow(monkeypatch):
    monkeypatch.setattr(P, "_FAST_PATH_MAX_BYTES", 0)
    array = (np.arange(30, dtype=np.uint16) * 2000).reshape(5, 6)
    out, info = P.decode_png("w.png", png_bytes(array, interlace=True))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[:, :, 0], array)
    rgb = np.arange(90, dtype=np.uint8).reshape(5, 6, 3)
    out, _ = P.decode_png("c.png", png_bytes(rgb))
    np.testing.assert_array_equal(out, rgb)
    # indices and 16-bit colour then go through the NumPy unfilter, with the same result
    palette = np.array([[9, 8, 7], [1, 2, 3]], np.uint8)
    out, _ = P.decode_png("p.png", png_bytes(np.array([[1, 0]], np.uint8), palette=palette))
    np.testing.assert_array_equal(out[0], [[1, 2, 3], [9, 8, 7]])
    wide = (np.arange(36, dtype=np.uint16) * 1800).reshape(3, 4, 3)
    out, _ = P.decode_png("c16.png", png_bytes(wide, filters=4))
    np.testing.assert_array_equal(out, wide)


def test_pillow_reading_another_mode_is_unsupported(monkeypatch):
    data = png_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    with pytest.raises(DecodeError) as caught:
        P._pillow_streaming("f.png", data, "RGB")
    assert (caught.value.path, caught.value.reason, caught.value.detail) == (
        "f.png", "unsupported", "Pillow reads this PNG as mode 'L'")
    with pytest.raises(DecodeError):
        P._pillow_streaming("f.png", data, "I;16")
    wide = png_bytes(np.arange(6, dtype=np.uint16).reshape(2, 3) * 999)
    assert P._pillow_streaming("w.png", wide, "I;16").mode in ("I;16", "I;16B", "I;16L")


@pytest.mark.parametrize("filters, numpy_path", [(0, True), (1, True), (2, True), (3, False),
                                                 (4, False)])
def test_sixteen_bit_colour_rows_pick_their_unfilter(filters, numpy_path, monkeypatch):
    wide = (np.arange(36, dtype=np.uint16) * 1800 + 7).reshape(3, 4, 3)
    data = png_bytes(wide, filters=filters)
    header = P.parse_png("f.png", data, read_pixels=True)
    raw = P._inflate("f.png", header)
    assert P._row_filters_only(raw, header) is numpy_path
    out, _ = P.decode_png("c.png", data)
    np.testing.assert_array_equal(out, wide)
    interlaced = P.parse_png("f.png", png_bytes(wide, interlace=True, filters=0),
                             read_pixels=True)
    assert P._row_filters_only(P._inflate("f.png", interlaced), interlaced) is False


def test_mixed_row_filters_use_the_largest():
    wide = (np.arange(36, dtype=np.uint16) * 1800 + 7).reshape(3, 4, 3)
    header = P.parse_png("f.png", png_bytes(wide, filters=[0, 2, 3]), read_pixels=True)
    assert P._row_filters_only(P._inflate("f.png", header), header) is False
    header = P.parse_png("f.png", png_bytes(wide, filters=[2, 1, 0]), read_pixels=True)
    assert P._row_filters_only(P._inflate("f.png", header), header) is True


def test_image_data_errors_keep_their_reason():
    short = _png(_ihdr(w=4, h=4, depth=16, ctype=2), _idat(b"\0" * 20))
    reason, detail = _decode_refused(short)
    assert reason == "corrupt" and detail.startswith("image data: ")
    cut = _png(_ihdr(w=4, h=4, depth=16, ctype=2),
               png_chunk(b"IDAT", zlib.compress(bytes(4 * 25))[:-6]))
    assert _decode_refused(cut)[0] == "truncated"
    rows = b"\7" + bytes(8) + b"\0" + bytes(8)
    bad_filter = _png(_ihdr(w=2, h=2, depth=16, ctype=4), _idat(rows))
    assert _decode_refused(bad_filter) == ("corrupt", "image data: invalid filter type 7")
    garbage = _png(_ihdr(), png_chunk(b"IDAT", b"not zlib at all"))
    reason, detail = _decode_refused(garbage)
    assert reason == "corrupt" and detail.startswith("image data: ")


def test_sub_byte_and_gray_alpha_decode_through_numpy():
    two_bit = np.array([[0, 1, 2, 3, 3]], np.uint8)
    out, info = P.decode_png("t.png", png_bytes(two_bit, bit_depth=2))
    assert (out.dtype, info.stored_bits) == (np.uint8, 2)
    np.testing.assert_array_equal(out[:, :, 0], two_bit)
    ga = (np.arange(12, dtype=np.uint16) * 5000).reshape(2, 3, 2)
    out, info = P.decode_png("ga.png", png_bytes(ga))
    assert out.flags["C_CONTIGUOUS"] and out.dtype == np.uint16
    np.testing.assert_array_equal(out, ga)
    indices = np.array([[0, 1, 2, 3]], np.uint8)
    palette = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], np.uint8)
    out, _ = P.decode_png("p2.png", png_bytes(indices, bit_depth=2, palette=palette,
                                              trns=b"\0\1"))
    np.testing.assert_array_equal(out[0], [[1, 1, 1, 0], [2, 2, 2, 1], [3, 3, 3, 255],
                                           [4, 4, 4, 255]])


# --- routing, memory and colour keys: which path a file takes, and what each path reports -----

def _fail(*args, **kwargs):
    raise AssertionError("this image must not take this path")


def test_a_probe_reads_no_image_data():
    data = _png(_ihdr(w=3, h=5), end=False) + b"\0\0\0\5IDAT"  # the file ends in the IDAT
    info = P.probe_png("f.png", io.BytesIO(data))
    assert (info.width, info.height, info.path) == (3, 5, "f.png")


def test_the_limit_itself_is_still_inflated_here(monkeypatch):
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    data = png_bytes(gray)
    monkeypatch.setattr(P, "_FAST_PATH_MAX_BYTES", P._raw_size(P.parse_png("f", data,
                                                                            read_pixels=True)))
    monkeypatch.setattr(P, "_pillow_streaming", _fail)
    out, _ = P.decode_png("g.png", data)
    np.testing.assert_array_equal(out[:, :, 0], gray)


def test_small_palette_indices_are_unfiltered_by_pillow(monkeypatch):
    palette = np.array([[9, 8, 7], [1, 2, 3]], np.uint8)
    data = png_bytes(np.array([[1, 0], [0, 1]], np.uint8), palette=palette, filters=4)
    size = P._raw_size(P.parse_png("f", data, read_pixels=True))
    monkeypatch.setattr(P, "_FAST_PATH_MAX_BYTES", size)
    monkeypatch.setattr(P.pngfilter, "reconstruct", _fail)
    out, _ = P.decode_png("p.png", data)
    np.testing.assert_array_equal(out, [[[1, 2, 3], [9, 8, 7]], [[9, 8, 7], [1, 2, 3]]])


@pytest.mark.parametrize("channels", [3, 4])
def test_small_sixteen_bit_colour_with_paeth_rows_is_unfiltered_by_pillow(monkeypatch, channels):
    wide = (np.arange(12 * channels, dtype=np.uint16) * 1500 + 3).reshape(3, 4, channels)
    data = png_bytes(wide, filters=4)
    size = P._raw_size(P.parse_png("f", data, read_pixels=True))
    monkeypatch.setattr(P, "_FAST_PATH_MAX_BYTES", size)
    monkeypatch.setattr(P.pngfilter, "reconstruct", _fail)
    out, _ = P.decode_png("c.png", data)
    np.testing.assert_array_equal(out, wide)


def test_sixteen_bit_colour_with_row_filters_only_is_unfiltered_in_numpy(monkeypatch):
    wide = (np.arange(36, dtype=np.uint16) * 1500 + 3).reshape(3, 4, 3)
    monkeypatch.setattr(P, "_reconstruct_16bit_colour", _fail)
    out, _ = P.decode_png("c.png", png_bytes(wide, filters=1))
    np.testing.assert_array_equal(out, wide)


def test_running_out_of_memory_is_a_decompression_bomb(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("no room")

    wide = (np.arange(36, dtype=np.uint16) * 1500 + 3).reshape(3, 4, 3)
    data = png_bytes(wide, filters=1)
    monkeypatch.setattr(P.pngfilter, "reconstruct", no_memory)
    assert _decode_refused(data) == ("decompression-bomb", "out of memory: no room")
    monkeypatch.setattr(P, "inflate", no_memory)
    assert _decode_refused(data) == ("decompression-bomb", "out of memory: no room")


def test_a_truncated_stream_says_why():
    cut = _png(_ihdr(w=4, h=4, depth=16, ctype=2),
               png_chunk(b"IDAT", zlib.compress(bytes(4 * 25))[:-6]))
    reason, detail = _decode_refused(cut)
    assert reason == "truncated" and detail not in ("", "None")


def test_pillow_errors_name_the_file():
    gray = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8), filters=0)
    header = P.parse_png("f.png", gray, read_pixels=True)
    rows = bytes([7]) + bytes(8) + (bytes([0]) + bytes(8)) * 7  # filter type 7 on row 0
    header.idat = [zlib.compress(rows)]
    with pytest.raises(DecodeError) as caught:
        P.pillow_image("f.png", header, gray)
    assert caught.value.path == "f.png"


def _keyed(array, trns):
    data = png_bytes(array, trns=trns)
    return P.pillow_image("k.png", P.parse_png("k.png", data, read_pixels=True), data)


def test_colour_keys_are_unsigned_and_read_from_their_first_samples():
    wide = np.arange(6, dtype=np.uint16).reshape(2, 3) * 9000
    assert _keyed(wide, struct.pack(">H", 40000)).info["transparency"] == 40000
    assert _keyed(wide, struct.pack(">H", 7) + b"\1").info["transparency"] == 7
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    assert _keyed(rgb, struct.pack(">3H", 40000, 2, 3)).info["transparency"] == (40000, 2, 3)
    assert _keyed(rgb, struct.pack(">4H", 1, 2, 3, 4)).info["transparency"] == (1, 2, 3)


def test_streamed_and_palette_errors_name_the_file(monkeypatch):
    rows = bytes([7]) + bytes(8) + (bytes([0]) + bytes(8)) * 7
    bad_gray = _png(_ihdr(w=8, h=8), _idat(rows))
    monkeypatch.setattr(P, "_FAST_PATH_MAX_BYTES", 0)
    assert _decode_refused(bad_gray)[0] in ("corrupt", "truncated")
    monkeypatch.undo()
    palette = png_chunk(b"PLTE", bytes(6))
    cut = _png(_ihdr(w=4, h=4, ctype=3), palette,
               png_chunk(b"IDAT", zlib.compress(bytes(20))[:-6]))
    assert _decode_refused(cut)[0] == "truncated"


def test_pixel_copy_errors_name_the_file(monkeypatch):
    from preproc.io import _pillow

    seen = []

    def no_memory(path, image, info):
        seen.append(path)
        raise MemoryError("no room")

    monkeypatch.setattr(_pillow, "image_to_array", no_memory)
    data = png_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert _decode_refused(data)[0] == "decompression-bomb"
    assert seen == ["f.png"]
