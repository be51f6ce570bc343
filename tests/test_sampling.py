"""Header sampling for `preproc check`: spread, determinism, findings, the sampled spec."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from builders import clean_dataset, config_for, dicom12, gray12, rgb8, write_png

from preproc.config.model import load_config
from preproc.dataset.sampling import pick_sample, sample_headers, spec_from_headers
from preproc.io import READERS, ImageInfo


def _items(sizes: dict) -> list:
    return [(f"{c}/{i:04d}.png", c) for c, n in sizes.items() for i in range(n)]


def test_sample_is_spread_over_classes_and_deterministic():
    items = _items({"a": 1000, "b": 30, "c": 2})
    sample = pick_sample(items, 64)
    counts = {c: sum(1 for _, k in sample if k == c) for c in "abc"}
    assert len(sample) == 64
    assert counts == {"a": 32, "b": 30, "c": 2}
    assert pick_sample(items, 64) == sample
    picked_a = [int(p[2:6]) for p, c in sample if c == "a"]
    assert min(picked_a) < 100 and max(picked_a) > 900  # evenly within the class too
    assert sample == sorted(sample, key=items.index)


def test_small_dataset_is_sampled_whole():
    items = _items({"a": 3, "b": 2})
    assert pick_sample(items, 64) == items
    assert pick_sample(items, 0) == []


# Every way into pixel data: preproc's decoders (each module-level binding of them, wherever it
# was imported by name) and the pixel loads of the libraries they sit on.
_PIXEL_FUNCTIONS = [
    ("preproc.io.readers", "decode"), ("preproc.io.png", "decode_png"),
    ("preproc.io.png", "pillow_image"), ("preproc.io.tiff", "decode_tiff"),
    ("preproc.io.dicom", "decode_dicom"), ("preproc.io.netpbm", "decode_netpbm"),
    ("preproc.io._pillow", "decode_pillow"), ("preproc.io._pillow", "image_to_array"),
    ("preproc.io.pngfilter", "reconstruct"),
    ("preproc.io.pngfilter", "unfilter"), ("preproc.io.inflate", "inflate"),
]
_PIXEL_METHODS = [
    ("PIL.Image", "Image", "load"), ("PIL.ImageFile", "ImageFile", "load"),
    ("PIL.Image", "Image", "tobytes"), ("PIL.Image", "Image", "getdata"),
    ("tifffile", "TiffFile", "asarray"), ("tifffile", "TiffPage", "asarray"),
    ("tifffile", "TiffPage", "segments"), ("pydicom.dataset", "Dataset", "pixel_array"),
    ("numpy", None, "frombuffer"),
]


@pytest.fixture
def pixel_reads(monkeypatch):
    """Replace every pixel-reading entrance with a counter that then raises; yield the hits."""
    import importlib
    import sys

    hits: list[str] = []

    def tripwire(name, original):
        def call(*args, **kwargs):
            hits.append(name)
            raise AssertionError(f"{name} read pixels")
        return call

    for mod_name, attr in _PIXEL_FUNCTIONS:
        original = getattr(importlib.import_module(mod_name), attr)
        wire = tripwire(f"{mod_name}.{attr}", original)
        for mod in [m for k, m in sys.modules.items() if k.startswith("preproc") and m]:
            for key, value in list(vars(mod).items()):
                if value is original:
                    monkeypatch.setattr(mod, key, wire)
    for mod_name, cls_name, attr in _PIXEL_METHODS:
        owner = importlib.import_module(mod_name)
        owner = getattr(owner, cls_name) if cls_name else owner
        wire = tripwire(f"{mod_name}.{cls_name or ''}.{attr}", None)
        if isinstance(vars(owner).get(attr), property):
            monkeypatch.setattr(owner, attr, property(wire))
        elif cls_name is None:
            original = getattr(owner, attr)
            monkeypatch.setattr(owner, attr, _frombuffer_guard(original, hits))
        else:
            monkeypatch.setattr(owner, attr, wire)
    for fmt, reader in READERS.items():  # the one table every route to pixels passes
        monkeypatch.setitem(READERS, fmt, dataclasses.replace(
            reader, decode=tripwire(f"READERS[{fmt}].decode", None)))
    parse = importlib.import_module("preproc.io.png").parse_png

    def header_only_parse(path, source, *, read_pixels):
        if read_pixels:
            hits.append("preproc.io.png.parse_png(read_pixels=True)")
        return parse(path, source, read_pixels=read_pixels)

    monkeypatch.setattr("preproc.io.png.parse_png", header_only_parse)
    return hits


def _frombuffer_guard(original, hits):
    """numpy.frombuffer is fine on small header fields; on image-sized buffers it reads pixels."""
    def call(buffer, *args, **kwargs):
        if len(memoryview(buffer).cast("B")) > 256:
            hits.append("numpy.frombuffer")
        return original(buffer, *args, **kwargs)
    return call


def _every_format(root):
    """A class folder with one file of every format the listing takes, all small."""
    from builders import write_dicom, write_netpbm, write_tiff
    from PIL import Image

    cls = root / "mixed"
    cls.mkdir(parents=True)
    write_png(cls / "gray12.png", gray12(1), sbit=12)
    write_png(cls / "rgb8.png", rgb8(2))
    write_png(cls / "palette.png", rgb8(3)[:, :, 0] % 4, bit_depth=2)
    write_tiff(cls / "scan.tif", gray12(4))
    write_tiff(cls / "deflate.tif", gray12(5), compression="zlib")
    write_dicom(cls / "ct.dcm", gray12(6, (16, 16)), bits_stored=12)
    write_netpbm(cls / "color.ppm", gray12(7, (8, 8, 3)), 4095)
    Image.fromarray(rgb8(8)).save(cls / "photo.jpg", quality=95)
    Image.fromarray(rgb8(9)).save(cls / "photo.bmp")
    Image.fromarray(rgb8(10)[:, :, 0]).save(cls / "still.gif")
    return root


_ALL_EXTENSIONS = "extensions: [png, jpg, bmp, ppm, tif, dcm, gif]"


def test_sampled_headers_of_every_format_read_no_pixels(tmp_path, request):
    from preproc.analysis import check

    root = _every_format(tmp_path / "data")
    pixel_reads = request.getfixturevalue("pixel_reads")  # armed once the files are written
    declared = tmp_path / "declared.yaml"
    declared.write_text("version: 1\nsource:\n  directory: data\n  " + _ALL_EXTENSIONS
                        + "\n  expect: {dtype: uint16, bit_depth: 12}\n")
    cfg = load_config(declared)
    infos, findings = sample_headers(cfg, n=64)
    assert len(infos) == 10  # every file's header was read, none failed on the tripwires
    assert {i.format for i in infos} >= {"png", "tiff", "dicom", "ppm", "jpeg", "bmp", "gif"}
    assert not [f for f in findings if f.code == "unreadable-file"]
    report = check(cfg)  # the command's path: sampling, then the static check
    assert "unreadable-file" not in report.codes
    bare = tmp_path / "bare.yaml"  # nothing declared: the headers are all there is to go on
    bare.write_text("version: 1\nsource:\n  directory: data\n  " + _ALL_EXTENSIONS
                    + "\nstages:\n  - clip: {min: 0, max: 1}\n")
    assert "mixed-bit-depth" in check(load_config(bare)).codes
    assert pixel_reads == []


def test_the_tripwires_catch_a_decode(tmp_path, request):
    """The fixture is not hollow: the decoders it names do trip it."""
    import preproc.io

    path = write_png(tmp_path / "a.png", gray12(1), sbit=12)
    pixel_reads = request.getfixturevalue("pixel_reads")
    with pytest.raises(AssertionError):
        preproc.io.decode(path)
    for want in ("array", "pillow-or-array"):
        with pytest.raises(AssertionError):
            preproc.io.read(path, want)
    assert pixel_reads == ["preproc.io.readers.decode", "READERS[png].decode",
                           "READERS[png].decode"]


def test_sample_finds_header_mismatch_without_decoding(tmp_path, request):
    root = clean_dataset(tmp_path / "data", per_class=5)
    write_png(root / "normal" / "zz.png", rgb8(1))
    pixel_reads = request.getfixturevalue("pixel_reads")
    infos, findings = sample_headers(load_config(config_for(root)), n=64)
    assert len(infos) == 11
    codes = {f.code for f in findings}
    assert codes == {"bit-depth-mismatch", "mixed-bit-depth"}
    assert all("sample of 11 of 11 files" in f.message for f in findings)
    assert pixel_reads == []


def test_sample_reports_unreadable_headers(tmp_path):
    root = clean_dataset(tmp_path / "data", per_class=2)
    (root / "normal" / "empty.png").write_bytes(b"")
    infos, findings = sample_headers(load_config(config_for(root)), n=64)
    assert len(infos) == 4
    assert [f.code for f in findings] == ["unreadable-file"]
    assert findings[0].files == ("normal/empty.png",)


def test_spec_from_headers_uses_stored_bits(tmp_path):
    root = tmp_path / "data"
    (root / "c").mkdir(parents=True)
    dicom12(root / "c" / "a.dcm", 1)
    write_png(root / "c" / "b.png", gray12(2), sbit=12)
    cfg = load_config(config_for(root, expect="dtype: uint16"))
    infos, _ = sample_headers(cfg)
    spec = spec_from_headers(infos)
    assert (spec.dtype, spec.bits, spec.channels) == ("uint16", 12, 1)
    assert (spec.interval.lo, spec.interval.hi) == (0, 4095)


def _info(dtype, bits, channels=1, signed=False):
    return ImageInfo("x", "dicom", dtype, channels, 4, 4, bits, "MONOCHROME2", signed)


def test_spec_from_headers_edge_cases():
    assert spec_from_headers([]) is None
    assert spec_from_headers([_info("uint16", 12), _info("uint8", 8)]) is None
    signed = spec_from_headers([_info("int16", 12, signed=True)])
    assert (signed.interval.lo, signed.interval.hi) == (-2048, 2047)
    mixed_channels = spec_from_headers([_info("uint8", 8, 1), _info("uint8", 8, 3)])
    assert mixed_channels.channels is None
    floats = spec_from_headers([_info("float32", 32)])
    assert floats.bits is None and math.isinf(floats.interval.hi)


def test_check_reports_bit_depth_mismatch_from_the_sample(tmp_path):
    from preproc.analysis import check

    root = tmp_path / "data"
    (root / "c").mkdir(parents=True)
    for i in range(3):
        write_png(root / "c" / f"{i}.png", gray12(i), sbit=10)
    report = check(load_config(config_for(root)))
    mismatch = [f for f in report.findings if f.code == "bit-depth-mismatch"]
    assert mismatch and mismatch[0].data["found"] == [10]


@pytest.mark.parametrize(("n", "counts", "picked_a"), [
    (1, {"a": 1}, [5]),
    (3, {"a": 1, "b": 1, "c": 1}, [5]),
    (5, {"a": 2, "b": 2, "c": 1}, [2, 7]),  # the small class is not starved
    (17, {"a": 8, "b": 8, "c": 1}, [0, 1, 3, 4, 5, 6, 8, 9]),
])
def test_sample_size_is_respected(n, counts, picked_a):
    items = _items({"a": 10, "b": 10, "c": 1})
    sample = pick_sample(items, n)
    assert len(sample) == len(set(sample)) == n
    classes = [k for _, k in sample]
    assert {c: classes.count(c) for c in "abc" if c in classes} == counts
    assert [int(p[2:6]) for p, c in sample if c == "a"] == picked_a  # evenly spaced in the class
    assert sample == sorted(sample, key=items.index)  # listing order kept


def test_tiff_bits_per_sample_equal_to_container_is_no_bit_depth_claim(tmp_path):
    """A uint16 TIFF says BitsPerSample=16 whatever its content; only sBIT-like fields claim."""
    from builders import write_png, write_tiff

    from preproc import check, load_config

    data = tmp_path / "data" / "a"
    data.mkdir(parents=True)
    content = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    write_tiff(data / "scan.tif", content)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("version: 1\nsource:\n  directory: data\n"
                        "  expect: {dtype: uint16, bit_depth: 12, channels: 1}\n")
    assert "bit-depth-mismatch" not in check(load_config(cfg_path)).codes
    write_png(data / "claims10.png", content, sbit=10)  # a real claim of 10 stored bits
    report = check(load_config(cfg_path))
    assert "bit-depth-mismatch" in report.codes
    (f,) = [f for f in report.findings if f.code == "bit-depth-mismatch"]
    assert f.files == ("a/claims10.png",)
