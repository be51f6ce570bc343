"""Where the pixels are made: one image job, run in-process or by a pool of worker processes.

:class:`ImageJob` turns a file index into the final array: decode (lossless), colour
conversion and resize (:mod:`preproc.batches.imaging`), then the stages one by one, measuring each
stage's output min and max when the runtime guard asks for it.

:class:`ProcessEngine` runs jobs in forked worker processes. Each worker pulls single-image
tasks from one shared queue (so the load balances) and writes its result straight into a
batch slot of an anonymous shared-memory ring mapped before the fork; only a small status
message travels back through a pipe. The parent copies a finished slot out once, so the batch it
hands over owns its memory. Results land at their position in the batch, so the order never
depends on which worker did what. :class:`InlineEngine` does the same work in the caller's
process (``workers: 0``).
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import signal
import traceback
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import wait

import numpy as np

from . import imaging
from ..errors import PreprocError
from ..stages.augment_draw import stage_rng
from ..stages.base import RunContext

__all__ = ["ImageJob", "InlineEngine", "ProcessEngine", "Result", "WorkerError"]


class WorkerError(PreprocError):
    """A worker failed in an unexpected way (a bug or a crash); carries the remote traceback."""


@dataclass
class Result:
    """What one image produced: ``status`` is ``'ok'`` or ``'error'`` (then ``error`` is set)."""

    status: str
    stats: list | None = None
    error: BaseException | None = None
    array: np.ndarray | None = None


@dataclass
class ImageJob:
    """Everything a worker needs to turn file ``i`` into its final array.

    Attributes:
        paths: every file of the listing, indexed by the tasks.
        color_mode: ``'grayscale'``, ``'rgb'`` or ``'rgba'``.
        target: ``(height, width)``.
        interpolation: a key of :data:`preproc.batches.imaging.INTERPOLATIONS`.
        keep_aspect_ratio: centre-crop before resizing.
        stages: the pipeline's stages, fitted.
        specs: the spec entering each stage, as the pipeline bound them.
        bit_depth: declared ``source.expect.bit_depth`` (sets the opaque alpha), or ``None``.
        run_stages: apply the stages here; ``False`` ships the resized image in its container
            dtype and leaves the (cheap, elementwise) stages to the batch in the parent.
        dicom: the config's ``source.dicom`` (what DICOM pixels mean), or ``None`` for the
            stored values; with ``frames: all`` a path may name one frame (``file#k``).
        seed: the run's seed; with the epoch, the file index and the stage index it fixes every
            random draw, whichever worker runs the file.
        subset: the subset being produced (for the run context).
    """

    paths: list[str]
    color_mode: str
    target: tuple[int, int]
    interpolation: str
    keep_aspect_ratio: bool
    stages: list
    specs: list = field(default_factory=list)
    bit_depth: int | None = None
    run_stages: bool = True
    dicom: object | None = None
    seed: int = 0
    subset: str | None = None

    def load(self, i: int) -> np.ndarray:
        """Decode file ``i``, convert its colour mode and resize it; container dtype kept."""
        from ..io import decode
        from ..io.fast8 import open_8bit
        from ..io.frames import split_frame

        path, frame = self.paths[i], None
        if getattr(self.dicom, "frames", None) == "all":
            path, frame = split_frame(path)
        image = open_8bit(path) if frame is None else None
        if image is not None and image.mode.startswith("I;16"):
            if self.color_mode != "rgba":  # rgba's alpha needs the header's stored bits
                x = np.asarray(image)
                x = x.astype(x.dtype.newbyteorder("="))[..., None]
                return imaging.prepare(x, self.color_mode, self.target, self.interpolation,
                                       self.keep_aspect_ratio)
        elif image is not None:  # 8-bit file Pillow reads as is: no NumPy round trip
            return imaging.prepare_pil(image, self.color_mode, self.target, self.interpolation,
                                       self.keep_aspect_ratio)
        x, info = decode(path, dicom=self.dicom, frame=frame)
        bits = self.bit_depth or getattr(info, "stored_bits", None)
        alpha = imaging.alpha_value(x.dtype, bits) if self.color_mode == "rgba" else None
        return imaging.prepare(x, self.color_mode, self.target, self.interpolation,
                               self.keep_aspect_ratio, alpha)

    def run(self, i: int, guard: bool = False, epoch: int = 0) -> tuple[np.ndarray, list | None]:
        """Load file ``i`` and apply every stage (unless ``run_stages`` is off) for ``epoch``.

        Returns:
            The array and, with ``guard`` and stages run, ``[(min, max, has_nan), ...]`` after
            each stage.
        """
        x = self.load(i)
        if not self.run_stages:
            return x, None
        stats = [] if guard else None
        for k, stage in enumerate(self.stages):
            spec = self.specs[k] if self.specs else None
            rng = stage_rng(self.seed, epoch, i, stage.index) if stage.traits().random else None
            x = stage(x, RunContext(spec=spec, subset=self.subset, epoch=epoch, index=i,
                                    file=self.paths[i], rng=rng))
            if guard:
                stats.append(_minmax(x))
        return x, stats


def _minmax(x: np.ndarray) -> tuple[float, float, bool]:
    if x.size == 0:
        return (0.0, 0.0, False)
    if x.dtype.kind == "f":
        nan = bool(np.isnan(x).any())
        return (float(np.nanmin(x)), float(np.nanmax(x)), nan) if not np.isnan(x).all() \
            else (0.0, 0.0, True)
    return (float(x.min()), float(x.max()), False)


def run_one(job: ImageJob, index: int, guard: bool, epoch: int = 0) -> Result:
    """Run one job, turning a :class:`PreprocError` into an error result."""
    try:
        out, stats = job.run(index, guard, epoch)
    except PreprocError as exc:
        return Result("error", error=exc)
    return Result("ok", stats=stats, array=out)


class InlineEngine:
    """Runs the jobs of a batch in the calling process."""

    def __init__(self, job: ImageJob) -> None:
        self.job = job

    def run_batch(self, indices, guard: bool, out: np.ndarray, epoch: int = 0) -> list[Result]:
        """Fill ``out[k]`` with image ``indices[k]``; return one :class:`Result` per position."""
        results = []
        for pos, idx in enumerate(indices):
            res = run_one(self.job, int(idx), guard, epoch)
            if res.status == "ok":
                res = _store(out, pos, res, self.job.paths[int(idx)])
            results.append(res)
        return results

    def close(self) -> None:
        pass


def _store(out: np.ndarray, pos: int, res: Result, path: str) -> Result:
    """Write ``res.array`` into ``out[pos]`` when its dtype fits without loss.

    An array of another dtype (a 16-bit file in an 8-bit dataset) stays in the result and
    travels back whole; the parent widens the batch for it. A shape that differs is an error.
    """
    arr = res.array
    if arr.shape != out.shape[1:]:
        msg = f"produced an image of shape {arr.shape}, the batch holds {out.shape[1:]}"
        return Result("error", error=PreprocError(f"{path}: {msg}"))
    if np.can_cast(arr.dtype, out.dtype, "safe"):
        out[pos] = arr
        res.array = None
    return res


class ProcessEngine:
    """A pool of forked workers writing into a shared ring of batch slots.

    Args:
        job: the image job (inherited by the workers through ``fork``).
        workers: number of processes (at least 1).
        n_slots: batches that can be in flight at once.
        batch_shape: ``(batch_size, H, W, C)`` of one slot.
        dtype: dtype of the batch.
    """

    def __init__(self, job: ImageJob, workers: int, n_slots: int, batch_shape, dtype) -> None:
        self.job = job
        self.n_slots = n_slots
        self.dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(batch_shape)) * self.dtype.itemsize * n_slots)
        self._mem = mmap.mmap(-1, nbytes)  # anonymous and MAP_SHARED: visible to forked children
        self.slots = np.frombuffer(self._mem, self.dtype, count=int(np.prod(batch_shape)) * n_slots)
        self.slots = self.slots.reshape((n_slots,) + tuple(batch_shape))
        ctx = mp.get_context("fork")
        self._tasks = ctx.SimpleQueue()
        self._conns, self._procs = [], []
        for _ in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, args=(job, self._tasks, writer, self.slots),
                               daemon=True)
            proc.start()
            writer.close()
            self._conns.append(reader)
            self._procs.append(proc)
        self._pending: dict[int, dict[int, Result]] = {}
        self._expected: dict[int, int] = {}
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._tasks)

    def submit(self, ticket: int, slot: int, indices, guard: bool, epoch: int = 0) -> None:
        """Queue the images ``indices`` of ``epoch`` for slot ``slot`` under ``ticket``."""
        self._pending[ticket] = {}
        self._expected[ticket] = len(indices)
        for pos, idx in enumerate(indices):
            self._tasks.put((ticket, slot, pos, int(idx), guard, epoch))

    def collect(self, ticket: int) -> list[Result]:
        """Block until every image of ``ticket`` is done; return its results by position."""
        while len(self._pending[ticket]) < self._expected[ticket]:
            self._receive()
        results = self._pending.pop(ticket)
        del self._expected[ticket]
        return [results[pos] for pos in range(len(results))]

    def _receive(self) -> None:
        sentinels = {p.sentinel: p for p in self._procs}
        ready = wait(self._conns + list(sentinels))
        for obj in ready:
            if obj in sentinels:
                proc = sentinels[obj]
                if not any(c.poll() for c in self._conns):
                    raise WorkerError(f"a worker process (pid {proc.pid}) died with exit code "
                                      f"{proc.exitcode}; no batch can be completed")
                continue
            try:
                ticket, pos, res = obj.recv()
            except EOFError:
                continue
            if ticket in self._pending:
                self._pending[ticket][pos] = res

    def close(self) -> None:
        """Stop the workers; idempotent."""
        self._finalizer()


def _shutdown(procs, tasks) -> None:
    for proc in procs:
        if proc.is_alive():
            try:
                tasks.put(None)
            except (OSError, ValueError):
                break
    for proc in procs:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=1)


def _worker_main(job: ImageJob, tasks, conn, slots: np.ndarray) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    while True:
        task = tasks.get()
        if task is None:
            break
        ticket, slot, pos, idx, guard, epoch = task
        try:
            res = run_one(job, idx, guard, epoch)
            if res.status == "ok":
                res = _store(slots[slot], pos, res, job.paths[idx])
        except Exception:  # noqa: BLE001 - a bug: ship the traceback, the parent raises it
            res = Result("error", error=WorkerError(
                f"{job.paths[idx]}: unexpected failure in a worker:\n{traceback.format_exc()}"))
        try:
            conn.send((ticket, pos, res))
        except (BrokenPipeError, OSError):
            break


class Window:
    """Batches in flight on a :class:`ProcessEngine`, keyed by ``(epoch, batch)``.

    ``fetch`` submits the wanted batch if needed, fills free slots with the batches expected
    next, waits for the wanted one and copies it out of its slot. A slot is reused only after
    every result of its previous batch arrived, so a late worker never writes into a reused slot.
    """

    def __init__(self, engine: ProcessEngine, n_slots: int) -> None:
        self.engine = engine
        self.free = list(range(n_slots))
        self.inflight: dict = {}
        #: slots whose wait was interrupted: workers may still write into them
        self.draining: dict[int, int] = {}
        self._ticket = 0

    def fetch(self, key, ahead: list, task, finish):
        """Compute batch ``key`` and return ``finish(slot_view, results)``.

        ``task(key) -> (indices, guard[, epoch])`` describes a batch; ``finish`` must copy what it keeps
        out of the view, which is reused once it returns.
        """
        if key not in self.inflight:
            self._submit(key, task, keep=set(ahead))
        for nxt in ahead:
            if nxt not in self.inflight and self.free:
                self._submit(nxt, task, keep=set(ahead) | {key})
        ticket, slot, n = self.inflight.pop(key)
        try:
            results = self.engine.collect(ticket)
        except BaseException:  # e.g. Ctrl-C: the slot is only free once its ticket drains
            self.draining[slot] = ticket
            raise
        try:
            return finish(self.engine.slots[slot, :n], results)
        finally:
            self.free.append(slot)

    def _drain(self) -> None:
        for slot, ticket in list(self.draining.items()):
            self.engine.collect(ticket)
            del self.draining[slot]
            self.free.append(slot)

    def _submit(self, key, task, keep: set) -> None:
        if self.draining:
            self._drain()
        if not self.free:
            self._evict(keep)
        indices, guard, *epoch = task(key)
        slot = self.free.pop()
        self._ticket += 1
        self.engine.submit(self._ticket, slot, indices, guard, *epoch)
        self.inflight[key] = (self._ticket, slot, len(indices))

    def _evict(self, keep: set) -> None:
        stale = [k for k in self.inflight if k not in keep] or list(self.inflight)
        ticket, slot, _ = self.inflight.pop(stale[0])
        self.engine.collect(ticket)  # drain before the slot is reused
        self.free.append(slot)
