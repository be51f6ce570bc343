"""Throughput and memory of ``preproc.flow`` against its peers, in one run.

Builds (once, cached under ``--data``) three synthetic datasets of realistic content: 8-bit RGB
PNGs of 256-512 px, 16-bit grayscale PNGs with 12-bit content, 16-bit TIFFs. Then, with the page
cache warm, each peer runs one whole epoch at 224x224 in its own process tree, while this
process samples the tree's PSS (proportional set size) with psutil:

* ``preproc``: ``flow`` with 2 workers, ``rescale`` to [0, 1];
* ``keras``: Keras 3 ``ImageDataGenerator(rescale=...).flow_from_directory`` (torch backend);
* ``torch``: a torchvision-equivalent ``ImageFolder`` + ``DataLoader(num_workers=2)``: PIL open,
  ``convert('RGB')`` (so 16-bit data is clipped to 8 bits, as torchvision's loader does), PIL
  resize, ToTensor-equivalent float32 / 255 in CHW. torchvision itself is used when it imports
  (``--torch-python`` runs this peer in another environment, where one that imports is installed);
* ``bare``: the work alone: 2 processes, each reading, decoding, resizing and casting to
  float32 its half of the files, sending nothing back.

Also measured: a CLAHE pipeline's throughput, preproc's peak memory at 1k and 10k images (the
larger set hard-links the smaller one's files), and ``import preproc`` time.

Each table row also reports every peer's CPU milliseconds per image (all its processes, over
the timed epoch): on a machine shared with other sessions the kernel may give the bench's whole
session less than a core (``sched_autogroup``), and then wall-clock ratios between a 2-worker
peer and a 1-process peer swing by tens of percent while the CPU ratio holds.

Usage: ``python bench/flow_bench.py [--quick] [--data DIR]``. Only ratios within one run count:
the peers vary by about 15% between runs.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

#: one peer's run: ``(images, seconds)``
Run: TypeAlias = tuple[int, float]
#: a measurement: ``img_s``, ``peak_mb``, ``images``, or ``error``
Result: TypeAlias = dict[str, Any]
#: a peer: ``(folder, color_mode, rescale, interpolation) -> (images, seconds)``
Peer: TypeAlias = Callable[[Path, str, str, str], Run]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = (224, 224)
DATASETS = {  # name: (color_mode, rescale, number in full run)
    "rgb8": ("rgb", "1/255", 1500),
    "gray16": ("grayscale", "1/4095", 1500),
    "tiff16": ("grayscale", "1/65535", 750),
    "jpeg8": ("rgb", "1/255", 1000),
}
#: photos cut from scikit-image's sample images (the JPEG datasets)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


# ------------------------------------------------------------------------------ datasets
def _content(rng: np.random.Generator, h: int, w: int, channels: int) -> npt.NDArray[Any]:
    """Smooth gradients, a few shapes and mild noise: compresses like a photo, not like noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for _ in range(channels):
        a, b, c = rng.uniform(-1, 1, 3)
        img = 0.5 + 0.25 * np.sin(a * xx / 37 + b * yy / 53 + c * 6)
        for _ in range(4):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 80)
            img += 0.2 * ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
        img += rng.normal(0, 0.01, (h, w))
        planes.append(np.clip(img / 1.3, 0, 1))
    return np.stack(planes, axis=2)


def _photo(rng: np.random.Generator, sources: list[npt.NDArray[Any]], low: int,
           high: int) -> Any:
    """A photo of ``low``-``high`` px: a random crop of a sample image, resized, maybe flipped."""
    from PIL import Image

    src = sources[int(rng.integers(len(sources)))]
    h, w = src.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 1)), int(w * rng.uniform(0.6, 1))
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    img = Image.fromarray(src[top:top + ch, left:left + cw])
    long_side = int(rng.integers(low, high + 1))
    scale = long_side / max(ch, cw)
    img = img.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.LANCZOS)
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def build_dataset(folder: Path, kind: str, count: int) -> Path:
    from PIL import Image

    marker = folder / ".complete"
    if marker.exists() and int(marker.read_text()) == count:
        return folder
    rng = np.random.default_rng(abs(hash(kind)) % 2**32)
    if kind.startswith("jpeg"):
        import skimage.data

        sources = [getattr(skimage.data, n)()[..., :3] for n in PHOTOS]
        low, high = (1000, 1000) if kind == "jpeg1k" else (500, 1000)
    for k in range(count):
        cls = folder / f"class{k % 3}"
        cls.mkdir(parents=True, exist_ok=True)
        h, w = (int(v) for v in rng.integers(256, 513, 2))
        if kind.startswith("jpeg"):
            _photo(rng, sources, low, high).save(cls / f"{k:05d}.jpg", quality=90)
        elif kind == "rgb8":
            arr = (_content(rng, h, w, 3) * 255).astype(np.uint8)
            Image.fromarray(arr).save(cls / f"{k:05d}.png")
        elif kind == "gray16":
            arr = (_content(rng, h, w, 1)[..., 0] * 4095).astype(np.uint16)
            Image.fromarray(arr).save(cls / f"{k:05d}.png")  # 16-bit grayscale PNG
        else:
            import tifffile

            arr = (_content(rng, h, w, 1)[..., 0] * 65535).astype(np.uint16)
            tifffile.imwrite(cls / f"{k:05d}.tif", arr)
    marker.write_text(str(count))
    return folder


def hardlinked(src: Path, dst: Path, count: int) -> Path:
    """A dataset of ``count`` files hard-linked round-robin from ``src``."""
    marker = dst / ".complete"
    if marker.exists() and int(marker.read_text()) == count:
        return dst
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
    for k in range(count):
        s = files[k % len(files)]
        d = dst / s.parent.name / f"{k:06d}{s.suffix}"
        d.parent.mkdir(parents=True, exist_ok=True)
        if not d.exists():
            os.link(s, d)
    marker.write_text(str(count))
    return dst


def warm(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            p.read_bytes()


# --------------------------------------------------------------------------------- peers
#: CPU seconds a peer spent on its timed epoch (set by :func:`_stop`)
_CPU_SPENT: list[float] = []
_CPU_AT_START: list[float] = []


def _descendants_cpu(root: int) -> float:
    """CPU seconds of the live descendants of ``root``, from ``/proc`` (0 elsewhere)."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, cpu) in stats.items():
            if ppid == parent:
                total += cpu
                todo.append(pid)
    return total


def _cpu_seconds() -> float:
    """CPU of this process, of its reaped children and of its live descendants."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return reaped + _descendants_cpu(os.getpid())


def _start() -> float:
    """Start a peer's timed epoch: the wall clock, and the CPU spent so far."""
    _CPU_AT_START.append(_cpu_seconds())
    return time.perf_counter()


def _stop(start: float) -> float:
    """End a peer's timed epoch (before its workers stop): seconds since ``start``; records the
    CPU the epoch cost every process of the peer (workers still alive included)."""
    seconds = time.perf_counter() - start
    if _CPU_AT_START:
        _CPU_SPENT.append(_cpu_seconds() - _CPU_AT_START[0])
    return seconds


def preproc_config(folder: Path, color_mode: str, rescale: str, interp: str,
                   stages: list[dict[str, Any]] | None = None, **batches: Any) -> str:
    """Path of a temporary config for ``folder`` (``batches`` adds keys such as ``cache``)."""
    import yaml

    stages = stages or [{"rescale": {"factor": rescale}}]
    source: dict[str, Any] = {"directory": str(folder)}
    if rescale == "1/4095":  # 12-bit content in 16-bit files: declared, as a user must for the check
        source["expect"] = {"dtype": "uint16", "bit_depth": 12, "channels": 1}
    doc = {"version": 1, "source": source, "stages": stages,
           "batches": {"target_size": list(TARGET), "color_mode": color_mode, "seed": 1,
                       "interpolation": interp, "batch_size": 32, "workers": 2, **batches},
           "checks": {"runtime": {"sample_batches": 1}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(doc, fh)
    return fh.name


def peer_preproc(folder: Path, color_mode: str, rescale: str, interp: str,
                 stages: list[dict[str, Any]] | None = None, **batches: Any) -> Run:
    from preproc.batches.flow import flow

    if os.environ.get("PREPROC_BENCH_CACHE"):
        batches["cache"] = os.environ["PREPROC_BENCH_CACHE"]
    with flow(preproc_config(folder, color_mode, rescale, interp, stages, **batches)) as it:
        it.start()
        start = _start()
        n = sum(len(b[0]) for b in it)
        return n, _stop(start)


def peer_keras(folder: Path, color_mode: str, rescale: str, interp: str) -> Run:
    os.environ["KERAS_BACKEND"] = "torch"
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    num, den = (float(v) for v in rescale.split("/"))
    it = ImageDataGenerator(rescale=num / den).flow_from_directory(
        str(folder), target_size=TARGET, color_mode=color_mode, batch_size=32, seed=1,
        interpolation=interp)
    start = _start()
    n = sum(len(it[i][0]) for i in range(len(it)))
    return n, _stop(start)


def _pil_rgb_loader(path: str) -> Any:
    from PIL import Image

    with open(path, "rb") as fh:
        return Image.open(fh).convert("RGB")


class _TorchvisionEquivalent:
    """ImageFolder + Resize + ToTensor, written with PIL and NumPy (see the module docstring)."""

    def __init__(self, folder: Path, interp: str) -> None:
        from PIL import Image

        classes = sorted(d.name for d in Path(folder).iterdir() if d.is_dir())
        self.items = [(str(p), c) for c, name in enumerate(classes)
                      for p in sorted((Path(folder) / name).iterdir())]
        self.resample = getattr(Image.Resampling, interp.upper())

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        path, label = self.items[i]
        img = _pil_rgb_loader(path).resize(TARGET[::-1], self.resample)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous().float().div(255)
        return x, label


def peer_torch(folder: Path, color_mode: str, rescale: str, interp: str) -> Run:
    import torch

    try:
        from torchvision import datasets, transforms  # type: ignore[import-not-found]

        mode = getattr(transforms.InterpolationMode, interp.upper())
        tf = transforms.Compose([transforms.Resize(TARGET, mode), transforms.ToTensor()])
        ds = datasets.ImageFolder(str(folder), transform=tf)
    except Exception:  # noqa: BLE001 - torchvision missing or broken beside this torch
        ds = _TorchvisionEquivalent(folder, interp)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=2)
    start = _start()
    n = sum(len(x) for x, _ in loader)
    return n, _stop(start)


def _bare_work(paths: list[str], interp: str, draft: bool = False) -> None:
    """Read, decode, resize, cast; with ``draft``, Pillow's own draft recipe for JPEGs (DCT scale,
    the region of the source's pixels, ``reducing_gap`` 1.0): the floor of ``jpeg_draft``."""
    from PIL import Image

    resample = getattr(Image.Resampling, interp.upper())
    for p in paths:
        box, gap = None, None
        if p.endswith(".tif"):
            import tifffile

            img = Image.fromarray(tifffile.imread(p))
        else:
            img = Image.open(p)
            drafted = img.draft(img.mode, TARGET[::-1]) if draft else None
            if drafted is not None:
                box, gap = drafted[1], 1.0
            img.load()
        np.asarray(img.resize(TARGET[::-1], resample, box=box, reducing_gap=gap), dtype=np.float32)


def peer_bare(folder: Path, color_mode: str, rescale: str, interp: str,
              draft: bool = False) -> Run:
    import multiprocessing as mp

    paths = sorted(str(p) for p in Path(folder).rglob("*") if p.is_file() and p.name[0] != ".")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_bare_work, args=(paths[k::2], interp, draft)) for k in range(2)]
    start = _start()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return len(paths), _stop(start)


#: interpreters for peers that need another environment (default: this one)
PEER_PYTHON: dict[str, str] = {}

PEERS: dict[str, Peer] = {"preproc": peer_preproc, "keras": peer_keras, "torch": peer_torch, "bare": peer_bare}


def peer_clahe(folder: Path, color_mode: str, rescale: str, interp: str) -> Run:
    return peer_preproc(folder, "grayscale", rescale, interp,
                        stages=[{"clahe": {"clip_limit": 0.01}}])


PEERS["preproc+clahe"] = peer_clahe


def peer_draft(folder: Path, color_mode: str, rescale: str, interp: str) -> Run:
    return peer_preproc(folder, color_mode, rescale, interp, decode={"jpeg_draft": True})


PEERS["preproc+draft"] = peer_draft


def peer_bare_draft(folder: Path, color_mode: str, rescale: str, interp: str) -> Run:
    return peer_bare(folder, color_mode, rescale, interp, draft=True)


PEERS["bare+draft"] = peer_bare_draft
CLAHE = [{"clahe": {"clip_limit": 0.01}}]


def build_cache_for(folder: Path, color_mode: str, rescale: str, interp: str,
                    stages: list[dict[str, Any]] | None = None) -> tuple[Path, float]:
    """The preproc cache of a peer's config (kept beside the data); seconds to build it."""
    from preproc.batches.cache_build import build_cache
    from preproc.config import load_config

    name = "clahe" if stages else "plain"
    out = Path(str(folder) + f".cache-{name}-{color_mode}-{interp}")
    cfg = load_config(preproc_config(folder, color_mode, rescale, interp, stages))
    start = _start()
    build_cache(cfg, out, workers=2)
    return out, time.perf_counter() - start


# ----------------------------------------------------------------------------- measuring
def _pss(proc: Any) -> int:
    """PSS of one process: ``smaps_rollup`` is far cheaper to read than psutil's full ``smaps``."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(proc.memory_full_info().pss)
    except Exception:  # noqa: BLE001 - the process ended between listing and reading
        return 0


def _tree_pss(pid: int) -> int:
    import psutil  # type: ignore[import-untyped]  # no stubs installed

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    return sum(_pss(p) for p in procs)


def measure(peer: str, folder: Path, color_mode: str, rescale: str, interp: str,
            cache: Path | None = None) -> Result:
    """Run one peer in a fresh process; return img/s and the peak PSS of its process tree."""
    python = PEER_PYTHON.get(peer, sys.executable)
    cmd = [python, __file__, "--peer", peer, str(folder), color_mode, rescale, interp]
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="torch")
    env.pop("PREPROC_BENCH_CACHE", None)
    if cache is not None:
        env["PREPROC_BENCH_CACHE"] = str(cache)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_pss(proc.pid))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    thread.join()
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else "failed"}
    lines = out.strip().splitlines()
    n, seconds = json.loads(lines[-1])
    result: Result = {"img_s": n / seconds, "peak_mb": peak[0] / 2**20, "images": n}
    extra = json.loads(lines[-2]) if len(lines) > 1 and lines[-2].startswith("{") else {}
    if "cpu_s" in extra and n:
        result["cpu_ms"] = 1000.0 * float(extra["cpu_s"]) / n
    return result


def import_time() -> float:
    code = "import time; t = time.perf_counter(); import preproc; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], env=dict(
        os.environ, PYTHONPATH=str(ROOT))).strip()) for _ in range(3)]
    return min(runs)


# ------------------------------------------------------------------------------ reporting
def best_of(rounds: int, folder: Path, mode: str, rescale: str, interp: str) -> dict[str, Result]:
    """Each peer ``rounds`` times, interleaved; keep each peer's fastest run (and its memory).

    Interleaving and best-of keep a busy machine from favouring whichever peer ran when it was
    quiet; peak memory is the largest seen over the rounds.
    """
    best: dict[str, Result] = {}
    for _ in range(rounds):
        for peer in ("bare", "preproc", "keras", "torch"):
            r = measure(peer, folder, mode, rescale, interp)
            old = best.get(peer)
            if old is None or r.get("img_s", 0) > old.get("img_s", 0):
                peak = max(r.get("peak_mb", 0), old.get("peak_mb", 0) if old else 0)
                best[peer] = dict(r, peak_mb=peak) if "img_s" in r else r
            if "cpu_ms" in r:  # CPU per image is its own best: it hardly depends on the load
                best[peer]["cpu_ms"] = min(r["cpu_ms"], best[peer].get("cpu_ms", r["cpu_ms"]))
    return best


#: parts of the report besides the per-dataset tables (``--only`` may name them too)
SECTIONS = ("extra", "draft", "cache")


def run_all(data: Path, quick: bool, rounds: int, only: list[str] | None = None) -> None:
    for kind, (mode, rescale, full) in DATASETS.items():
        if only and kind not in only:
            continue
        count = max(60, full // 10) if quick else full
        folder = build_dataset(data / f"{kind}-{count}", kind, count)
        warm(folder)
        for interp in ("nearest", "bilinear"):
            _print_row(kind, interp, best_of(rounds, folder, mode, rescale, interp))
    if not only or "extra" in only:
        _print_extra(data, quick)
    if not only or "draft" in only:
        _print_jpeg_draft(data, quick, rounds)
    if not only or "cache" in only:
        _print_cache(data, quick, rounds)
    print(f"load    1/5/15-min load average at the end: {_load()}", flush=True)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _print_row(kind: str, interp: str, res: dict[str, Result]) -> None:
    def rate(p: str) -> str:
        r = res[p]
        return f"{r['img_s']:7.0f} img/s {r['peak_mb']:6.0f} MB" if "img_s" in r else f"{r['error'][:40]}"

    ours = res["preproc"].get("img_s")
    ratios = []
    for p in ("bare", "keras", "torch"):
        theirs = res[p].get("img_s")
        ratios.append(f"{ours / theirs:4.2f}x {p}" if ours and theirs else f"  n/a {p}")
    print(f"{kind:7} {interp:8} | " + " | ".join(f"{p}: {rate(p)}" for p in res))
    bare, torch = res["bare"].get("img_s"), res["torch"].get("img_s")
    # the bare loop is the same decode, resize and cast with nothing around it: how far any
    # loader of Pillow's output can lead a peer on this data
    ceiling = f"; bare loop = {bare / torch:4.2f}x torch" if bare and torch else ""
    print(f"{'':17}| preproc = " + ", ".join(ratios) + ceiling, flush=True)
    cpu = {p: r["cpu_ms"] for p, r in res.items() if "cpu_ms" in r}
    if cpu:  # the ratio a machine shared with other sessions cannot blur
        mine = cpu.get("preproc")
        per = ", ".join(f"{p} {v:.2f}" for p, v in cpu.items())
        vs = ", ".join(f"{cpu[p] / mine:4.2f}x {p}" for p in ("bare", "keras", "torch")
                       if mine and p in cpu)
        print(f"{'':17}| CPU ms/img (all processes): {per}; preproc = {vs}", flush=True)


def _dataset(data: Path, kind: str, quick: bool) -> Path:
    """The folder of dataset ``kind`` at the run's size, built if missing."""
    full = DATASETS[kind][2]
    count = max(60, full // 10) if quick else full
    return build_dataset(data / f"{kind}-{count}", kind, count)


def _print_extra(data: Path, quick: bool) -> None:
    small_n, big_n = (200, 2000) if quick else (1000, 10000)
    src = _dataset(data, "rgb8", quick)
    small = hardlinked(src, data / f"rgb8-links-{small_n}", small_n)
    big = hardlinked(src, data / f"rgb8-links-{big_n}", big_n)
    warm(small)
    warm(big)
    for folder, n in ((small, small_n), (big, big_n)):
        r = measure("preproc", folder, "rgb", "1/255", "bilinear")
        print(f"memory  preproc rgb8 bilinear {n:6d} images: {r.get('peak_mb', 0):6.0f} MB peak PSS, "
              f"{r.get('img_s', 0):.0f} img/s", flush=True)
    gray = _dataset(data, "gray16", quick)
    r = measure("preproc+clahe", gray, "grayscale", "1/4095", "bilinear")
    print(f"clahe   preproc gray16 -> clahe (scikit-image), 2 workers: {r.get('img_s', 0):.0f} img/s, "
          f"{r.get('peak_mb', 0):.0f} MB", flush=True)
    print(f"import  `import preproc`: {import_time() * 1000:.0f} ms (best of 3)")


def _best(rounds: int, *runs: tuple[str, Callable[[], Result]]) -> dict[str, Result]:
    """Each ``(label, thunk)`` run ``rounds`` times interleaved; the fastest result of each."""
    best: dict[str, Result] = {}
    for _ in range(rounds):
        for label, thunk in runs:
            r = thunk()
            if label not in best or r.get("img_s", 0) > best[label].get("img_s", 0):
                old_cpu = best.get(label, {}).get("cpu_ms")
                best[label] = dict(r, peak_mb=max(r.get("peak_mb", 0),
                                                  best.get(label, {}).get("peak_mb", 0)))
                if old_cpu is not None:
                    best[label]["cpu_ms"] = old_cpu
            if "cpu_ms" in r:  # CPU per image is its own best: it hardly depends on the load
                best[label]["cpu_ms"] = min(r["cpu_ms"], best[label].get("cpu_ms", r["cpu_ms"]))
    return best


def _cpu_ratio(a: Result, b: Result) -> str:
    """``b``'s CPU ms per image over ``a``'s, with both figures: the load-robust speed-up."""
    if not a.get("cpu_ms") or not b.get("cpu_ms"):
        return "CPU n/a"
    return f"CPU ms/img {b['cpu_ms']:.2f} -> {a['cpu_ms']:.2f} = {b['cpu_ms'] / a['cpu_ms']:.2f}x"


def _ratio(a: Result, b: Result) -> str:
    return f"{a['img_s'] / b['img_s']:.2f}x" if a.get("img_s") and b.get("img_s") else "n/a"


def _print_jpeg_draft(data: Path, quick: bool, rounds: int) -> None:
    count = 100 if quick else 600
    folder = build_dataset(data / f"jpeg1k-{count}", "jpeg1k", count)
    warm(folder)
    res = _best(rounds,
                ("exact", lambda: measure("preproc", folder, "rgb", "1/255", "bilinear")),
                ("draft", lambda: measure("preproc+draft", folder, "rgb", "1/255", "bilinear")),
                ("bare", lambda: measure("bare", folder, "rgb", "1/255", "bilinear")),
                ("bare+draft", lambda: measure("bare+draft", folder, "rgb", "1/255", "bilinear")))
    print(f"draft   jpeg 1000 px -> 224 bilinear: exact {res['exact'].get('img_s', 0):.0f} img/s, "
          f"jpeg_draft {res['draft'].get('img_s', 0):.0f} img/s = {_ratio(res['draft'], res['exact'])}"
          f" (not Keras-identical); {_cpu_ratio(res['draft'], res['exact'])}", flush=True)
    # the same draft recipe in a bare Pillow loop: the ratio the decoder and resize allow at all
    print(f"draft   bare Pillow loop, draft against exact: {_ratio(res['bare+draft'], res['bare'])}; "
          f"{_cpu_ratio(res['bare+draft'], res['bare'])}", flush=True)


def _print_cache(data: Path, quick: bool, rounds: int) -> None:
    """Cache reads against the decode path on the same data, and memory at two dataset sizes."""
    rgb = _dataset(data, "rgb8", quick)
    c_rgb, t_rgb = build_cache_for(rgb, "rgb", "1/255", "bilinear")
    res = _best(rounds, ("files", lambda: measure("preproc", rgb, "rgb", "1/255", "bilinear")),
                ("cache", lambda: measure("preproc", rgb, "rgb", "1/255", "bilinear", c_rgb)))
    print(f"cache   rgb8 224x224 uint8 batches: files {res['files'].get('img_s', 0):.0f} img/s, "
          f"cache {res['cache'].get('img_s', 0):.0f} img/s = {_ratio(res['cache'], res['files'])} "
          f"(built once in {t_rgb:.1f} s)", flush=True)
    gray = _dataset(data, "gray16", quick)
    c_gray, t_gray = build_cache_for(gray, "grayscale", "1/4095", "bilinear", CLAHE)
    res = _best(rounds,
                ("files", lambda: measure("preproc+clahe", gray, "grayscale", "1/4095", "bilinear")),
                ("cache", lambda: measure("preproc+clahe", gray, "grayscale", "1/4095", "bilinear",
                                          c_gray)))
    print(f"cache   gray16 -> clahe: files {res['files'].get('img_s', 0):.0f} img/s, cache "
          f"{res['cache'].get('img_s', 0):.0f} img/s = {_ratio(res['cache'], res['files'])} "
          f"(built once in {t_gray:.1f} s)", flush=True)
    small_n, big_n = (200, 2000) if quick else (1000, 10000)
    for n in (small_n, big_n):
        folder = hardlinked(rgb, data / f"rgb8-links-{n}", n)
        warm(folder)
        cache, _ = build_cache_for(folder, "rgb", "1/255", "bilinear")
        r = measure("preproc", folder, "rgb", "1/255", "bilinear", cache)
        print(f"memory  preproc rgb8 from cache {n:6d} images: {r.get('peak_mb', 0):6.0f} MB peak "
              f"PSS, {r.get('img_s', 0):.0f} img/s", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        name, folder, mode, rescale, interp = sys.argv[2:7]
        n, seconds = PEERS[name](Path(folder), mode, rescale, interp)
        if _CPU_SPENT:
            print(json.dumps({"cpu_s": _CPU_SPENT[0]}))
        print(json.dumps([n, seconds]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small datasets, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None,
                        help="runs per peer, interleaved, best kept (default 1 quick, 2 full)")
    parser.add_argument("--only", nargs="+", choices=list(DATASETS) + list(SECTIONS), default=None,
                        help="measure only these datasets and sections (extra: memory, CLAHE and "
                        "import lines; draft: jpeg_draft; cache: cache reads)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "preproc-bench",
                        help="where the synthetic datasets are built and cached")
    parser.add_argument("--torch-python", metavar="PYTHON",
                        help="interpreter for the torch peer, e.g. a venv with a torchvision that "
                        "imports (pip install torch==2.14.1 torchvision==0.29.1 pillow numpy)")
    args = parser.parse_args()
    if args.torch_python:
        PEER_PYTHON["torch"] = args.torch_python
    print(f"preproc flow benchmark: {os.cpu_count()} cores, target {TARGET}, batch 32, "
          f"2 workers/processes per peer; PSS of each peer's process tree; load average {_load()}",
          flush=True)
    run_all(args.data, args.quick, args.rounds or (1 if args.quick else 2), args.only)


if __name__ == "__main__":
    main()
