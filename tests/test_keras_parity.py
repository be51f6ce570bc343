"""On 8-bit images, ``preproc.flow`` yields exactly what Keras 3's legacy
``ImageDataGenerator(rescale=...).flow_from_directory(...)`` yields: same files, order, classes,
subsets, labels and float32 values, over several batches and two epochs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("KERAS_BACKEND", "torch")
keras_image = pytest.importorskip("keras.src.legacy.preprocessing.image")

from preproc.config.model import load_config
from preproc.batches.flow import flow

RESCALE = 1 / 255


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three classes of mixed 8-bit files: RGB, L, RGBA, palette, JPEG, BMP, gray and RGB with a
    tRNS colour key (transparent pixels under ``color_mode: rgba``), nested folders."""
    root = tmp_path_factory.mktemp("parity")
    rng = np.random.default_rng(11)
    layout = {"bird": 7, "cat": 9, "dog": 6}
    for c, (name, count) in enumerate(layout.items()):
        for i in range(count):
            sub = ["", "sub", "sub-2", "sub/deeper"][i % 4]
            folder = root / name / sub
            folder.mkdir(parents=True, exist_ok=True)
            h, w = (int(v) for v in rng.integers(20, 60, 2))
            if i == 0:
                h, w = 24, 32  # already the target size: no resize, as in Keras
            _write(folder, f"im{i:02d}", rng, h, w, kind=(i + c) % 8)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def _write(folder, stem, rng, h, w, kind):
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx * 5 + yy * 3) % 256).astype(np.uint8)
    rgb = np.stack([base, rng.integers(0, 256, (h, w), dtype=np.uint8), base[::-1]], axis=2)
    if kind == 0:
        Image.fromarray(rgb).save(folder / f"{stem}.png")
    elif kind == 1:
        Image.fromarray(base, "L").save(folder / f"{stem}.PNG")
    elif kind == 2:
        rgba = np.concatenate([rgb, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], axis=2)
        Image.fromarray(rgba, "RGBA").save(folder / f"{stem}.png")
    elif kind == 3:
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / f"{stem}.png")
    elif kind == 4:
        Image.fromarray(rgb).save(folder / f"{stem}.jpg", quality=90)
    elif kind == 5:
        Image.fromarray(rgb).save(folder / f"{stem}.bmp")
    elif kind == 6:  # gray colour key: the value at the top-left corner is transparent
        Image.fromarray(base, "L").save(folder / f"{stem}.png", transparency=int(base[0, 0]))
    else:
        key = tuple(int(v) for v in rgb[0, 0])
        Image.fromarray(rgb).save(folder / f"{stem}.png", transparency=key)


def _config(tmp_path, root, **batches):
    lines = [f"  {k}: {_yaml(v)}" for k, v in batches.items()]
    text = (f"version: 1\nsource:\n  directory: {root}\nstages:\n  - rescale: {{factor: 1/255}}\n"
            "batches:\n" + "\n".join(lines) + "\nchecks:\n  runtime: {sample_batches: 1}\n"
            # gray, RGB and RGBA files side by side on purpose: colour_mode converts them all
            "  ignore: [mixed-bit-depth]\n")
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return load_config(path)


def _yaml(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _keras(root, subset, split, **kw):
    gen = keras_image.ImageDataGenerator(rescale=RESCALE, validation_split=split)
    return gen.flow_from_directory(str(root), subset=subset, **kw)


CASES = [
    dict(color_mode="rgb", class_mode="categorical", interpolation="nearest", shuffle=True),
    dict(color_mode="grayscale", class_mode="binary", interpolation="bilinear", shuffle=True),
    dict(color_mode="rgba", class_mode="sparse", interpolation="bicubic", shuffle=False),
    dict(color_mode="rgb", class_mode="input", interpolation="bilinear", shuffle=True),
    dict(color_mode="grayscale", class_mode=None, interpolation="nearest", shuffle=True),
    dict(color_mode="rgb", class_mode="sparse", interpolation="hamming", shuffle=True,
         keep_aspect_ratio=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['color_mode']}-{c['class_mode']}-"
                         f"{c['interpolation']}")
@pytest.mark.parametrize("subset,split", [(None, 0.0), ("training", 0.3), ("validation", 0.3)])
def test_batches_equal_keras(tmp_path, dataset, case, subset, split):
    kw = dict(target_size=(24, 32), batch_size=4, seed=5, **case)
    if case["class_mode"] == "binary":
        kw["classes"] = ["cat", "dog"]
    ours = flow(_config(tmp_path, dataset, validation_split=split, **kw), subset, workers=0)
    theirs = _keras(dataset, subset, split, **kw)
    assert ours.filenames == theirs.filenames
    assert ours.class_indices == theirs.class_indices
    np.testing.assert_array_equal(ours.classes, theirs.classes)
    assert len(ours) == len(theirs) and ours.samples == theirs.samples
    for _epoch in range(2):
        for got in ours:
            _assert_same(got, next(theirs))


def test_workers_match_keras_too(tmp_path, dataset):
    kw = dict(target_size=(24, 32), batch_size=5, seed=9, color_mode="rgb",
              class_mode="categorical", interpolation="bilinear", shuffle=True)
    with flow(_config(tmp_path, dataset, **kw), workers=2, prefetch=2) as ours:
        theirs = _keras(dataset, None, 0.0, **kw)
        for _epoch in range(2):
            for got in ours:
                _assert_same(got, next(theirs))


def _assert_same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
