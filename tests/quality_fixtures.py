"""A labelled dataset for the image-quality and near-duplicate findings: the truth is known.

:func:`labelled_dataset` writes ``root/<class>/<index>.png`` files (and a few JPEG copies) in
8-bit RGB or in 16-bit grayscale with 12-bit content, with injected problems, and returns
``{finding code: set of relative paths that must be reported}``. The validation subset is, as
in the batches, the first ``int(split * n)`` files of each class in sorted order: the file
names are chosen so that the planted cross-split copies land on both sides.

Content: smooth gradients, overlapping ellipses and rectangles of random intensities and a fine
texture, so every clean image is sharp, mid-bright and informative, and two clean images are far
apart in perceptual hash.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: Finding codes the truth covers.
CODES = ("blurry", "dark", "light", "low-information", "odd-size", "odd-aspect-ratio",
         "grayscale-in-rgb", "near-duplicate", "split-leakage", "label-conflict")


def scene(rng: np.random.Generator, h: int = 112, w: int = 112, color: bool = True) -> np.ndarray:
    """A random sharp picture as float64 in [0, 1], ``HxWx3`` (or ``HxW``)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = 3 if color else 1
    out = np.empty((h, w, chans))
    base = rng.uniform(0.25, 0.6, chans)
    gx, gy = rng.uniform(-0.3, 0.3, (2, chans))
    for c in range(chans):
        out[..., c] = base[c] + gx[c] * (xx - 0.5) + gy[c] * (yy - 0.5)
    for _ in range(rng.integers(5, 10)):
        value = rng.uniform(0.05, 0.95, chans)
        cy, cx = rng.uniform(0, 1, 2) * (h / max(h, w), w / max(h, w))
        ry, rx = rng.uniform(0.05, 0.3, 2)
        if rng.random() < 0.5:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        else:
            mask = (abs(yy - cy) < ry) & (abs(xx - cx) < rx)
        out[mask] = value
    cell = max(1, max(h, w) // 112)  # texture at a fixed scale relative to the picture
    grain = rng.normal(0, 0.03, (-(-h // cell), -(-w // cell), chans))
    out += np.repeat(np.repeat(grain, cell, 0), cell, 1)[:h, :w]
    out = np.clip(out, 0, 1)
    return out if color else out[..., 0]


def _to_pixels(img: np.ndarray, bits16: bool) -> np.ndarray:
    if bits16:
        return np.round(img * 4095).astype(np.uint16)
    return np.round(img * 255).astype(np.uint8)


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _resample(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image (``(w, h)`` target) with a box-antialiased bilinear filter."""
    chans = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
    out = [np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize(size, Image.BILINEAR,
                      reducing_gap=None)) for c in chans]
    return out[0].astype(np.float64) if img.ndim == 2 else np.stack(out, -1).astype(np.float64)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    s = (sigma, sigma) if img.ndim == 2 else (sigma, sigma, 0)
    return gaussian_filter(img, s)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    arr = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf), dtype=np.float64) / 255.0


def _copy_variant(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if kind == "resize":
        f = rng.choice([0.5, 0.75, 1.5])
        return _resample(img, (max(8, int(w * f)), max(8, int(h * f))))
    if kind == "jpeg":
        return _jpeg_roundtrip(img, int(rng.integers(50, 90)))
    if kind == "crop":
        f = rng.uniform(0.04, 0.10)
        dy, dx = int(h * f), int(w * f)
        oy, ox = rng.integers(0, dy + 1), rng.integers(0, dx + 1)
        return img[oy:h - dy + oy, ox:w - dx + ox]
    if kind == "tone":
        gain, offset = rng.uniform(0.8, 1.15), rng.uniform(-0.06, 0.06)
        return np.clip((img - 0.5) * gain + 0.5 + offset, 0, 1)
    return img


def labelled_dataset(root: Path, n: int = 200, bits16: bool = False, classes: int = 2,
                     split: float = 0.2, seed: int = 0, side: int = 112) -> dict[str, set[str]]:
    """Write ``n`` files over ``classes`` folders; return the truth per finding code.

    ``side``: pixels of a clean image's side (odd sizes are a quarter and four times that).

    ``bits16``: 16-bit grayscale PNGs with 12-bit content (and 8-bit exports as bit-depth
    copies); else 8-bit RGB PNGs (and JPEG re-encodings as copies).
    """
    rng = np.random.default_rng(seed)
    color = not bits16
    names = [f"c{k}" for k in range(classes)]
    per = n // classes
    truth: dict[str, set[str]] = {code: set() for code in CODES}
    n_val = int(split * per)
    # plan per class: slot index -> (kind, payload); everything else clean
    plans: dict[str, dict[int, tuple]] = {c: {} for c in names}
    frac = max(1, round(per * 0.04))
    kinds = ["blurry", "dark", "light", "low-information", "odd-size", "odd-aspect-ratio"]
    if color:
        kinds.append("grayscale-in-rgb")
    originals: dict[tuple[str, int], np.ndarray] = {}

    def rel(cls: str, i: int, ext: str = "png") -> str:
        return f"{cls}/{i:05d}.{ext}"

    for cls in names:
        free = list(range(n_val, per))  # training slots for originals and injected problems
        rng.shuffle(free)
        val_free = list(range(n_val))
        rng.shuffle(val_free)
        for kind in kinds:
            for _ in range(frac):
                plans[cls][free.pop()] = (kind,)
        copy_kinds = ["resize", "jpeg", "crop", "tone"] + (["bitdepth"] if bits16 else [])
        for kind in copy_kinds:
            for _ in range(max(1, frac // 2)):
                a, b = free.pop(), free.pop()
                plans[cls][a] = ("original",)
                plans[cls][b] = ("copy", a, kind)
        for j in range(max(1, frac // 2)):  # across the validation split, same class
            a, b = free.pop(), val_free.pop()
            plans[cls][a] = ("original",)
            plans[cls][b] = ("copy", a, "exact" if j % 2 else "jpeg", "leak")
    for k, cls in enumerate(names):  # across classes (both in training)
        other = names[(k + 1) % len(names)]
        slots = [i for i in range(n_val, per) if i not in plans[cls]]
        oslots = [i for i in range(n_val, per) if i not in plans[other]]
        for j in range(max(1, frac // 2)):
            a, b = slots[j], oslots[-1 - j]
            plans[cls][a] = ("original",)
            plans[other][b] = ("copy", a, "exact" if j % 2 else "resize", "conflict", cls)

    for cls in names:
        for i in range(per):
            plan = plans[cls].get(i, ("clean",))
            if plan[0] in ("clean", "original"):
                img = scene(rng, side, side, color=color)
                originals[(cls, i)] = img
                _write(root, rel(cls, i), img, bits16)
    for cls in names:
        for i in range(per):
            plan = plans[cls].get(i, ("clean",))
            kind = plan[0]
            path = rel(cls, i)
            if kind in ("clean", "original"):
                continue
            if kind == "copy":
                src_cls = plan[4] if len(plan) > 4 else cls
                src = originals[(src_cls, plan[1])]
                variant = plan[2]
                copy = _copy_variant(src, variant, rng)
                if variant == "exact":
                    _write(root, path, src, bits16)
                elif variant == "bitdepth":
                    _save(root / path, np.round(src * 255).astype(np.uint8))
                else:
                    _write(root, path, copy, bits16)
                pair = {path, rel(src_cls, plan[1])}
                if variant != "exact":
                    truth["near-duplicate"] |= pair
                if len(plan) > 3 and plan[3] == "leak":
                    truth["split-leakage"] |= pair
                if len(plan) > 3 and plan[3] == "conflict":
                    truth["label-conflict"] |= pair
                continue
            img = scene(rng, side, side, color=color)
            if kind == "blurry":
                img = _blur(img, 2.5 * side / 112)
            elif kind == "dark":
                img = img * 0.2
            elif kind == "light":
                img = 1 - (1 - img) * 0.2
            elif kind == "low-information":
                level = rng.uniform(0.2, 0.8)
                img = np.clip(np.full(img.shape, level) + rng.normal(0, 0.002, img.shape), 0, 1)
            elif kind == "odd-size":
                small, big = side // 4, side * 4
                img = scene(rng, small, small, color) if rng.random() < 0.5 \
                    else scene(rng, big, big, color)
            elif kind == "odd-aspect-ratio":
                img = scene(rng, side, side // 4, color) if rng.random() < 0.5 \
                    else scene(rng, side // 4, side, color)
            elif kind == "grayscale-in-rgb":
                img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
            truth[kind].add(path)
            _write(root, path, img, bits16)
    return truth


def _write(root: Path, path: str, img: np.ndarray, bits16: bool) -> None:
    _save(root / path, _to_pixels(img, bits16))


def config_text(directory: str, split: float = 0.2, extra: str = "") -> str:
    """A config over the labelled dataset with ``validation_split``."""
    return (f"version: 1\nsource:\n  directory: {directory}\n"
            f"batches:\n  validation_split: {split}\n{extra}")


def precision_recall(found: set[str], truth: set[str]) -> tuple[float, float]:
    """``(precision, recall)``; 1.0 for an empty denominator."""
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    return p, r
