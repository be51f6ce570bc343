"""Dataset audit: what is really in the files, before any training.

``audit(config_or_directory)`` lists the files (:mod:`preproc.dataset.listing`), reads each one
once in worker processes or on a Dask cluster (:mod:`.engines`, :mod:`.measure`), aggregates in
bounded memory (:mod:`.collect`, :mod:`.aggregate`), turns what it saw into grouped findings
(:mod:`preproc.dataset.tally`, and the image screening of :mod:`.screen`) under the config's
``checks:`` policy, and proposes a ``source.expect`` block and a stats file (:mod:`.suggest`).
:class:`AuditReport` writes JSON, CSV and HTML (:mod:`.report`, :mod:`.html`, :mod:`.thumbs`).

Quick audits read headers only: container dtype, channels, size and the stored bit depth (PNG
IHDR/sBIT, TIFF tags, DICOM BitsAllocated/BitsStored/PixelRepresentation/Photometric).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ..io.paths import display_path
from .report import AuditReport

if TYPE_CHECKING:
    from distributed import Client
    from distributed.deploy.cluster import Cluster

    from ..config.model import Config
    from ..dataset.listing import FileList
    from ..types import StrPath
    from .collect import Collector

    #: what ``audit`` accepts: a config, a config file, a dataset directory or a mapping
    AuditTarget: TypeAlias = Config | StrPath | Mapping[str, Any]
    #: a Dask scheduler address, client or cluster
    Scheduler: TypeAlias = str | Client | Cluster

__all__ = ["AuditReport", "audit"]


def audit(
    config_or_directory: AuditTarget,
    *,
    quick: bool = False,
    engine: str = "local",
    scheduler: Scheduler | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    show_patient_ids: bool = False,
) -> AuditReport:
    """Audit every file of a dataset.

    Args:
        config_or_directory: a loaded config, a config file, or a dataset directory. A bare
            directory has no ``source.expect``, so only data-intrinsic findings are possible.
        quick: read headers only (no values, no duplicates, no stats file).
        engine: ``'local'`` (process pool over all cores) or ``'dask'``.
        scheduler: Dask scheduler address, client or cluster; ``None`` starts a local cluster.
        workers: worker processes; ``1`` runs in this process. Default: all cores, except
            for a quick local audit, which runs in this process.
        progress: called as ``progress(files_done, files_total)`` after each chunk.
        show_patient_ids: keep DICOM PatientID in files.csv and report.json; by default the
            report holds a salted hash, stable within the report (no PHI leaves the audit).

    Returns:
        The :class:`AuditReport`.

    Raises:
        PreprocError: the target does not exist, the config is invalid, the directory cannot be
            listed, or the Dask engine is requested without ``distributed`` installed.
    """
    from ..findings import Report
    from .screen import screen
    from .suggest import stats_document, suggest_expect

    started = time.perf_counter()
    if quick and engine == "local" and workers is None:
        workers = 1  # a header is cheaper to read than to ship between processes
    cfg, listing = _resolve(config_or_directory)
    collector = _collector(cfg, listing, quick, show_patient_ids)
    _collect(collector, listing, quick, engine, workers, scheduler, progress)
    duplicates = None if quick else collector.duplicates()
    findings = collector.tally.findings(duplicates) + collector.dicom.findings()
    screened = screen(collector.spool, cfg, collector.where, collector.columns,
                      collector.tally.expect, quick=quick)  # quick: sizes only
    collector.screen = screened
    findings += screened.findings
    return AuditReport(
        dataset=listing.root, where=collector.where,
        config=str(cfg.path) if cfg is not None and cfg.path is not None else None,
        quick=quick, engine=engine, summary=collector.summary(),
        groups=[collector.groups[k] for k in sorted(collector.groups, key=str)],
        report=Report.with_policy(findings, cfg.checks if cfg is not None else None),
        suggestion=suggest_expect(collector),
        stats=None if quick else stats_document(collector),
        seconds=time.perf_counter() - started, _collector=collector,
    )


def _collector(cfg: Config | None, listing: FileList, quick: bool,
               show_patient_ids: bool) -> Collector:
    """The audit's collector for ``cfg`` (``None``: a bare directory) and its listing, with the
    decode budget set."""
    from ..dataset.dicom_tally import DicomOptions
    from ..dataset.tally import Expectation
    from ..io._files import set_max_image_bytes
    from .collect import Collector
    from .columns import validation_paths

    set_max_image_bytes(cfg.source.max_image_bytes if cfg is not None else None)
    expect = Expectation.from_config(cfg.source.expect) if cfg is not None else None
    validation = None if quick else validation_paths(cfg, listing.items)
    collector = Collector(expect, listing.classes, display_path(listing.root),
                          DicomOptions.from_config(cfg), show_patient_ids, validation, quick)
    collector.tally.ignored = listing.ignored
    collector.config = cfg  # the report's contact sheet runs the config's pipeline
    return collector


def _collect(collector: Collector, listing: FileList, quick: bool, engine: str,
             workers: int | None, scheduler: Scheduler | None,
             progress: Callable[[int, int], None] | None) -> None:
    """Run the per-file work on the engine and feed every record to ``collector`` in order."""
    from .engines import default_workers, plan_chunks, run
    from ..dataset.records import FileRecord

    for rel, cls, reason, detail in listing.problems:
        collector.add(FileRecord(path=rel, cls=cls, error=reason, error_code="unreadable-file",
                                 detail=detail))
    tasks = plan_chunks(listing.root, listing.items, quick, workers or default_workers(),
                        collector.dicom.options.decoding())
    total, done = len(listing.items), 0
    for records in run(tasks, engine=engine, workers=workers, scheduler=scheduler):
        collector.add_chunk(records)
        done += len(records)
        if progress is not None:
            progress(done, total)


def _resolve(target: AuditTarget) -> tuple[Config | None, FileList]:
    """``(config or None, listing)`` for a config object, a config file or a directory."""
    from ..errors import PreprocError
    from ..dataset.listing import list_config, list_directory

    if not isinstance(target, (str, os.PathLike)):
        from ..config.model import as_config

        cfg = as_config(target)
        return cfg, list_config(cfg)
    path = Path(target)
    if path.is_dir():
        return None, list_directory(path)
    if path.is_file():
        from ..config.model import load_config

        cfg = load_config(path)
        return cfg, list_config(cfg)
    raise PreprocError(f"{target}: no such config file or directory")

