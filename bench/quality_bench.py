"""Image-quality and near-duplicate findings against cleanvision, side by side. Prints a table.

Builds two labelled datasets in which the truth is known (``tests/quality_fixtures.py``: injected
blur, darkening, brightening, near-constant images, odd sizes and aspect ratios, grayscale
stored as RGB, resized / JPEG re-encoded / cropped / re-toned copies, 8-bit exports of 16-bit
files, copies across the validation split and across classes):

* ``rgb8``: 8-bit RGB PNGs;
* ``gray16``: 16-bit grayscale PNGs with 12-bit content (no sBIT: the range is effective).

For each it reports precision and recall per finding for preproc (a full audit, every finding
on, ``validation_split: 0.2``) and for cleanvision's ``Imagelab.find_issues`` with its default
issue types, run in another interpreter (``--cleanvision-python``, a side environment with
cleanvision installed). cleanvision has no notion of a validation split or of classes, so
``split-leakage`` and ``label-conflict`` have no peer column.

Then throughput: files per second of the full audit (all findings) against cleanvision on the
same set, both on ``--workers`` processes, page cache warm, in ``--rounds`` rounds that run one
after the other (preproc, cleanvision, preproc, cleanvision, ...) so a change of the machine's
load reaches both; every round is printed, and the ratio is best against best. Then the peak
memory of the full audit (parent tracemalloc, summed PSS of the parent and its workers) on
distinct small images from 1,000 to 20,000 files.

Goals: P and R >= 0.9 for every finding at both bit depths; >= 5x cleanvision's files/s;
memory flat from 1k to 20k files.

Usage: ``python bench/quality_bench.py [--n 1000] [--side 256] [--workers 2] [--rounds 2]
[--mem 1000,20000] [--cleanvision-python /work/sidevenv-audit2/bin/python] [--data DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from quality_fixtures import CODES, config_text, labelled_dataset, precision_recall

from preproc.auditing import audit
from preproc.config import load_config

CLEANVISION_SCRIPT = r"""
import json, os, sys, time
from cleanvision import Imagelab
root, out, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
lab = Imagelab(data_path=root)
lab.find_issues(n_jobs=jobs, verbose=False)
seconds = time.perf_counter() - start
issues = lab.issues
flags = {}
for column in issues.columns:
    if column.startswith("is_") and column.endswith("_issue"):
        name = column[3:-6]
        for path in issues.index[issues[column]]:
            flags.setdefault(os.path.relpath(path, root).replace(os.sep, "/"), []).append(name)
json.dump({"seconds": seconds, "files": len(issues), "flags": flags}, open(out, "w"))
"""

#: cleanvision issue type for each preproc finding code it has a counterpart for.
PEER = {"blurry": "blurry", "dark": "dark", "light": "light",
        "low-information": "low_information", "odd-size": "odd_size",
        "odd-aspect-ratio": "odd_aspect_ratio", "grayscale-in-rgb": "grayscale",
        "near-duplicate": "near_duplicates"}


def preproc_flags(root: Path, workers: int) -> tuple[dict[str, set[str]], float, int]:
    cfg = root.parent / f"{root.name}.yaml"
    cfg.write_text(config_text(root.name), encoding="utf-8")
    started = time.perf_counter()
    report = audit(load_config(cfg), workers=workers)
    seconds = time.perf_counter() - started
    found: dict[str, set[str]] = {code: set() for code in CODES}
    files = 0
    for row in report.csv_rows():
        files += 1
        for code in filter(None, row["flags"].split(";")):
            found.setdefault(code, set()).add(row["path"])
    report.close()
    return found, seconds, files


def cleanvision_flags(root: Path, python: str | None, workers: int):
    if not python or not Path(python).exists():
        return None, "no interpreter with cleanvision (--cleanvision-python)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cv.json"
        done = subprocess.run([python, "-c", CLEANVISION_SCRIPT, str(root), str(out),
                               str(workers)], capture_output=True, text=True, timeout=7200,
                              check=False)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
            return None, tail
        doc = json.loads(out.read_text())
    found: dict[str, set[str]] = {}
    for path, names in doc["flags"].items():
        for name in names:
            found.setdefault(name, set()).add(path)
    return {"found": found, "seconds": doc["seconds"], "files": doc["files"]}, "ok"


def pr_table(truth, ours, peer, bits16: bool) -> list[dict]:
    rows = []
    for code in CODES:
        if bits16 and code == "grayscale-in-rgb":
            continue
        p, r = precision_recall(ours.get(code, set()), truth[code])
        row = {"code": code, "truth": len(truth[code]), "preproc_p": p, "preproc_r": r}
        if peer is not None and code in PEER:
            cp, cr = precision_recall(peer["found"].get(PEER[code], set()), truth[code])
            row.update(cleanvision_p=cp, cleanvision_r=cr)
        rows.append(row)
    return rows


def _write_small(args) -> None:
    from PIL import Image

    path, seed = args
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (8, 8, 3))
    img = np.kron(coarse, np.ones((8, 8, 1))) + rng.normal(0, 0.05, (64, 64, 3))
    Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).save(path)


def build_small(root: Path, count: int, workers: int) -> Path:
    """``count`` distinct 64x64 RGB PNGs in two classes (kept when already there)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = []
    for i in range(count):
        path = root / f"c{i % 2}" / f"{i:06d}.png"
        if not path.exists():
            jobs.append((path, i))
    for c in ("c0", "c1"):
        (root / c).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_small, jobs, chunksize=256))
    return root


def memory_in_fresh_process(root: Path, workers: int) -> tuple[float, float]:
    """:func:`audit_bench.memory_at` in a new interpreter, so nothing this process allocated
    (the labelled datasets were generated here) counts."""
    code = ("import sys, json; sys.path[:0] = sys.argv[3:]; from audit_bench import memory_at; "
            "print(json.dumps(memory_at(__import__('pathlib').Path(sys.argv[1]), "
            "int(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, str(root), str(workers), str(HERE),
                           str(HERE.parent)], capture_output=True, text=True, check=True)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="files per labelled dataset")
    parser.add_argument("--side", type=int, default=256, help="side of a clean image, pixels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each tool")
    parser.add_argument("--mem", default="1000,20000", help="file counts of the memory runs")
    parser.add_argument("--cleanvision-python", default="/work/sidevenv-audit2/bin/python")
    parser.add_argument("--data", type=Path, default=None, help="where to build (reused)")
    parser.add_argument("--sets", default="rgb8,gray16", help="labelled sets to run")
    parser.add_argument("--memory-only", action="store_true", help="skip the labelled sets")
    args = parser.parse_args()
    base = args.data or Path(tempfile.mkdtemp(prefix="quality-bench-"))
    results: dict = {"n": args.n, "workers": args.workers}
    sets = [(name, name == "gray16") for name in args.sets.split(",") if name]
    for name, bits16 in () if args.memory_only else sets:
        root = base / name / "data"
        truth_file = base / name / "truth.json"
        if truth_file.exists():
            truth = {k: set(v) for k, v in json.loads(truth_file.read_text()).items()}
        else:
            truth = labelled_dataset(root, n=args.n, bits16=bits16, seed=42, side=args.side)
            truth_file.write_text(json.dumps({k: sorted(v) for k, v in truth.items()}))
        preproc_flags(root, args.workers)  # warm the page cache
        ours_runs, peer_runs, note = [], [], "not run"
        for _ in range(args.rounds):
            ours_runs.append(preproc_flags(root, args.workers))
            peer, note = cleanvision_flags(root, args.cleanvision_python, args.workers)
            if peer is not None:
                peer_runs.append(peer)
        ours = ours_runs[-1][0]
        peer = peer_runs[-1] if peer_runs else None
        results[name] = {"rows": pr_table(truth, ours, peer, bits16),
                         "preproc_files_per_s": [files / sec for _, sec, files in ours_runs],
                         "cleanvision_files_per_s": [p["files"] / p["seconds"] for p in peer_runs],
                         "cleanvision_note": note, "load": os.getloadavg()[0]}
    sizes = [int(s) for s in args.mem.split(",") if s]
    results["memory"] = {}
    if sizes:
        big = build_small(base / "mem" / "data", max(sizes), args.workers)
        for count in sizes:
            sub = base / f"mem{count}" / "data"
            if not sub.exists():  # hard links to the first `count` files
                for i in range(count):
                    src = big / f"c{i % 2}" / f"{i:06d}.png"
                    dst = sub / f"c{i % 2}" / src.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.link(src, dst)
            results["memory"][count] = memory_in_fresh_process(sub, args.workers)
    print_table(results)
    print(json.dumps(results, indent=1, default=str), file=sys.stderr)


def _fmt(x) -> str:
    return "   -" if x is None else f"{x:5.2f}"


def print_table(results: dict) -> None:
    for name in [k for k in ("rgb8", "gray16") if k in results]:
        r = results[name]
        print(f"\n{name}: {results['n']} files   precision / recall")
        print(f"{'finding':20}{'truth':>7}{'preproc P':>11}{'R':>7}{'cleanvision P':>15}{'R':>7}")
        for row in r["rows"]:
            print(f"{row['code']:20}{row['truth']:>7}{_fmt(row['preproc_p']):>11}"
                  f"{_fmt(row['preproc_r']):>7}{_fmt(row.get('cleanvision_p')):>15}"
                  f"{_fmt(row.get('cleanvision_r')):>7}")
        ours, cv = r["preproc_files_per_s"], r["cleanvision_files_per_s"]
        rounds = "  ".join(f"{a:.0f}/{b:.0f} ({a / b:.1f}x)" for a, b in zip(ours, cv))
        best = f", best {max(ours) / max(cv):.1f}x cleanvision" if cv else ""
        print(f"files/s preproc/cleanvision per round: {rounds or ' '.join(f'{a:.0f}' for a in ours)}"
              f" ({r['cleanvision_note']}; load {r['load']:.1f}){best}")
    mem = results["memory"]
    if mem:
        print(f"\n{'files':>8}{'parent tracemalloc MiB':>24}{'PSS parent+workers MiB':>24}")
        for count, (traced, pss) in mem.items():
            print(f"{count:>8}{traced:>24.1f}{pss:>24.1f}")
        lo, hi = mem[min(mem)], mem[max(mem)]
        print(f"ratio {max(mem)}/{min(mem)}: tracemalloc {hi[0] / lo[0]:.2f}x, "
              f"PSS {hi[1] / lo[1]:.2f}x")


if __name__ == "__main__":
    main()
