"""Decode budget: every reader refuses an image that would decode past ``source.max_image_bytes``
(or a file too large to read) as ``decompression-bomb`` before allocating its pixels."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hostile_kit import (dicom_bomb, netpbm_bomb, peak_rss, png_bomb, small_image,
                         sparse_corrupt_png, tiff_bomb)
from hypothesis import given
from hypothesis import strategies as st

from preproc.errors import DecodeError
from preproc.io import decode, probe
from preproc.io import _files

BOMBS = {
    "png16-rgba": lambda d: png_bomb(d / "bomb.png"),
    "tiff-float64-rgba": lambda d: tiff_bomb(d / "bomb.tif"),
    "dicom-uint32-rgb": lambda d: dicom_bomb(d / "bomb.dcm"),
    "netpbm": lambda d: netpbm_bomb(d / "bomb.ppm"),
    "sparse-6gib-corrupt-png": lambda d: sparse_corrupt_png(d / "huge.png"),
}

DECODE = """
import json, sys
from preproc.errors import DecodeError
from preproc.io import read
out = {}
for want in ("header", "array", "pillow-or-array"):
    try:
        read(sys.argv[1], want)
        out[want] = "ok"
    except DecodeError as exc:
        out[want] = exc.reason
print(json.dumps(out))
"""

ONE_GIB_MIB = 1024


def test_builders_make_valid_images(tmp_path):
    x, _ = decode(png_bomb(tmp_path / "p.png", 40, 30, 16, 6))
    assert x.shape == (30, 40, 4) and x.dtype == np.uint16 and not x.any()
    x, _ = decode(tiff_bomb(tmp_path / "t.tif", 300, 270))
    assert x.shape == (270, 300, 4) and x.dtype == np.float64 and not x.any()


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_each_bomb_is_refused_before_allocating(tmp_path, kind):
    path = BOMBS[kind](tmp_path)
    res = peak_rss([sys.executable, "-c", DECODE, str(path)])
    assert res["rc"] == 0, res["err"]
    out = __import__("json").loads(res["out"].strip().splitlines()[-1])
    assert out["array"] == "decompression-bomb" == out["pillow-or-array"], out
    if kind != "sparse-6gib-corrupt-png":  # its header is corrupt: probe says so at once
        assert out["header"] == "decompression-bomb", out
    assert res["peak_mib"] < ONE_GIB_MIB, res


def test_audit_of_a_folder_of_bombs_stays_under_one_gib(tmp_path):
    data = tmp_path / "data" / "a"
    data.mkdir(parents=True)
    for make in BOMBS.values():
        make(data)
    res = peak_rss([sys.executable, "-m", "preproc", "audit", str(tmp_path / "data"),
                    "--format", "json", "--workers", "2"])
    assert res["peak_mib"] < ONE_GIB_MIB, res
    assert "decompression-bomb" in res["out"] or "decompression-bomb" in res["err"], res


@pytest.fixture
def budget():
    old = _files.max_image_bytes()
    yield _files.set_max_image_bytes
    _files.set_max_image_bytes(old)


FORMATS = {  # format -> (channels allowed, dtypes allowed)
    "png": ((1, 2, 3, 4), ("uint8",)),
    "png16": ((1, 3, 4), ("uint16",)),
    "tiff": ((1, 3, 4), ("uint8", "uint16", "float32", "float64")),
    "ppm": ((1, 3), ("uint8", "uint16")),
    "bmp": ((1, 3), ("uint8",)),
    "dicom": ((1, 3), ("uint8", "uint16")),
}


@st.composite
def images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    chans, dts = FORMATS[fmt]
    return (fmt, draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.sampled_from(chans)),
            draw(st.sampled_from(dts)), draw(st.integers(-64, 64)))


@given(case=images())
def test_every_reader_refuses_exactly_the_images_over_the_budget(tmp_path_factory, case):
    """The class: for every reader and sample type, decoded bytes > budget <=> refused."""
    fmt, h, w, c, dt, delta = case
    if fmt == "dicom":
        pytest.importorskip("pydicom")
    d = tmp_path_factory.mktemp("img")
    path = small_image(d / f"x.{fmt.rstrip('16')}", fmt.rstrip("16"), h, w, c, dt)
    nbytes = h * w * c * np.dtype(dt).itemsize
    limit = max(1, nbytes + delta)
    old = _files.set_max_image_bytes(limit)
    try:
        for fn in (probe, decode):
            if nbytes > limit:
                with pytest.raises(DecodeError) as err:
                    fn(path)
                assert err.value.reason == "decompression-bomb", (fn, err.value)
            else:
                fn(path)
    finally:
        _files.set_max_image_bytes(old)


def test_the_config_sets_the_budget(tmp_path, budget):
    from hostile_kit import config, dataset

    from preproc.batches.flow import flow
    from preproc.config import load_config

    data = dataset(tmp_path / "data", per_class=2, size=(32, 32))
    path = config(tmp_path / "c.yaml", data, batch_size=2, workers=0)
    text = path.read_text().replace("source:\n", "source:\n  max_image_bytes: 1000\n")
    path.write_text(text)
    from preproc import CheckFailed

    with pytest.raises(CheckFailed, match="decompression-bomb"):  # seen in the headers already
        flow(load_config(path))
    with pytest.raises(DecodeError) as err:
        with flow(load_config(path), check=False) as it:
            next(iter(it))
    assert err.value.reason == "decompression-bomb"
