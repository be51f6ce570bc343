"""The package passes ``mypy --strict`` (settings in pyproject.toml), except the modules below.

mypy runs once over ``preproc/`` as configured. Every module must be free of errors unless it is
listed in :data:`NOT_YET_TYPED`; a listed module that has become clean fails the test too, so the
list only ever shrinks and never hides a module that would pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Modules not yet held to ``mypy --strict``. Remove a module's line once it passes.
NOT_YET_TYPED: frozenset[str] = frozenset()

_ERROR = re.compile(r"^(preproc/[^:]+\.py):\d+(?::\d+)?: error: ")


@lru_cache(maxsize=1)
def _mypy_errors() -> dict[str, list[str]]:
    """Error lines of one ``mypy`` run over the package, by file."""
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        pytest.fail(f"mypy did not run:\n{proc.stdout}\n{proc.stderr}")
    errors: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors.setdefault(match.group(1), []).append(line)
    return errors


def test_typed_modules_pass_mypy_strict():
    errors = _mypy_errors()
    failing = {f: lines for f, lines in errors.items() if f not in NOT_YET_TYPED}
    shown = "\n".join(line for lines in failing.values() for line in lines[:5])
    assert not failing, f"{len(failing)} typed module(s) fail mypy --strict:\n{shown}"


def test_exceptions_list_only_modules_that_still_fail():
    errors = _mypy_errors()
    clean = sorted(f for f in NOT_YET_TYPED if f not in errors)
    assert not clean, f"these modules pass mypy --strict now; remove them from NOT_YET_TYPED: {clean}"


def test_exceptions_name_existing_modules():
    missing = sorted(f for f in NOT_YET_TYPED if not (ROOT / f).is_file())
    assert not missing, f"NOT_YET_TYPED names files that do not exist: {missing}"
