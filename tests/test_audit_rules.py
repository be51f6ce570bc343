"""Audit rules on small datasets whose every value is known: which file breaks which promise."""

from __future__ import annotations

import numpy as np
import pytest
from audit_fixtures import config_for
from fixtures_images import write_png

from preproc.auditing import audit


def _ramp(lo: int, hi: int) -> np.ndarray:
    """A 12-bit image holding exactly the values ``lo`` and ``hi`` at its extremes."""
    arr = np.full((8, 8), (lo + hi) // 2, np.uint16)
    arr.flat[0], arr.flat[-1] = lo, hi
    return arr


@pytest.fixture
def ranged(tmp_path):
    root = tmp_path / "data"
    (root / "c").mkdir(parents=True)
    for name, (lo, hi) in {"inside.png": (100, 4000), "edges.png": (100, 4095),
                           "dark.png": (50, 3000), "darker.png": (10, 500),
                           "bright.png": (200, 4095)}.items():
        write_png(root / "c" / name, _ramp(lo, hi), sbit=12)
    return root


def _out_of_range(report):
    found = [f for f in report.findings if f.code == "out-of-declared-range"]
    return found[0] if found else None


def test_values_below_the_declared_range_are_out_of_range(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [100, 4095]")
    f = _out_of_range(audit(cfg, workers=1))
    assert f is not None
    assert sorted(f.files) == ["c/dark.png", "c/darker.png"]
    assert f.count == 2
    assert f.data == {"declared": [100, 4095], "observed": [10, 3000]}
    assert f.location.path == "source.expect.range"
    assert "2 file(s)" in f.message and "[10, 3000]" in f.message


def test_values_above_the_declared_range_are_out_of_range(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [0, 4000]")
    f = _out_of_range(audit(cfg, workers=1))
    assert sorted(f.files) == ["c/bright.png", "c/edges.png"]
    assert f.data["observed"] == [100, 4095]


def test_values_on_the_declared_bounds_are_inside(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [10, 4095]")
    assert _out_of_range(audit(cfg, workers=1)) is None
