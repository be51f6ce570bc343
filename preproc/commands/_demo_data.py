"""The built-in demo: a small, realistic, slightly broken dataset and two configs.

:func:`build_dataset` writes two classes of synthetic chest radiographs: 12-bit content in
16-bit grayscale PNGs (the bulk), a 16-bit TIFF, two 8-bit RGB PNG screenshots, one truncated
file and one duplicate across classes. :data:`WRONG_CONFIG` repeats the classic mistake (CLAHE,
then ``rescale: 1/255``); :data:`FIXED_CONFIG` is the corrected pipeline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .. import dtypes
from ..types import Array

__all__ = ["FIXED_CONFIG", "WRONG_CONFIG", "build_dataset", "write_configs"]

CLASSES = ("normal", "pneumonia")
PER_CLASS = 24
SIZE = 256

WRONG_CONFIG = """\
# The classic mistake: CLAHE already returns floats in [0, 1],
# and the Keras habit of rescale=1/255 squeezes them into [0, 0.004].
version: 1
name: demo-wrong
source:
  directory: chest
  extensions: [png, tif, tiff]
  expect: {dtype: uint16, bit_depth: 12, channels: 1}
stages:
  - clahe: {clip_limit: 0.01}
  - rescale: {factor: 1/255}
batches:
  target_size: [224, 224]
  color_mode: grayscale
  batch_size: 8
  seed: 7
"""

FIXED_CONFIG = """\
# The corrected pipeline: map the 12 stored bits to [0, 1] explicitly, equalize, normalize
# in [0, 1] units. Unreadable files are skipped and listed instead of stopping the run.
version: 1
name: demo-fixed
source:
  directory: chest
  extensions: [png, tif, tiff]
  expect: {dtype: uint16, bit_depth: 12, channels: 1}
stages:
  - rescale_intensity: {in_range: bit_depth}
  - clahe: {clip_limit: 0.01}
  - normalize: {mean: 0.5, std: 0.25}
batches:
  target_size: [224, 224]
  color_mode: grayscale
  batch_size: 8
  seed: 7
  validation_split: 0.25
  on_error: skip
checks:
  ignore: [mixed-bit-depth, bit-depth-mismatch, unreadable-file, duplicate-image]
"""


def radiograph(rng: np.random.Generator, size: int, bits: int, sick: bool) -> Array:
    """A synthetic chest radiograph of one patient: body, two lungs, ribs, noise; ``bits`` of
    content. Anatomy, position, exposure gradient and rib spacing vary per patient, so no two
    patients are the same picture (the audit's near-duplicate check would rightly say so)."""
    u = rng.uniform
    y0, x0 = np.mgrid[0:size, 0:size] / size - 0.5
    turn, zoom = np.deg2rad(u(-10, 10)), u(0.8, 1.2)  # how the patient stands in the field
    x = (np.cos(turn) * x0 - np.sin(turn) * y0) * zoom + 0.5 + u(-0.08, 0.08)
    y = (np.sin(turn) * x0 + np.cos(turn) * y0) * zoom + 0.5 + u(-0.08, 0.08)
    bx, by, bw = u(0.42, 0.58), u(0.48, 0.62), u(0.34, 0.48)
    body = np.exp(-(((x - bx) / bw) ** 2 + ((y - by) / u(0.42, 0.56)) ** 2) ** 2)
    lungs = sum(
        np.exp(-(((x - (bx + side * u(0.12, 0.2))) / u(0.09, 0.17)) ** 2
                 + ((y - u(0.4, 0.58)) / u(0.18, 0.32)) ** 2) ** 2)
        for side in (-1, 1)
    )
    ribs = 0.08 * (np.sin(y * u(40, 80) + np.abs(x - bx) * u(5, 14) + u(0, 6.3)) > 0.6)
    tilt = u(-0.25, 0.25) * (x - 0.5) + u(-0.25, 0.25) * (y - 0.5)  # uneven exposure
    img = 0.25 + 0.6 * body - 0.45 * lungs + ribs * lungs + tilt
    if sick:  # a patchy opacity in one lung
        cx, cy = u(0.28, 0.72), u(0.4, 0.65)
        img += 0.35 * np.exp(-(((x - cx) / 0.08) ** 2 + ((y - cy) / 0.1) ** 2))
    img += rng.normal(0, 0.02, img.shape)
    top = dtypes.levels_range(bits)[1]
    pixels: Array = np.clip(img * top * u(0.7, 1.0), 0, top).astype(np.uint16)
    return pixels


def build_dataset(root: Path, *, seed: int = 0) -> dict[str, int]:
    """Write the demo dataset under ``root/chest``; return counts of what was written."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    chest = Path(root) / "chest"
    counts = {"png16": 0, "tiff16": 0, "png8_rgb": 0, "corrupt": 0, "duplicate": 0}
    for c in CLASSES:
        (chest / c).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            img = radiograph(rng, SIZE, 12, sick=c == "pneumonia")
            Image.fromarray(img).save(chest / c / f"{c}_{i:03d}.png")
            counts["png16"] += 1
    import tifffile

    tifffile.imwrite(chest / "normal" / "normal_scan.tif", radiograph(rng, SIZE, 12, False))
    counts["tiff16"] += 1
    for i in range(2):  # screenshots someone exported from a viewer: 8-bit RGB
        gray = (radiograph(rng, SIZE, 8, True)).astype(np.uint8)
        Image.fromarray(np.dstack([gray] * 3)).save(chest / "pneumonia" / f"screenshot_{i}.png")
        counts["png8_rgb"] += 1
    good = (chest / "normal" / "normal_000.png").read_bytes()
    (chest / "normal" / "normal_truncated.png").write_bytes(good[: len(good) // 3])
    counts["corrupt"] += 1
    shutil.copyfile(chest / "normal" / "normal_001.png", chest / "pneumonia" / "pneumonia_copy.png")
    counts["duplicate"] += 1
    return counts


def write_configs(root: Path) -> tuple[Path, Path]:
    """Write the wrong and the fixed config next to the dataset."""
    wrong, fixed = Path(root) / "wrong.yaml", Path(root) / "fixed.yaml"
    wrong.write_text(WRONG_CONFIG, encoding="utf-8")
    fixed.write_text(FIXED_CONFIG, encoding="utf-8")
    return wrong, fixed
