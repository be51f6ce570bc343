"""Datasets for the audit tests, built in code under a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from fixtures_images import write_dicom, write_png


def gray12(seed: int, shape=(24, 20)) -> np.ndarray:
    """Random 12-bit content in a uint16 array, always reaching 0 and 4095."""
    arr = np.random.default_rng(seed).integers(0, 4096, shape).astype(np.uint16)
    arr.flat[0], arr.flat[1] = 0, 4095
    return arr


def rgb8(seed: int, shape=(16, 16, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def clean_dataset(root: Path, per_class: int = 4) -> Path:
    """Two classes of 12-bit PNGs with sBIT=12: nothing to report against a 12-bit expect."""
    for cls, base in (("normal", 0), ("pneumonia", 100)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            write_png(root / cls / f"{i:03d}.png", gray12(base + i), sbit=12)
    return root


def messy_dataset(root: Path) -> Path:
    """A 12-bit dataset with one of every problem the audit reports.

    normal/: 4 clean 12-bit PNGs, an 8-bit RGB PNG, a PNG with 16-bit content, a constant image
    and a copy of pneumonia/000.png; pneumonia/: 2 clean PNGs, a truncated and an empty file;
    empty/: no image.
    """
    clean_dataset(root, per_class=4)
    for name in ("002.png", "003.png"):
        (root / "pneumonia" / name).unlink()
    write_png(root / "normal" / "rgb.png", rgb8(7))
    wide = gray12(8)
    wide.flat[2] = 60000
    write_png(root / "normal" / "wide.png", wide)
    write_png(root / "normal" / "flat.png", np.full((8, 8), 1000, np.uint16), sbit=12)
    (root / "normal" / "copy.png").write_bytes((root / "pneumonia" / "000.png").read_bytes())
    good = (root / "pneumonia" / "001.png").read_bytes()
    (root / "pneumonia" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "pneumonia" / "zero.png").write_bytes(b"")
    (root / "empty").mkdir()
    return root


def config_for(root: Path, expect: str = "dtype: uint16\n    bit_depth: 12\n    channels: 1",
               checks: str = "", name: str = "audit.yaml") -> Path:
    """Write a config next to ``root`` pointing at it."""
    text = f"""\
version: 1
source:
  directory: {root.name}
  expect:
    {expect}
"""
    if checks:
        text += "checks:\n" + textwrap.indent(textwrap.dedent(checks), "  ")
    path = root.parent / name
    path.write_text(text, encoding="utf-8")
    return path


def dicom12(path: Path, seed: int, photometric: str = "MONOCHROME2") -> Path:
    return write_dicom(path, gray12(seed, (16, 16)), bits_stored=12, photometric=photometric)
