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


def test_sample_finds_header_mismatch_without_decoding(tmp_path, monkeypatch):
    root = clean_dataset(tmp_path / "data", per_class=5)
    write_png(root / "normal" / "zz.png", rgb8(1))
    for fmt, reader in READERS.items():  # every route to pixels goes through this table
        monkeypatch.setitem(READERS, fmt, dataclasses.replace(reader, decode=_no_decode))
    infos, findings = sample_headers(load_config(config_for(root)), n=64)
    assert len(infos) == 11
    codes = {f.code for f in findings}
    assert codes == {"bit-depth-mismatch", "mixed-bit-depth"}
    assert all("sample of 11 of 11 files" in f.message for f in findings)


def _no_decode(*args, **kwargs):
    raise AssertionError("sampling must not decode pixels")


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


@pytest.mark.parametrize("n", [1, 5, 17])
def test_sample_size_is_respected(n):
    items = _items({"a": 10, "b": 10, "c": 1})
    sample = pick_sample(items, n)
    assert len(sample) == n
    assert len(set(sample)) == n
    assert np.all(np.isin([c for _, c in sample], ["a", "b", "c"]))


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
