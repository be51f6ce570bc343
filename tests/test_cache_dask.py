"""Cache shards built on a Dask cluster: identical bytes, a shard lost with its worker is redone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from builders import flow_config, rgb_dataset

from preproc.batches.cache_build import build_cache, write_shard
from preproc.errors import MissingDependencyError


def die_once_on_shard_1(task):
    """Kill the worker process the first time shard 1 runs, after a partial temporary write."""
    marker = Path(task.folder).parent / "died-once"
    if task.shard == 1 and not marker.exists():
        marker.write_text("1")
        (Path(task.folder) / ".shard-00001.npy.preproc-tmp-crash").write_bytes(b"half")
        os._exit(1)
    return write_shard(task)


@pytest.fixture
def cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=5)
    return flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                        validation_split=0.2)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_dask_shards_are_byte_identical_and_survive_a_dying_worker(cfg, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = build_cache(cfg, tmp_path / "local", workers=0, shard_images=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = build_cache(cfg, tmp_path / "dask", engine="dask", shard_images=3,
                             scheduler=cluster.scheduler_address, run_task=die_once_on_shard_1)
    assert (tmp_path / "died-once").exists()  # the fault really happened
    assert remote["written"] == len(local["shards"]) == 4
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")


def test_dask_engine_without_distributed_names_the_extra(cfg, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(MissingDependencyError) as info:
        build_cache(cfg, tmp_path / "c", engine="dask")
    assert info.value.extra == "dask"
