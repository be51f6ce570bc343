"""The augmentation step of ``preproc demo``: random stages under range contracts.

Two configs over the demo's radiographs. The first brightens data already in [0, 1] and then
applies a gamma, which is only defined on [0, 1], and fills rotated corners with 255 after the
rescale; the check blames the brightness stage for the overflow and names the fill. The second
clips after the brightness, fills with 0, and draws a contact sheet of what training sees (the
random stages) beside what validation sees (the deterministic ones alone).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["augment_step"]

_HEAD = """\
version: 1
name: {name}
source:
  directory: chest
  extensions: [png, tif, tiff]
  expect: {{dtype: uint16, bit_depth: 12, channels: 1}}
stages:
  - rescale_intensity: {{in_range: bit_depth}}
"""

_TAIL = """\
batches:
  target_size: [128, 128]
  color_mode: grayscale
  batch_size: 8
  seed: 7
  validation_split: 0.25
  on_error: skip
checks:
  ignore: [mixed-bit-depth, bit-depth-mismatch, unreadable-file, duplicate-image]
"""

WRONG = _HEAD.format(name="demo-augment-wrong") + """\
  - random_affine: {rotation: 15, zoom: 0.1, fill_mode: constant, cval: 255}
  - brightness: {range: [0.5, 1.5]}
  - gamma: {gamma: 0.8}
""" + _TAIL

FIXED = _HEAD.format(name="demo-augment") + """\
  - random_affine: {rotation: 15, zoom: 0.1, fill_mode: constant, cval: 0}
  - flip: {horizontal: true}
  - brightness: {range: [0.8, 1.2]}
  - clip: {min: 0, max: 1}
  - gamma: {gamma: 0.8}
""" + _TAIL


def augment_step(root: Path, cli: Callable[[list[str]], int]) -> bool:
    """Run the augmentation step in ``root``; ``True`` when check and preview said what they should."""
    wrong, fixed = root / "augment-wrong.yaml", root / "augment.yaml"
    wrong.write_text(WRONG)
    fixed.write_text(FIXED)
    rc_wrong = cli(["check", str(wrong)])
    print("\n    -> the fill of 255 lies outside the rescaled [0, 1] (fill-out-of-range), and "
          "brightness widens whatever it receives by 1.5, so gamma, defined on [0, 1], is "
          "overflowed and the brightness stage is blamed (range-overflow).")
    rc_fixed = cli(["check", str(fixed)])
    grid = root / "augment-preview.png"
    rc_preview = cli(["preview", str(fixed), "--out", str(grid), "-n", "8"])
    print(f"\n    -> {grid.name}: what training sees (rotated, flipped, brightened) beside "
          "what validation sees (the deterministic stages alone); the same seed draws the "
          "same augmentation for any worker count.")
    return rc_wrong == 1 and rc_fixed == 0 and rc_preview == 0 and grid.is_file()
