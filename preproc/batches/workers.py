"""Where the pixels are made: one image job, run in-process or by a pool of worker processes.

:class:`ImageJob` turns a file index into the final array: decode (lossless), colour
conversion and resize (:mod:`preproc.io.imaging`), then the stages one by one, measuring each
stage's output min and max when the runtime guard asks for it.

:class:`ProcessEngine` runs jobs in forked worker processes. Each worker pulls tasks (a few
consecutive images of one batch) from one shared queue (so the load balances) and writes each
image straight into a batch slot of an anonymous shared-memory ring mapped before the fork; only
a small status message per task travels back through a pipe. The parent copies a finished slot
out once, so the batch it hands over owns its memory. Results land at their position in the
batch, so the order never depends on which worker did what. :class:`InlineEngine` does the same work in the caller's
process (``workers: 0``).
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import selectors
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.queues import SimpleQueue
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
from PIL import Image

from ..io import imaging
from ..errors import PreprocError, WorkerError
from ..io import read
from ..io.frames import split_frame
from ..stages.augment_draw import stage_rng
from ..stages.base import RunContext
from ..types import Array

if TYPE_CHECKING:
    from ..spec import ValueSpec
    from ..stages.base import Stage

__all__ = ["DRAFT_REDUCING_GAP", "ImageJob", "InlineEngine", "ProcessEngine", "Result", "WorkerError"]

#: With ``jpeg_draft``, the resize after the DCT-domain downscale first reduces by whole factors
#: (Pillow's ``reducing_gap``): e.g. a 500 px wide draft becomes 250 px by averaging pixel pairs,
#: then 224 px by the chosen filter, over the region of the source's pixels
#: (:func:`preproc.io.imaging.draft_box`). 1.0 is Pillow's fastest setting; on 1,000 px
#: photos resized to 224 (bilinear) the result is 40-50 dB PSNR from the exact decode-and-resize.
DRAFT_REDUCING_GAP = 1.0

#: ``(min, max, has_nan)`` of an image after one stage
Stat: TypeAlias = tuple[float, float, bool]
#: what a worker pulls: ``(ticket, slot, first position, file indices, guard, epoch)``: a run of
#: consecutive images of one batch, answered by one message
Task: TypeAlias = tuple[int, int, int, "list[int]", bool, int]
#: what a worker answers per task: ``(ticket, [(position, result or None), ...])``; ``None``
#: stands for a plain success (stored in the slot, no statistics), the common case
Reply: TypeAlias = tuple[int, "list[tuple[int, Result | None]]"]
#: file indices of one batch, in batch order
Indices: TypeAlias = "Sequence[int] | Array"
#: a batch as the window knows it: ``(epoch, batch index)``
BatchKey: TypeAlias = tuple[int, int]
T = TypeVar("T")


@dataclass
class Result:
    """What one image produced: ``status`` is ``'ok'`` or ``'error'`` (then ``error`` is set)."""

    status: str
    stats: list[Stat] | None = None
    error: BaseException | None = None
    array: Array | None = None


@dataclass
class ImageJob:
    """Everything a worker needs to turn file ``i`` into its final array.

    Attributes:
        paths: every file of the listing, indexed by the tasks.
        color_mode: ``'grayscale'``, ``'rgb'`` or ``'rgba'``.
        target: ``(height, width)``.
        interpolation: a key of :data:`preproc.io.imaging.INTERPOLATIONS`.
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
        jpeg_draft: let the JPEG decoder downscale by 1/2, 1/4 or 1/8 to the smallest size
            still at least the target, then resize with :data:`DRAFT_REDUCING_GAP` (faster, not
            Keras-identical).
    """

    paths: list[str]
    color_mode: str
    target: tuple[int, int]
    interpolation: str
    keep_aspect_ratio: bool
    stages: list[Stage]
    specs: list[ValueSpec] = field(default_factory=list)
    bit_depth: int | None = None
    run_stages: bool = True
    dicom: object | None = None
    seed: int = 0
    subset: str | None = None
    jpeg_draft: bool = False

    def load(self, i: int) -> np.ndarray:
        """Decode file ``i``, convert its colour mode and resize it; container dtype kept."""
        path, options = self.paths[i], self._read_options()
        if getattr(self.dicom, "frames", None) == "all":
            path, options["frame"] = split_frame(path)
        pixels, info = read(path, "pillow-or-array", **options)
        if isinstance(pixels, Image.Image):  # 8-bit pixels Pillow holds as is: no NumPy trip
            drafted = self.jpeg_draft and info.format == "jpeg"
            scale = info.extra.get("draft_scale")
            return imaging.prepare_pil(pixels, self.color_mode, self.target, self.interpolation,
                                       self.keep_aspect_ratio,
                                       reducing_gap=DRAFT_REDUCING_GAP if drafted else None,
                                       draft=(scale, (info.width, info.height)) if scale else None)
        return imaging.prepare(pixels, self.color_mode, self.target, self.interpolation,
                               self.keep_aspect_ratio, self.bit_depth or info.stored_bits)

    def _read_options(self) -> dict[str, Any]:
        """The reader options this job sets (``read`` checks the names of those it is given)."""
        options: dict[str, Any] = {}
        if self.dicom is not None:
            options["dicom"] = self.dicom
        if self.jpeg_draft:
            options["draft"] = (self.target[1], self.target[0])
        return options

    def run(self, i: int, guard: bool = False, epoch: int = 0) -> tuple[Array, list[Stat] | None]:
        """Load file ``i`` and apply every stage (unless ``run_stages`` is off) for ``epoch``.

        Returns:
            The array and, with ``guard`` and stages run, ``[(min, max, has_nan), ...]`` after
            each stage.
        """
        x = self.load(i)
        if not self.run_stages:
            return x, None
        stats: list[Stat] | None = [] if guard else None
        for k, stage in enumerate(self.stages):
            spec = self.specs[k] if self.specs else None
            rng = stage_rng(self.seed, epoch, i, stage.index) if stage.traits().random else None
            x = stage(x, RunContext(spec=spec, subset=self.subset, epoch=epoch, index=i,
                                    file=self.paths[i], rng=rng))
            if stats is not None:
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

    def run_batch(self, indices: Indices, guard: bool, out: Array, epoch: int = 0) -> list[Result]:
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


def _store(out: Array, pos: int, res: Result, path: str) -> Result:
    """Write ``res.array`` into ``out[pos]`` when its dtype fits without loss.

    An array of another dtype (a 16-bit file in an 8-bit dataset) stays in the result and
    travels back whole; the parent widens the batch for it. A shape that differs is an error.
    """
    arr = res.array
    if arr is None:
        return res
    if arr.shape != out.shape[1:]:
        msg = f"produced an image of shape {arr.shape}, the batch holds {out.shape[1:]}"
        return Result("error", error=PreprocError(f"{path}: {msg}"))
    if np.can_cast(arr.dtype, out.dtype, "safe"):
        out[pos] = arr
        res.array = None
    return res


class ProcessEngine:
    """A pool of forked workers writing into a shared ring of batch slots.

    A worker that dies (any signal, any exit) or keeps one image longer than ``timeout`` seconds
    ends the wait with a :class:`WorkerError` naming it, its exit signal and its batch; the
    engine is then broken and :meth:`close` kills what is left. Workers watch their parent and
    exit when it dies, so no worker outlives the process that started it.

    Args:
        job: the image job (inherited by the workers through ``fork``).
        workers: number of processes (at least 1).
        n_slots: batches that can be in flight at once.
        batch_shape: ``(batch_size, H, W, C)`` of one slot.
        dtype: dtype of the batch.
        timeout: seconds a worker may spend on one image (or the pool without any result).
    """

    def __init__(self, job: ImageJob, workers: int, n_slots: int, batch_shape: tuple[int, ...],
                 dtype: np.typing.DTypeLike, timeout: float = 60.0) -> None:
        self.job = job
        self.n_slots = n_slots
        self.dtype = np.dtype(dtype)
        self.timeout = float(timeout)
        nbytes = max(1, int(np.prod(batch_shape)) * self.dtype.itemsize * n_slots)
        self._mem = mmap.mmap(-1, nbytes)  # anonymous and MAP_SHARED: visible to forked children
        self.slots = np.frombuffer(self._mem, self.dtype, count=int(np.prod(batch_shape)) * n_slots)
        self.slots = self.slots.reshape((n_slots,) + tuple(batch_shape))
        # per worker: ticket being computed (-1 idle), position, file index, start time
        self._progress_mem = mmap.mmap(-1, max(1, workers) * 4 * 8)
        self.progress = np.frombuffer(self._progress_mem, np.float64).reshape(max(1, workers), 4)
        self.progress[:, 0] = -1
        ctx = mp.get_context("fork")
        self._tasks = ctx.SimpleQueue()
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        main = threading.current_thread() is threading.main_thread()
        parent = os.getpid()
        for k in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main,
                               args=(job, self._tasks, writer, self.slots, k, self.progress,
                                     parent, main),
                               daemon=True)
            proc.start()
            writer.close()
            self._conns.append(reader)
            self._procs.append(proc)
        self._pending: dict[int, dict[int, Result]] = {}
        self._expected: dict[int, int] = {}
        self._labels: dict[int, BatchKey | None] = {}
        self._broken: WorkerError | None = None
        self._last_result = time.monotonic()
        self._waiting = -1
        self._state = {"broken": False}
        self._sel: selectors.BaseSelector | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._tasks, self._state)

    def submit(self, ticket: int, slot: int, indices: Indices, guard: bool, epoch: int = 0,
               label: BatchKey | None = None) -> None:
        """Queue the images ``indices`` of ``epoch`` for slot ``slot`` under ``ticket``
        (``label``: the batch, for messages)."""
        if self._broken is not None:
            raise self._broken
        self._pending[ticket] = {}
        self._expected[ticket] = len(indices)
        self._labels[ticket] = label
        flat = [int(idx) for idx in indices]
        size = chunk_size(len(flat), len(self._procs))
        for start in range(0, len(flat), size):
            self._tasks.put((ticket, slot, start, flat[start:start + size], guard, epoch))

    def collect(self, ticket: int) -> list[Result]:
        """Block until every image of ``ticket`` is done; return its results by position.

        Raises:
            WorkerError: a worker died or made no progress for ``timeout`` seconds.
        """
        if len(self._pending[ticket]) < self._expected[ticket]:
            self._last_result = time.monotonic()
        while len(self._pending[ticket]) < self._expected[ticket]:
            if self._broken is not None:
                raise self._broken
            try:
                self._waiting = ticket
                self._receive()
            except WorkerError as exc:
                self._broken = exc
                self._state["broken"] = True
                raise
        results = self._pending.pop(ticket)
        del self._expected[ticket]
        self._labels.pop(ticket, None)
        return [results[pos] for pos in range(len(results))]

    def _selector(self) -> selectors.BaseSelector:
        """Result pipes and process sentinels, registered once: a wait per result stays cheap."""
        if self._sel is None:
            self._sel = selectors.DefaultSelector()
            for k, (conn, proc) in enumerate(zip(self._conns, self._procs)):
                self._sel.register(conn.fileno(), selectors.EVENT_READ, ("conn", k))
                self._sel.register(proc.sentinel, selectors.EVENT_READ, ("dead", k))
        return self._sel

    def _receive(self) -> None:
        ticket = self._waiting
        sel = self._selector()
        ready = sel.select(timeout=min(1.0, self.timeout))
        dead = []
        for key, _ in ready:
            what, k = key.data
            conn = self._conns[k]
            if what == "dead":
                dead.append(k)
            elif self._read(conn):
                while not conn.closed and conn.poll() and self._read(conn):
                    pass  # every message already there, without another wait
                self._last_result = time.monotonic()
            if conn.closed and what == "conn":
                sel.unregister(key.fd)  # EOF: the worker is gone; its sentinel says how
        if dead:
            for k in dead:  # results it sent before dying still count
                self._drain(k)
            raise self._died(dead[0], ticket)
        if not ready:
            self._check_stall(ticket)

    def _read(self, conn: Connection) -> bool:
        try:
            reply: Reply = conn.recv()
        except (EOFError, OSError):
            conn.close()  # the worker is gone; its sentinel says how
            return False
        ticket, done = reply
        pending = self._pending.get(ticket)
        if pending is not None:
            for pos, res in done:
                pending[pos] = res if res is not None else Result("ok")
        return True

    def _drain(self, k: int) -> None:
        conn = self._conns[k]
        while not conn.closed and conn.poll():
            self._read(conn)

    def _batch_of(self, k: int | None, ticket: int) -> int | None:
        busy = int(self.progress[k, 0]) if k is not None else -1
        label = self._labels.get(busy, self._labels.get(ticket))
        return label[-1] if label is not None else None

    def _died(self, k: int, ticket: int) -> WorkerError:
        proc = self._procs[k]
        proc.join(timeout=1)
        code = proc.exitcode
        sig = _signal_name(-code) if code is not None and code < 0 else None
        batch = self._batch_of(k, ticket)
        how = f"was killed by {sig}" if sig else f"exited with code {code}"
        where = f" while computing batch {batch}" if batch is not None else ""
        return WorkerError(
            f"worker {k} (pid {proc.pid}) {how}{where}; the batches in flight are lost. "
            "Close the iterator and start a new one; if it recurs, look for a file that exhausts "
            "memory (the kernel's OOM killer sends SIGKILL) or lower batches.workers",
            worker=k, pid=proc.pid, signal=sig, exitcode=code, batch=batch)

    def _check_stall(self, ticket: int) -> None:
        now = time.monotonic()
        busy = [(now - self.progress[k, 3], k) for k in range(len(self._procs))
                if self.progress[k, 0] >= 0]
        slow = [(age, k) for age, k in busy if age > self.timeout]
        if slow or now - self._last_result > self.timeout + 1.0:
            k = max(slow)[1] if slow else None
            batch = self._batch_of(k, ticket)
            pid = self._procs[k].pid if k is not None else None
            who = f"worker {k} (pid {pid})" if k is not None else "no worker"
            what = (f"{who} made no progress for {self.timeout:g} s"
                    + (f" on {self.job.paths[int(self.progress[k, 2])]}" if k is not None else ""))
            raise WorkerError(
                f"{what} while computing batch {batch}; raise batches.worker_timeout if one image "
                "legitimately takes longer", worker=k, pid=pid, signal=None, batch=batch)

    def close(self) -> None:
        """Stop the workers; idempotent. A broken pool is killed, not asked to stop."""
        self._finalizer()
        if self._sel is not None:
            self._sel.close()
            self._sel = None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _shutdown(procs: list[mp.process.BaseProcess], tasks: SimpleQueue[Task | None],
              state: dict[str, bool] | None = None) -> None:
    if not (state or {}).get("broken"):
        for proc in procs:
            if proc.is_alive():
                try:
                    tasks.put(None)
                except (OSError, ValueError):
                    break
        for proc in procs:
            proc.join(timeout=2)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    for proc in procs:
        proc.join(timeout=1)


def _watch_parent(parent: int, main_thread: bool) -> None:
    """Make this worker exit when ``parent`` dies: a parent-death signal on Linux (when the
    parent forked from its main thread, whose exit would otherwise fire it) and, everywhere, a
    thread that checks the parent pid every half second."""
    if main_thread and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="preproc-parent-watch", daemon=True).start()


def _worker_main(job: ImageJob, tasks: SimpleQueue[Task | None], conn: Connection, slots: Array,
                 k: int = 0, progress: Array | None = None, parent: int | None = None,
                 main_thread: bool = True) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if parent is not None:
        _watch_parent(parent, main_thread)
    while True:
        task = tasks.get()
        if task is None:
            break
        ticket, slot, start, indices, guard, epoch = task
        done = [(start + j, _run_task(job, slots[slot], k, progress, ticket, start + j, idx,
                                      guard, epoch))
                for j, idx in enumerate(indices)]
        try:
            conn.send((ticket, done))
        except (BrokenPipeError, OSError):
            break


def _run_task(job: ImageJob, out: Array, k: int, progress: Array | None, ticket: int, pos: int,
              idx: int, guard: bool, epoch: int) -> Result | None:
    """Image ``idx`` into ``out[pos]``; ``None`` for a plain success (nothing to send back)."""
    if progress is not None:
        progress[k] = (ticket, pos, idx, time.monotonic())
    try:
        res = run_one(job, idx, guard, epoch)
        if res.status == "ok":
            res = _store(out, pos, res, job.paths[idx])
    except Exception:  # noqa: BLE001 - a bug: ship the traceback, the parent raises it
        res = Result("error", error=WorkerError(
            f"{job.paths[idx]}: unexpected failure in a worker:\n{traceback.format_exc()}",
            worker=k))
    if progress is not None:
        progress[k, 0] = -1
    plain = res.status == "ok" and res.stats is None and res.array is None
    return None if plain else res


def chunk_size(n: int, workers: int) -> int:
    """Images per task for a batch of ``n``: about four tasks per worker, so the load still
    balances while the queue and the result pipe carry a message per run, not per image."""
    return max(1, -(-n // (4 * max(1, workers))))


class Window:
    """Batches in flight on a :class:`ProcessEngine`, keyed by ``(epoch, batch)``.

    ``fetch`` submits the wanted batch if needed, fills free slots with the batches expected
    next, waits for the wanted one and copies it out of its slot. A slot is reused only after
    every result of its previous batch arrived, so a late worker never writes into a reused slot.
    """

    def __init__(self, engine: ProcessEngine, n_slots: int) -> None:
        self.engine = engine
        self.free = list(range(n_slots))
        self.inflight: dict[BatchKey, tuple[int, int, int]] = {}
        #: slots whose wait was interrupted: workers may still write into them
        self.draining: dict[int, int] = {}
        self._ticket = 0

    def fetch(self, key: BatchKey, ahead: list[BatchKey],
              task: Callable[[BatchKey], tuple[Any, ...]],
              finish: Callable[[Array, list[Result]], T]) -> T:
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

    def _submit(self, key: BatchKey, task: Callable[[BatchKey], tuple[Any, ...]],
                keep: set[BatchKey]) -> None:
        if self.draining:
            self._drain()
        if not self.free:
            self._evict(keep)
        indices, guard, *rest = task(key)
        epoch = int(rest[0]) if rest else 0
        slot = self.free.pop()
        self._ticket += 1
        self.engine.submit(self._ticket, slot, indices, guard, epoch, label=key)
        self.inflight[key] = (self._ticket, slot, len(indices))

    def _evict(self, keep: set[BatchKey]) -> None:
        stale = [k for k in self.inflight if k not in keep] or list(self.inflight)
        ticket, slot, _ = self.inflight.pop(stale[0])
        self.engine.collect(ticket)  # drain before the slot is reused
        self.free.append(slot)
