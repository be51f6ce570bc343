"""Where the per-file work runs: in-process, a local process pool, or a Dask cluster.

Every engine takes the same chunks (:data:`preproc.dataset.records.Task`) and yields their results
**in chunk order**, so the aggregation, and therefore the report, is identical whichever engine
ran. Workers never raise for bad files; a worker that dies (a decoder crash) costs only its files,
which are retried one by one and, if they crash again, recorded as ``decoder-crash``.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from typing import Any

from ..dataset.records import FileRecord
from .measure import Task, process_chunk

__all__ = ["ENGINES", "default_workers", "plan_chunks", "run"]

ENGINES = ("local", "dask")

#: One file of a chunk: ``(path relative to the root, class or None)``.
Item = tuple[str, "str | None"]


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_chunks(root: str, items: list[Item], quick: bool, workers: int,
                dicom: Any = None) -> list[Task]:
    """Split ``items`` into tasks, in order: about four per worker, capped so progress stays
    lively, and shrinking towards the end (each at most a quarter of what is left per worker),
    so the workers finish together instead of one waiting on the other's last large chunk.
    ``dicom``: the DICOM decoding options every task carries (see :data:`Task`)."""
    cap = 512 if quick else 32
    size = max(1, min(cap, math.ceil(len(items) / max(1, workers * 4))))
    tasks, start = [], 0
    while start < len(items):
        left = len(items) - start
        step = max(min(size, math.ceil(left / max(1, workers * 4))), min(size, MIN_CHUNK))
        tasks.append((root, items[start:start + step], quick, dicom))
        start += step
    return tasks


#: The smallest task near the end of an audit: smaller ones cost more in messages than they
#: save in waiting.
MIN_CHUNK = 4


def run(tasks: list[Task], *, engine: str = "local", workers: int | None = None,
        scheduler: Any = None) -> Iterator[list[FileRecord]]:
    """Yield each task's records, in task order.

    Args:
        tasks: chunks from :func:`plan_chunks`.
        engine: ``'local'`` (process pool; in-process when ``workers == 1``) or ``'dask'``.
        workers: local processes (default: all cores) or Dask workers of a cluster started here.
        scheduler: Dask only: a scheduler address, a ``distributed.Client`` or a cluster object;
            ``None`` starts a local cluster for the duration of the audit.
    """
    if engine == "dask":
        return _dask(tasks, workers, scheduler)
    if engine != "local":
        from ..errors import PreprocError

        raise PreprocError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    workers = workers or default_workers()
    if workers == 1 or len(tasks) <= 1:
        return (process_chunk(task) for task in tasks)
    return _local(tasks, workers)


def _local(tasks: list[Task], workers: int) -> Iterator[list[FileRecord]]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    done = 0
    while done < len(tasks):
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks) - done)) as pool:
            # a deque, so a consumed result is not kept alive until the end of the audit
            futures = deque(pool.submit(process_chunk, t) for t in tasks[done:])
            try:
                while futures:
                    result = futures[0].result()
                    futures.popleft()
                    yield result
                    done += 1
            except BrokenProcessPool:
                for future in futures:
                    future.cancel()
        if done < len(tasks):  # the pool died while this chunk was pending: isolate it
            yield _isolate(tasks[done])
            done += 1


def _isolate(task: Task) -> list[FileRecord]:
    """Process a chunk file by file, each in a fresh process; a crash costs one file only."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    out = []
    for item in task[1]:
        try:
            with ProcessPoolExecutor(max_workers=1) as pool:
                out += pool.submit(process_chunk, (task[0], [item], *task[2:])).result()
        except BrokenProcessPool:
            out.append(crashed(item))
    return out


def crashed(item: Item) -> FileRecord:
    """Record of a file whose decoder killed its worker process."""
    rel, cls = item
    return FileRecord(path=rel, cls=cls, error="decoder-crash", error_code="unreadable-file",
                      detail="the decoder crashed the worker process reading this file")


def _dask(tasks: list[Task], workers: int | None, scheduler: Any) -> Iterator[list[FileRecord]]:
    client, owned = _dask_client(workers, scheduler)
    try:
        from distributed import KilledWorker

        futures = deque(zip(tasks, client.map(process_chunk, tasks, pure=False)))
        while futures:
            task, future = futures.popleft()
            try:
                result = future.result()
            except KilledWorker:
                result = [crashed(item) for item in task[1]]
            future.release()
            yield result
    finally:
        for thing in reversed(owned):
            thing.close()


def _dask_client(workers: int | None, scheduler: Any) -> tuple[Any, list[Any]]:
    """A ``distributed.Client`` for ``scheduler``, and what this audit must close afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("dask", "dask", "the Dask engine (--engine dask)") from exc
    if isinstance(scheduler, Client):
        return scheduler, []
    # distributed ships no type information for these constructors
    if scheduler is not None:  # an address or a cluster object
        client = Client(scheduler)  # type: ignore[no-untyped-call]
        return client, [client]
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
        dashboard_address=None)
    client = Client(cluster)  # type: ignore[no-untyped-call]
    return client, [cluster, client]
