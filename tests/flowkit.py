"""Small helpers shared by the flow, adapter and export tests: configs and datasets in tmp_path."""

from __future__ import annotations

import numpy as np
import yaml
from PIL import Image

from preproc.config.model import load_config


def write_config(tmp_path, root, *, stages=None, expect=None, runtime=1, name="cfg.yaml",
                 extensions=None, **batches):
    """Write a config for dataset ``root`` and load it."""
    doc = {"version": 1, "source": {"directory": str(root)},
           "stages": stages if stages is not None else [{"rescale": {"factor": "1/255"}}],
           "batches": batches, "checks": {"runtime": {"sample_batches": runtime}}}
    if expect:
        doc["source"]["expect"] = expect
    if extensions:
        doc["source"]["extensions"] = extensions
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def rgb_dataset(root, per_class=6, classes=("a", "b"), size=(20, 28), seed=0):
    """Random 8-bit RGB PNGs, ``per_class`` per class folder."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i:03d}.png")
    return root
