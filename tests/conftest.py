"""Shared fixtures: config writers and paths to the repository's examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
PLUGINS = ROOT / "plugins"


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (dedented) under tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
