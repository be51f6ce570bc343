"""Cache shards built on a Dask cluster: one task per shard, written by the worker that runs it.

Every shard is written atomically by :func:`~preproc.batches.cache.write_shard`, the same code
the local engine runs, so the bytes are identical. A worker that dies mid-task leaves at most a
hidden temporary file; the scheduler re-runs the task elsewhere (Dask's ``allowed-failures``).
The destination folder must be visible to every worker under the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError

if TYPE_CHECKING:
    from distributed import Client

    from .cache_build import ShardTask

__all__ = ["run_on_dask"]


def run_on_dask(tasks: Iterable[ShardTask], fn: Callable[[ShardTask], dict[str, Any]],
                scheduler: str | Client | None,
                workers: int | None) -> Iterator[tuple[ShardTask, dict[str, Any]]]:
    """Yield ``(task, sidecar)`` as the shards finish on the cluster."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise MissingDependencyError("dask.distributed", "dask", "`preproc cache --engine dask`") \
            from exc
    # distributed ships py.typed but leaves Client, LocalCluster, as_completed and close()
    # unannotated: those calls carry `type: ignore[no-untyped-call]`
    cluster = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler:
        client = Client(scheduler)  # type: ignore[no-untyped-call]
    else:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=max(1, workers or 2), threads_per_worker=1, processes=True,
            dashboard_address=None)
        client = Client(cluster)  # type: ignore[no-untyped-call]
    try:
        futures = {client.submit(fn, task, key=f"preproc-cache-{task.shard}-{task.stamp[:12]}",
                                 pure=False): task for task in tasks}
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            yield futures[future], future.result()
    finally:
        if client is not scheduler:
            client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
