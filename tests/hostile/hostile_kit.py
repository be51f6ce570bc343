"""Builders for hostile inputs and a runner that turns a hang into a test failure.

Every scenario that could hang on broken code runs in a child Python process with a time limit,
so a regression shows up as a failed test (``hung``) instead of a stuck test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def env() -> dict:
    """The environment of a child: this tree first on the import path."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), out.get("PYTHONPATH", "")])
    return out


def run_python(code: str, *, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (own process group); a run past ``timeout`` fails the
    calling test as a hang after killing the whole group."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"hung for more than {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def last_json(stdout: str):
    """The last line of ``stdout`` parsed as JSON."""
    return json.loads(stdout.strip().splitlines()[-1])


def preproc_cli(*args: str, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m preproc ARGS`` with a time limit."""
    proc = subprocess.run([sys.executable, "-m", "preproc", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    return proc


def dataset(root: Path, per_class: int = 8, size=(24, 24), classes=("a", "b")) -> Path:
    """A small 8-bit RGB PNG dataset."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
                root / name / f"{i:03d}.png")
    return root


def config(path: Path, data: Path, stages=None, **batches) -> Path:
    """Write a config for dataset ``data``; returns its path."""
    doc = {"version": 1, "source": {"directory": str(data)},
           "stages": stages if stages is not None else [{"rescale": {"factor": "1/255"}}],
           "batches": {"target_size": [16, 16], **batches}}
    path.write_text(yaml.safe_dump(doc))
    return path
