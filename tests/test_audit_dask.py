"""The Dask engine gives the same report as the local engine."""

from __future__ import annotations

import sys

import pytest
from builders import config_for, messy_dataset

from preproc.auditing import audit
from preproc.errors import MissingDependencyError


def _comparable(report) -> dict:
    doc = report.to_json()
    doc.pop("seconds")
    doc.pop("engine")
    return doc


def test_dask_cluster_report_equals_local_report(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = config_for(messy_dataset(tmp_path / "data"))
    local = audit(cfg, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = audit(cfg, engine="dask", scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            via_client = audit(cfg, engine="dask", scheduler=client, quick=True)
    assert remote.engine == "dask"
    assert _comparable(remote) == _comparable(local)
    assert _comparable(via_client) == _comparable(audit(cfg, workers=1, quick=True))
    assert "duplicate-image" in remote.codes


def test_dask_engine_without_distributed_names_the_extra(tmp_path, monkeypatch):
    root = messy_dataset(tmp_path / "data")
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError) as info:
        audit(root, engine="dask")
    assert info.value.extra == "dask"


def test_dask_image_findings_equal_local_ones(tmp_path):
    """Hashes and measures come from the Dask workers, the index runs on the client: same
    findings, same files.csv (clusters, subsets, flags) as the local engine."""
    distributed = pytest.importorskip("distributed")
    from quality_fixtures import config_text, labelled_dataset

    labelled_dataset(tmp_path / "data", n=80, seed=11)
    cfg = tmp_path / "q.yaml"
    cfg.write_text(config_text("data"), encoding="utf-8")
    local = audit(cfg, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = audit(cfg, engine="dask", scheduler=cluster.scheduler_address)
    assert _comparable(remote) == _comparable(local)
    assert list(remote.csv_rows()) == list(local.csv_rows())
    assert {"near-duplicate", "split-leakage", "label-conflict"} <= remote.codes
