"""Audit throughput and memory (issue: dataset audit). Not a test: prints a table.

Builds 2,000 16-bit grayscale PNGs (12-bit content, 512x512) and 2,000 8-bit RGB PNGs (256x256)
in a temporary folder (or ``--data DIR``, reused when present), then measures files per second of

* ``audit --quick`` (headers only),
* the full audit (every file decoded and measured),
* two bare decode loops over the same files in a 2-process pool, results discarded: the
  floor any audit has to pay. ``bare`` calls ``preproc.io.decode`` (the audit's own decoder:
  ISA-L inflate, lossless for every format); ``pillow`` is the loop a script would write,
  ``np.asarray(PIL.Image.open(path))``,
* for 2,000 16-bit DICOM files (512x512, 12 bits stored, written from CT_small's header), the
  full audit against a bare ``pydicom.dcmread(path).pixel_array`` loop in the same pool
  (``--dicom-only`` runs just this row),
* cleanvision's ``Imagelab.find_issues`` on the 8-bit set, when an interpreter with cleanvision
  is given (``--cleanvision-python``; default ``/tmp/cvenv/bin/python`` if it exists),

all with the files in the page cache (best of 5 rounds for ``--quick``, of 2 for the others),
and the peak memory of the full audit from 1,000 to 10,000 small files: Python allocations of
the parent (tracemalloc) and the summed PSS of the parent and its workers (psutil).

Targets: full >= 0.8x the bare loops (on DICOM, the pydicom loop); quick >= 20x full on
16-bit PNGs; memory flat 1k -> 10k.

Usage: ``python bench/audit_bench.py [--small] [--workers 2] [--data DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preproc.auditing import audit

CLEANVISION_SCRIPT = """
import sys, time
from cleanvision import Imagelab
start = time.perf_counter()
lab = Imagelab(data_path=sys.argv[1])
lab.find_issues()
print(time.perf_counter() - start)
"""


def _write_one(args: tuple[str, str, int, int]) -> None:
    from PIL import Image

    path, kind, size, seed = args
    rng = np.random.default_rng(seed)
    if kind == "gray16":
        y, x = np.mgrid[0:size, 0:size]
        base = (x + y) * (3000.0 / (2 * size)) + rng.normal(0, 40, (size, size)) + 500
        arr = np.clip(base, 0, 4095).astype(np.uint16)
        Image.fromarray(arr).save(path)  # mode I;16: a 16-bit grayscale PNG
    else:
        arr = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        arr = np.kron(arr, np.ones((8, 8, 1), np.uint8)) + rng.integers(0, 8, (size, size, 3),
                                                                         dtype=np.uint8)
        Image.fromarray(arr, "RGB").save(path)


def build(root: Path, kind: str, count: int, size: int, classes: int = 2) -> Path:
    """``count`` PNGs of ``kind`` under ``root/<class>/``; skipped when already there."""
    if root.exists() and sum(1 for _ in root.rglob("*.png")) == count:
        return root
    jobs = []
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((str(folder / f"{i:05d}.png"), kind, size, i))
    with Pool(2) as pool:
        pool.map(_write_one, jobs, chunksize=32)
    return root


def _write_dicom(args: tuple[str, int]) -> None:
    """One 512x512 CT-like DICOM: CT_small's header, 12 bits stored in 16, own pixels."""
    import pydicom
    from pydicom.data import get_testdata_file

    path, seed = args
    source = get_testdata_file("CT_small.dcm", download=False)
    assert isinstance(source, str), "pydicom ships CT_small.dcm"
    ds = pydicom.dcmread(source)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:512]
    arr = np.clip((x + y) * 1.5 + rng.normal(0, 40, (512, 512)) + 200, 0, 4095)
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PatientID = f"P{seed // 20:04d}"
    ds.PixelData = arr.astype("<u2").tobytes()
    ds.save_as(path)


def build_dicom(root: Path, count: int, classes: int = 2) -> Path:
    """``count`` 16-bit DICOM files under ``root/<class>/``; skipped when already there."""
    if root.exists() and sum(1 for _ in root.rglob("*.dcm")) == count:
        return root
    jobs = []
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((str(folder / f"{i:05d}.dcm"), i))
    with Pool(2) as pool:
        pool.map(_write_dicom, jobs, chunksize=32)
    return root


def _pydicom_only(path: str) -> None:
    import pydicom

    pydicom.dcmread(path).pixel_array  # noqa: B018 - the decode is the work measured


def dicom_row(data: Path, n: int, workers: int, rounds: int = 2) -> dict[str, Any]:
    """Full audit of ``n`` 16-bit DICOM files vs a bare ``dcmread(...).pixel_array`` loop.

    The two alternate (audit, bare, audit, bare, ...) so both see the same machine load; every
    round's pair is kept (``pairs``: ``(audit, bare, load average)``), ``full``/``pydicom``
    are the best of each side.
    """
    root = build_dicom(data / f"dicom16_{n}", n)
    for path in root.rglob("*.dcm"):
        path.read_bytes()
    audit(build_dicom(data / "dicom_warmup", 20), workers=workers).close()
    pairs = []
    for _ in range(rounds):
        full = audit_rate(root, workers, False)
        bare = bare_loop(root, workers, _pydicom_only, "*.dcm")
        pairs.append((full, bare, os.getloadavg()[0]))
    return {"full": max(p[0] for p in pairs), "pydicom": max(p[1] for p in pairs),
            "pairs": pairs}


def dicom_cpu(data: Path, files: int = 100, rounds: int = 5) -> dict[str, float]:
    """Per-file CPU milliseconds (``time.process_time``, best of ``rounds``, one process) of a
    bare ``dcmread + pixel_array`` and of the audit's per-file work, split into its parts.

    CPU time of one process is far less disturbed by other work on the machine than the
    wall-clock rate of a pool, so this says where the audit's time goes when the machine is
    shared.
    """
    import pydicom

    from preproc.auditing.measure import SAMPLE_STEP, _prepare, measure, process_chunk
    from preproc.auditing.quality import measures_of
    from preproc.dataset.dicom_tally import DicomOptions
    from preproc.dataset.records import FileRecord, fill_header
    from preproc.io import read

    root = build_dicom(data / "dicom16_200", 200)
    paths = sorted(str(p) for p in root.rglob("*.dcm"))[:files]
    options = DicomOptions().decoding()
    decoded = [read(p, "pillow-or-array", dicom=options) for p in paths]
    records = []
    for (pixels, info), path in zip(decoded, paths):
        rec = FileRecord(path=path, cls=None)
        fill_header(rec, info, options)
        for name, value in measure(pixels).items():
            setattr(rec, name, value)
        records.append(rec)

    def once(work: Callable[[int], object]) -> float:
        start = time.process_time()
        for i in range(len(paths)):
            work(i)
        return (time.process_time() - start) / len(paths) * 1e3

    rel = [os.path.relpath(p, root) for p in paths]
    # the audit's workers take files in chunks of 32 and measure each chunk's images together
    chunks = [[(r, None) for r in rel[i:i + 32]] for i in range(0, len(rel), 32)]

    def audit_chunk(i: int) -> object:
        return process_chunk((str(root), chunks[i // 32], False, options)) if i % 32 == 0 else None

    def quality_chunk(i: int) -> object:
        if i % 32:
            return None
        works = (_prepare(rec, decoded[j][0]) for j, rec in enumerate(records[i:i + 32], start=i))
        return measures_of([work for work in works if work is not None])

    parts: dict[str, Callable[[int], object]] = {
        "bare": lambda i: pydicom.dcmread(paths[i]).pixel_array,
        "audit": audit_chunk,
        "decode": lambda i: read(paths[i], "pillow-or-array", dicom=options),
        "stats+hash": lambda i: measure(decoded[i][0], sample=SAMPLE_STEP),
        "quality": quality_chunk,
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):  # the parts alternate, so a change in load touches them all
        for name, work in parts.items():
            times[name].append(once(work))
    return {name: min(values) for name, values in times.items()}


def print_dicom_cpu(row: dict[str, float]) -> None:
    print("per-file CPU ms, one process: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items())
          + f"; bare/audit {row['bare'] / row['audit']:.2f}")


def _decode_only(path: str) -> None:
    from preproc.io import decode

    decode(path)


def _pillow_only(path: str) -> None:
    from PIL import Image

    np.asarray(Image.open(path))


def bare_loop(root: Path, workers: int, work: Callable[[str], None] = _decode_only,
              glob: str = "*.png") -> float:
    """Files per second of finding and decoding every file in a ``workers``-process pool."""
    start = time.perf_counter()  # the audit lists the folder too
    files = sorted(str(p) for p in root.rglob(glob))
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(work, files, chunksize=16):
            pass
    return len(files) / (time.perf_counter() - start)


def warm_cache(root: Path) -> None:
    """Read every file once, so every measurement finds the files in the page cache."""
    for path in root.rglob("*.png"):
        path.read_bytes()


def audit_rate(root: Path, workers: int, quick: bool) -> float:
    start = time.perf_counter()
    report = audit(root, quick=quick, workers=workers)
    seconds = time.perf_counter() - start
    assert report.summary["readable"] == report.summary["files"]
    report.close()
    return float(report.summary["files"]) / seconds


def cleanvision_rate(root: Path, python: str | None) -> tuple[float | None, str]:
    if not python or not Path(python).exists():
        return None, "no interpreter with cleanvision (--cleanvision-python)"
    done = subprocess.run([python, "-c", CLEANVISION_SCRIPT, str(root)], capture_output=True,
                          text=True, timeout=3600, check=False)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr else "failed"
    seconds = float(done.stdout.strip().splitlines()[-1])
    return sum(1 for _ in root.rglob("*.png")) / seconds, "Imagelab.find_issues (default issues)"


class _PssSampler(threading.Thread):
    """Samples the summed PSS of this process and its children every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil  # type: ignore[import-untyped]  # no stubs in the environment

        me = psutil.Process()
        while not self._halt.is_set():
            total = 0
            for proc in [me] + me.children(recursive=True):
                try:
                    total += proc.memory_full_info().pss
                except (psutil.Error, AttributeError):
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def memory_at(root: Path, workers: int) -> tuple[float, float]:
    """(tracemalloc peak of the parent, peak summed PSS), in MiB, of one full audit."""
    sampler = _PssSampler()
    sampler.start()
    tracemalloc.start()
    report = audit(root, workers=workers)
    report.to_json(files=False)
    with tempfile.TemporaryDirectory() as out:
        report.write(out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report.close()
    return peak / 2**20, sampler.stop() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="200 files per set, fast")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, help="folder for the generated datasets (kept)")
    parser.add_argument("--cleanvision-python", default="/tmp/cvenv/bin/python")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--dicom-only", action="store_true", help="only the DICOM row")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --dicom-only: alternating audit/bare rounds")
    parser.add_argument("--dicom-cpu", action="store_true",
                        help="with --dicom-only: also the per-file CPU split (one process)")
    args = parser.parse_args()
    n = 200 if args.small else 2000
    if args.dicom_only:
        with tempfile.TemporaryDirectory() as tmp:
            row = dicom_row(args.data or Path(tmp), n, args.workers, args.rounds)
            print_dicom(row, n)
            if args.dicom_cpu:
                print_dicom_cpu(dicom_cpu(args.data or Path(tmp)))
        return
    mem_sizes = (200, 1000, 2000) if args.small else (1000, 5000, 10000)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        results = run(data, n, mem_sizes, args)
    print_table(results, n, mem_sizes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def run(data: Path, n: int, mem_sizes: tuple[int, ...],
        args: argparse.Namespace) -> dict[str, Any]:
    sets = {
        "16-bit gray 512x512": build(data / f"gray16_{n}", "gray16", n, 512),
        "8-bit RGB 256x256": build(data / f"rgb8_{n}", "rgb8", n, 256),
    }
    results: dict[str, Any] = {"sets": {}, "memory": {}}
    warm = build(data / "mem_warmup", "gray16", 50, 32, classes=4)
    for quick in (True, False):  # first-use imports are not a throughput cost
        audit(warm, quick=quick, workers=args.workers).close()
    for name, root in sets.items():
        warm_cache(root)
        # best of several rounds; --quick takes ~0.1 s, where scheduling noise is large
        row: dict[str, Any] = {
               "quick": max(audit_rate(root, args.workers, True) for _ in range(5)),
               "full": max(audit_rate(root, args.workers, False) for _ in range(2)),
               "bare": max(bare_loop(root, args.workers) for _ in range(2)),
               "pillow": max(bare_loop(root, args.workers, _pillow_only) for _ in range(2))}
        if name.startswith("8-bit"):
            row["cleanvision"], row["cleanvision_note"] = cleanvision_rate(
                root, args.cleanvision_python)
        results["sets"][name] = row
    results["dicom"] = dicom_row(data, n, args.workers)
    memory_at(warm, args.workers)  # imports (matplotlib, ...) are not the dataset's cost
    for count in mem_sizes:
        root = build(data / f"mem_{count}", "gray16", count, 32, classes=4)
        results["memory"][count] = memory_at(root, args.workers)
    return results


def print_table(results: dict[str, Any], n: int, mem_sizes: tuple[int, ...]) -> None:
    print(f"\nthroughput, files/s ({n} files per set, {os.cpu_count()} cores)")
    print(f"{'set':<22}{'quick':>8}{'full':>7}{'bare':>7}{'pillow':>8}{'full/bare':>11}"
          f"{'full/pillow':>13}{'quick/full':>12}{'cleanvision':>13}")
    for name, r in results["sets"].items():
        cv = f"{r['cleanvision']:.0f}" if r.get("cleanvision") else "-"
        print(f"{name:<22}{r['quick']:>8.0f}{r['full']:>7.0f}{r['bare']:>7.0f}{r['pillow']:>8.0f}"
              f"{r['full'] / r['bare']:>11.2f}{r['full'] / r['pillow']:>13.2f}"
              f"{r['quick'] / r['full']:>12.1f}{cv:>13}")
        if "cleanvision_note" in r:
            print(f"  cleanvision: {r['cleanvision_note']}")
    print_dicom(results["dicom"], n)
    print("\npeak memory of a full audit (MiB)")
    print(f"{'files':>8}{'parent tracemalloc':>20}{'PSS parent+workers':>20}")
    for count in mem_sizes:
        traced, pss = results["memory"][count]
        print(f"{count:>8}{traced:>20.1f}{pss:>20.1f}")
    lo, hi = results["memory"][mem_sizes[0]], results["memory"][mem_sizes[-1]]
    print(f"ratio {mem_sizes[-1]}/{mem_sizes[0]}: tracemalloc {hi[0] / lo[0]:.2f}x, "
          f"PSS {hi[1] / lo[1]:.2f}x")



def print_dicom(row: dict[str, Any], n: int) -> None:
    print(f"\n16-bit DICOM 512x512, {n} files: full audit {row['full']:.0f} files/s, "
          f"dcmread + pixel_array {row['pydicom']:.0f} files/s, "
          f"ratio {row['full'] / row['pydicom']:.2f}")
    for i, (full, bare, load) in enumerate(row.get("pairs", []), 1):
        print(f"  round {i}: audit {full:.0f}, bare {bare:.0f} files/s, ratio {full / bare:.2f}, "
              f"load average {load:.1f}")

if __name__ == "__main__":
    main()
