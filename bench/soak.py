"""Soak: kill workers and parents of ``preproc run`` at random moments, many times.

Each round starts ``preproc run CONFIG --out DIR`` on a small generated dataset and, after a
random delay, does one of:

* ``parent-kill``: SIGKILL the run itself. Its workers must all exit (no survivor), and the
  output folder must hold no partial file under a final name: every ``batch-*.npy`` that exists
  loads whole and, where its sidecar exists, matches the sidecar's checksum.
* ``worker-kill``: SIGKILL one worker. The run must end on its own (no hang): exit 2 naming the
  worker and SIGKILL, or exit 0 when the kill came after the last batch.
* ``interrupt``: SIGINT the run. It must end with exit 130 (or 0 if it had finished).

After every round a clean re-run must complete and leave exactly the shards ``index.json``
lists. Usage::

    python bench/soak.py --rounds 200          # on demand
    PREPROC_SOAK_ROUNDS=3 pytest tests/hostile  # in CI (small)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ("parent-kill", "worker-kill", "interrupt")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def build(root: Path, files: int = 160, size: int = 96) -> Path:
    """A dataset of ``files`` 16-bit grayscale PNGs in two classes and its config."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(files):
        folder = root / "data" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 4096, (size, size), dtype=np.uint16)
        Image.fromarray(arr).save(folder / f"{i:04d}.png")
    cfg = root / "soak.yaml"
    cfg.write_text(
        "version: 1\n"
        f"source: {{directory: {root / 'data'}, expect: {{dtype: uint16, bit_depth: 12}}}}\n"
        "stages:\n  - rescale: {factor: 1/4095}\n"
        "batches: {target_size: [64, 64], color_mode: grayscale, batch_size: 8, workers: 2,"
        " shuffle: false, worker_timeout: 30}\n")
    return cfg


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _survivors(procs, seconds: float = 10.0) -> list[int]:
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=seconds)
    out = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def partial_outputs(out: Path) -> list[str]:
    """Final-named files that are not complete: a shard that does not load, or whose bytes do
    not match its sidecar; an index listing a missing or different shard."""
    bad = []
    if not out.is_dir():
        return bad
    for npy in sorted(out.glob("batch-*.npy")):
        try:
            np.load(npy, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any failure to load is a partial file
            bad.append(f"{npy.name}: {exc}")
            continue
        side = npy.with_suffix(".json")
        if side.exists():
            entry = json.loads(side.read_text())
            if entry["sha256"] != hashlib.sha256(npy.read_bytes()).hexdigest():
                bad.append(f"{npy.name}: checksum differs from its sidecar")
    index = out / "index.json"
    if index.exists():
        for shard in json.loads(index.read_text())["shards"]:
            path = out / shard["file"]
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != shard["sha256"]:
                bad.append(f"index.json lists {shard['file']}, which is missing or different")
    return bad


def one_round(cfg: Path, out: Path, action: str, delay: float, timeout: float = 120) -> dict:
    """Run one round; returns a dict with ``ok`` and what went wrong otherwise."""
    proc = subprocess.Popen([sys.executable, "-m", "preproc", "run", str(cfg), "--out", str(out)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    problems = []
    kids: list = []
    started = time.monotonic()
    while proc.poll() is None and not kids and time.monotonic() - started < 60:
        kids = _children(proc.pid)  # the delay counts from the workers' start: a signal
        time.sleep(0.02)            # during Python's own start-up is Python's business
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid) or kids
        time.sleep(0.02)
    kids = _children(proc.pid) or kids
    if proc.poll() is None:
        if action == "parent-kill":
            proc.send_signal(signal.SIGKILL)
        elif action == "interrupt":
            proc.send_signal(signal.SIGINT)
        elif kids:
            try:
                kids[random.randrange(len(kids))].send_signal(signal.SIGKILL)
            except Exception:  # noqa: BLE001 - it may have just exited
                pass
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        problems.append(f"hung for {timeout} s")
    rc = proc.returncode
    expected = {"parent-kill": {-9, 0}, "interrupt": {130, 0, -2}, "worker-kill": {2, 0}}[action]
    if rc not in expected:
        problems.append(f"exit {rc}, expected one of {sorted(expected)}: {err[-500:]}")
    if action == "worker-kill" and rc == 2 and "SIGKILL" not in err:
        problems.append(f"the worker's death is not named: {err[-300:]}")
    if "Traceback" in err or "internal error" in err:
        problems.append(f"internal error: {err[-500:]}")
    survivors = _survivors(kids)
    if survivors:
        problems.append(f"survivors: {survivors}")
    problems += partial_outputs(out)
    return {"action": action, "delay": round(delay, 3), "rc": rc, "ok": not problems,
            "problems": problems}


def clean_rerun(cfg: Path, out: Path) -> list[str]:
    """A run to the end after a fault: it must succeed and leave exactly the listed shards."""
    res = subprocess.run([sys.executable, "-m", "preproc", "run", str(cfg), "--out", str(out)],
                         env=_env(), capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        return [f"clean re-run exit {res.returncode}: {res.stderr[-500:]}"]
    index = json.loads((out / "index.json").read_text())
    listed = {s["file"] for s in index["shards"]}
    listed |= {f.replace(".npy", ".json") for f in listed}
    on_disk = {p.name for p in out.iterdir() if p.name.startswith("batch-")}
    tmp = [p.name for p in out.iterdir() if ".preproc-tmp-" in p.name]
    problems = partial_outputs(out)
    if on_disk != listed:
        problems.append(f"shards not in the index: {sorted(on_disk ^ listed)}")
    if tmp:
        problems.append(f"temporaries left: {tmp}")
    return problems


def soak(rounds: int, seed: int = 0, workdir: Path | None = None, max_delay: float = 3.0) -> dict:
    """``rounds`` random faults; returns counts and every failed round."""
    rng = random.Random(seed)
    random.seed(seed)
    with tempfile.TemporaryDirectory(prefix="preproc-soak-", dir=workdir) as tmp:
        root = Path(tmp)
        cfg = build(root)
        out = root / "out"
        failures, counts = [], {a: 0 for a in ACTIONS}
        for r in range(rounds):
            action = ACTIONS[r % len(ACTIONS)] if r < len(ACTIONS) else rng.choice(ACTIONS)
            counts[action] += 1
            res = one_round(cfg, out, action, rng.uniform(0.0, max_delay))
            if r % 2:
                res["problems"] += clean_rerun(cfg, out)
                res["ok"] = not res["problems"]
            if not res["ok"]:
                failures.append({"round": r, **res})
        final = clean_rerun(cfg, out)
        if final:
            failures.append({"round": "final", "problems": final})
    return {"rounds": rounds, "actions": counts, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("PREPROC_SOAK_ROUNDS", 30)))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = soak(args.rounds, args.seed)
    print(json.dumps(result, indent=1))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
