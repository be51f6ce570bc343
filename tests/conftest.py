"""Shared fixtures: the config writer and paths to the repository's examples (files and
datasets are built by :mod:`builders`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import write_config_file
from hypothesis import HealthCheck, settings

# Property tests must give the same verdict on every run, so a red CI always names a real,
# reproducible failure: the default profile draws its examples from a fixed derandomized
# sequence and keeps no example database. ``HYPOTHESIS_PROFILE=long`` explores with fresh
# random examples (and many more of them) when hunting for new bugs on purpose; anything it
# finds becomes an explicit ``@example`` in the test.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", derandomize=False, max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Keras 3 picks TensorFlow unless told otherwise; the parity peers run on the CPU torch build the
# dev extras install. Set here, before any test module imports keras, so a parity test gives the
# same verdict alone as in the whole suite instead of skipping when run by itself.
os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
PLUGINS = ROOT / "plugins"


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (dedented) under tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        return write_config_file(tmp_path / name, text)

    return write
