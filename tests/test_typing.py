"""The package is held to ``mypy --strict`` (settings and file list in pyproject.toml), in the suite
CI runs, with no module exempted: a typing error fails the suite like a behaviour error does."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_package_passes_mypy_strict():
    # mypy is a dev dependency: without it this fails (ModuleNotFoundError), it never skips.
    # Its cache (.mypy_cache, ignored by git) makes a rerun take seconds instead of a minute.
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"mypy --strict found errors:\n{proc.stdout}{proc.stderr}"


def test_strictness_covers_the_whole_package():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings["strict"] is True and settings["files"] == ["preproc"]
    for override in settings.get("overrides", []):
        # only third-party modules without types may be relaxed, and only their imports
        assert set(override) <= {"module", "ignore_missing_imports"}, override
        assert not any(str(m).startswith("preproc") for m in override["module"]), override
