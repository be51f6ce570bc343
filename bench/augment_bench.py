"""Augmentation speed against Keras' ``ImageDataGenerator``, in one run.

Two rows:

* ``affine``: ``random_affine`` (order 1, fill nearest) on one 224x224 uint8 RGB image against
  Keras' ``apply_transform`` with the very same transform parameters (rotation, shifts, shear,
  zoom drawn per repetition and given to both), CPU time, best of interleaved rounds. Keras is
  timed on float32 input (what its iterators hold) and on uint8.
* ``flow``: one epoch of ``preproc.flow`` with ``random_affine`` + ``flip`` + ``brightness`` +
  ``rescale`` against Keras 3's ``ImageDataGenerator(rotation_range=..., ...,
  horizontal_flip=True, brightness_range=..., rescale=...).flow_from_directory`` on 8-bit RGB
  PNGs (the rgb8 set of ``flow_bench.py``), at 224x224. preproc runs with 2 workers and
  in-process (``workers: 0``); Keras' iterator computes in the calling process.

Usage: ``python bench/augment_bench.py [--quick] [--data DIR]``. Only ratios within one run count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("KERAS_BACKEND", "torch")

from flow_bench import build_dataset, warm  # noqa: E402

TARGET = (224, 224)
KERAS_AUG = {"rotation_range": 20, "width_shift_range": 0.1, "height_shift_range": 0.1,
             "shear_range": 5, "zoom_range": 0.1, "horizontal_flip": True,
             "brightness_range": [0.8, 1.2]}
PREPROC_AUG = [
    {"random_affine": {"rotation": 20, "width_shift": 0.1, "height_shift": 0.1, "shear": 5,
                       "zoom": 0.1}},
    {"flip": {"horizontal": True}},
    {"brightness": {"range": [0.8, 1.2], "clip": [0, 255]}},
    {"rescale": {"factor": "1/255"}},
]


def _interleaved(fns: dict, reps: int, rounds: int = 40) -> dict:
    """Best CPU time per call of each function, the contenders taking turns (a shared machine
    slows them alike, and the best of many rounds is the least disturbed one)."""
    best = dict.fromkeys(fns, float("inf"))
    for r in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for k in range(reps):
                fn((r * reps + k) % 64)
            best[name] = min(best[name], (time.process_time() - start) / reps)
    return best


def affine_row(reps: int) -> dict:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from preproc.stages.augment import RandomAffine

    gen = ImageDataGenerator(**{k: v for k, v in KERAS_AUG.items()
                                if k not in ("horizontal_flip", "brightness_range")})
    stage = RandomAffine({"rotation": 20, "width_shift": 0.1, "height_shift": 0.1, "shear": 5,
                          "zoom": 0.1})
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, TARGET + (3,), dtype=np.uint8)
    xf = x8.astype(np.float32)
    params = [stage.draw(np.random.default_rng(k), x8.shape) for k in range(64)]
    best = _interleaved({
        "ours_u8": lambda k: stage.transform(x8, params[k]),
        "ours_f32": lambda k: stage.transform(xf, params[k]),
        "keras_f32": lambda k: gen.apply_transform(xf, params[k]),
        "keras_u8": lambda k: gen.apply_transform(x8, params[k]),
    }, reps)
    return {f"{k}_ms": v * 1e3 for k, v in best.items()}


def flow_preproc(folder: Path, workers: int) -> float:
    import yaml

    from preproc.batches.flow import flow

    doc = {"version": 1, "source": {"directory": str(folder)}, "stages": PREPROC_AUG,
           "batches": {"target_size": list(TARGET), "seed": 1, "batch_size": 32,
                       "workers": workers}, "checks": {"runtime": {"sample_batches": 0}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(doc, fh)
    with flow(fh.name) as it:
        it.start()
        start = time.perf_counter()
        n = sum(len(b[0]) for b in it)
        return n / (time.perf_counter() - start)


def flow_keras(folder: Path) -> float:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    it = ImageDataGenerator(rescale=1 / 255, **KERAS_AUG).flow_from_directory(
        str(folder), target_size=TARGET, batch_size=32, seed=1)
    start = time.perf_counter()
    n = sum(len(it[i][0]) for i in range(len(it)))
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images and repetitions")
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "preproc-bench"))
    args = ap.parse_args()
    reps = 2 if args.quick else 4
    a = affine_row(reps)
    print(f"affine  224x224x3 order 1: preproc uint8 {a['ours_u8_ms']:.2f} ms, float32 "
          f"{a['ours_f32_ms']:.2f} ms; Keras apply_transform float32 {a['keras_f32_ms']:.2f} ms, "
          f"uint8 {a['keras_u8_ms']:.2f} ms -> {a['keras_f32_ms'] / a['ours_u8_ms']:.2f}x "
          f"(uint8 vs Keras' float32), {a['keras_f32_ms'] / a['ours_f32_ms']:.2f}x (float32 "
          f"vs float32), {a['keras_u8_ms'] / a['ours_u8_ms']:.2f}x (uint8 vs uint8)",
          flush=True)
    count = 300 if args.quick else 1500
    folder = build_dataset(Path(args.data) / "rgb8", "rgb8", count)
    warm(folder)
    keras = flow_keras(folder)
    two = flow_preproc(folder, 2)
    inline = flow_preproc(folder, 0)
    print(f"flow    affine+flip+brightness+rescale, {count} RGB PNGs: preproc 2 workers "
          f"{two:.0f} img/s ({two / keras:.2f}x), in-process {inline:.0f} img/s "
          f"({inline / keras:.2f}x); Keras flow_from_directory {keras:.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
