"""The soak of ``bench/soak.py`` in a few rounds: random kills of workers and parents of
``preproc run --out`` never hang, never leave a survivor and never leave a partial file.
``PREPROC_SOAK_ROUNDS=200`` runs it long."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from hostile_kit import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals and fork")


def _soak_module():
    spec = importlib.util.spec_from_file_location("preproc_soak", ROOT / "bench" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_kills_never_hang_orphan_or_leave_partial_output(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    rounds = int(os.environ.get("PREPROC_SOAK_ROUNDS", "3"))
    result = _soak_module().soak(rounds, seed=int(os.environ.get("PREPROC_SOAK_SEED", "0")),
                                 workdir=tmp_path)
    assert result["failures"] == [], result


def test_partial_output_is_detected(tmp_path):
    """The soak's own detector must see a truncated shard."""
    import numpy as np

    soak = _soak_module()
    np.save(tmp_path / "batch-00000.npy", np.zeros((4, 8, 8, 1), np.float32))
    assert soak.partial_outputs(tmp_path) == []
    data = (tmp_path / "batch-00000.npy").read_bytes()
    (tmp_path / "batch-00000.npy").write_bytes(data[: len(data) // 2])
    assert soak.partial_outputs(tmp_path)
