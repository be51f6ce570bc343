"""Dead, stuck and orphaned workers: every fault surfaces, nothing hangs, nothing survives."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time

import psutil
import pytest
from hostile_kit import config, dataset, env, last_json, run_python

from preproc.errors import PreprocError, WorkerError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers fork")


def test_worker_error_pickles_with_its_attributes():
    err = WorkerError("worker 1 died", worker=1, pid=42, signal="SIGKILL", exitcode=-9, batch=3)
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, PreprocError)
    assert (back.worker, back.pid, back.signal, back.exitcode, back.batch) == (1, 42, "SIGKILL", -9, 3)
    assert str(back) == "worker 1 died"


KILL_WHILE_ITERATING = """
    import json, os, signal, time
    from preproc.config import load_config
    from preproc.batches.flow import flow
    from preproc.errors import WorkerError
    import preproc.batches.workers as w

    slow = w.run_one
    def run_one(job, index, guard, *rest):   # inherited by the forked workers
        time.sleep(0.05)
        return slow(job, index, guard, *rest)
    w.run_one = run_one

    cfg = load_config({cfg!r})
    it = flow(cfg, workers=2, prefetch=2)
    next(iter(it))
    victim = it._engine._procs[{victim}]
    os.kill(victim.pid, signal.SIGKILL)
    t0 = time.monotonic()
    try:
        for _ in it:
            pass
        out = {{"raised": None}}
    except WorkerError as exc:
        out = {{"raised": "WorkerError", "worker": exc.worker, "signal": exc.signal,
               "batch": exc.batch, "pid": exc.pid, "victim": victim.pid, "message": str(exc),
               "seconds": time.monotonic() - t0}}
    it.close()
    # a new flow works after the failure
    with flow(cfg, workers=2) as again:
        out["after"] = sum(len(x) for x, _ in again)
    print(json.dumps(out))
"""


@pytest.mark.parametrize("victim", [0, 1])
def test_sigkill_of_a_worker_raises_worker_error_and_a_new_flow_works(tmp_path, victim):
    data = dataset(tmp_path / "data", per_class=24)
    cfg = config(tmp_path / "c.yaml", data, batch_size=4, shuffle=False)
    proc = run_python(KILL_WHILE_ITERATING.format(cfg=str(cfg), victim=victim), timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc.stdout)
    assert out["raised"] == "WorkerError"
    assert out["worker"] == victim and out["pid"] == out["victim"]
    assert out["signal"] == "SIGKILL" and "SIGKILL" in out["message"]
    assert isinstance(out["batch"], int) and f"batch {out['batch']}" in out["message"]
    assert out["after"] == 48


STUCK = """
    import json, time
    from preproc.config import load_config
    from preproc.batches.flow import flow
    from preproc.errors import WorkerError
    import preproc.batches.workers as w

    real = w.run_one
    def run_one(job, index, guard, *rest):
        if index == 5:
            time.sleep(3600)                 # a decoder that never returns
        return real(job, index, guard, *rest)
    w.run_one = run_one

    cfg = load_config({cfg!r})
    it = flow(cfg, workers=2, prefetch=1)
    try:
        for _ in it:
            pass
        out = {{"raised": None}}
    except WorkerError as exc:
        out = {{"raised": "WorkerError", "worker": exc.worker, "signal": exc.signal,
               "batch": exc.batch, "message": str(exc)}}
    it.close()
    print(json.dumps(out))
"""


def test_a_stuck_worker_is_reported_after_worker_timeout(tmp_path):
    data = dataset(tmp_path / "data", per_class=8)
    cfg = config(tmp_path / "c.yaml", data, batch_size=4, shuffle=False, worker_timeout=1.5)
    proc = run_python(STUCK.format(cfg=str(cfg)), timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = last_json(proc.stdout)
    assert out["raised"] == "WorkerError", out
    assert out["worker"] in (0, 1) and out["signal"] is None
    assert out["batch"] == 1  # file 5 is in batch 1 of an unshuffled order
    assert "no progress" in out["message"] and "worker_timeout" in out["message"]


def _children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_gone(procs, seconds=10.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("with_out", [False, True])
def test_kill_9_of_preproc_run_leaves_no_worker_alive(tmp_path, with_out):
    data = dataset(tmp_path / "data", per_class=200, size=(64, 64))
    cfg = config(tmp_path / "c.yaml", data, batch_size=8, workers=2, target_size=[64, 64])
    args = [sys.executable, "-m", "preproc", "run", str(cfg), "--workers", "2"]
    # the run must still be going when its workers are looked for: one epoch of 400 small images
    # can end before the first look, which failed this test at random. --out writes one epoch
    # only, and writing it keeps the run going; without it, many epochs do.
    args += ["--out", str(tmp_path / "out")] if with_out else ["--epochs", "200"]
    parent = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        kids = []
        while time.monotonic() < deadline and len(kids) < 2 and parent.poll() is None:
            time.sleep(0.02)
            kids = _children_of(parent.pid)
        assert len(kids) >= 2, "the run never started its workers"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        survivors = _wait_gone(kids)
        assert not survivors, f"orphaned workers: {[p.pid for p in survivors]}"
    finally:
        for p in _children_of(parent.pid):
            p.kill()
