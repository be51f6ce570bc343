"""Fresh-machine check: build the sdist and wheel, install the wheel into a new virtual
environment with only its declared dependencies, and run the demo and a check from there.

Marked slow (about a minute); `.ci/run` runs it with the rest of the suite. Skip it locally
with ``python -m pytest -m "not slow"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest

from conftest import CONFIGS, ROOT

pytestmark = pytest.mark.slow


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT)])
    wheels = list(dist.glob("preproc-*.whl"))
    sdists = list(dist.glob("preproc-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = str(bindir / "python")
    # a PYTHONPATH pointing at a checkout would make pip believe preproc is installed already
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([py, "-m", "pip", "install", "--quiet", str(wheels[0])], env=clean_env)

    work = tmp_path / "work"
    work.mkdir()
    preproc_cmd = str(bindir / "preproc")
    demo = run([preproc_cmd, "demo"], cwd=work, env=clean_env)
    assert "compounded-scaling" in demo.stdout and "img/s" in demo.stdout
    check = subprocess.run([preproc_cmd, "check", str(CONFIGS / "clahe-then-rescale.yaml")],
                           capture_output=True, text=True, cwd=work, env=clean_env, timeout=300)
    assert check.returncode == 1 and "error[compounded-scaling]" in check.stdout
    # the installed package is the wheel, not this checkout
    where = run([py, "-c", "import preproc, sys; print(preproc.__file__)"], cwd=work, env=clean_env)
    assert str(env_dir) in where.stdout
    assert (bindir / "preproc").exists() and "py.typed" in run(
        [py, "-c", "import importlib.resources as r; print([p.name for p in r.files('preproc').iterdir()])"],
        cwd=work, env=clean_env).stdout
