"""The result of an audit and its files: ``report.json``, ``files.csv``, ``report.html``.

``report.json`` schema, version 1 (``"schema": "preproc-audit"``; additive changes keep the
version, anything else bumps it)::

    {
      "schema": "preproc-audit", "version": 1, "preproc": "0.1.0",
      "dataset": "/abs/path", "config": "/abs/cfg.yaml" | null,
      "mode": "full" | "quick", "engine": "local" | "dask", "seconds": 1.23,
      "summary": {
        "files": int, "readable": int, "unreadable": int, "lossy": int,
        "classes": [{"class": str | null, "files": int, "readable": int}],
        "empty_classes": [str],
        "breakdown": [{"class", "format", "dtype", "stored_bits", "channels", "photometric",
                       "files", "effective_bits"}],          # one row per distinct combination
        "photometric": {name: files}, "errors": {"code: reason": files},
        "unread": [{"path", "class", "code", "reason", "detail"}],  # the first 200
        "dicom": {property: {value: {class: files}}}   # {} without DICOM files
      },
      "groups": [{"dtype", "channels", "files", "pixels_per_channel", "min": [C], "max": [C],
                  "mean": [C], "std": [C],
                  "histogram": {"edges": [B + 1], "counts": [[B] per channel]} | null}],
      "findings": [Finding.to_json(), ...],  # the check report shape, plus "count" and "data"
      "failed": bool, "fail_on": "error" | "warning" | "info",
      "suggested_source": {"expect": {...}, "notes": {...}, "others": int} | null,
      "stats": {see preproc.auditing.suggest} | null,
      "not_computed": {code: what it looks for},  # a quick audit: findings that need pixels
      "files": [FileRecord.to_json(), ...]   # omitted by ``to_json(files=False)``
    }

``files.csv`` has one row per file with the columns in :data:`CSV_COLUMNS`. Per-channel values
(``mean`` ... ``frac_at_max``) are joined with ``;``; ``min`` and ``max`` are over all channels;
``error`` is empty when the file was read. The image measures (``phash`` ... ``flags``) are
described in :mod:`preproc.auditing.quality` and :mod:`preproc.auditing.screen`; ``flags`` lists the
image findings that name the file. The DICOM columns (``modality`` ... ``patient_id``) come from
headers and are empty for other formats; ``patient_id`` is a salted hash, stable within one
report, unless the audit ran with ``show_patient_ids``. ``units`` says what ``min`` ...
``frac_at_max`` of a grayscale DICOM file are in (``HU``, ``modality``, ``voi``, ``stored``: as
``source.dicom`` decodes them for the pipeline), ``value_dtype`` the decoded dtype where it is not
``dtype`` (the stored container), ``units_range`` the interval its header allows in those units.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..io.atomic import atomic_write
from ..findings import Finding, Report
from ..spec import format_number

if TYPE_CHECKING:
    from ..dataset.records import FileRecord
    from ..types import StrPath
    from .aggregate import GroupStats
    from .collect import Collector

__all__ = ["CSV_COLUMNS", "SCHEMA", "SCHEMA_VERSION", "AuditReport"]

SCHEMA = "preproc-audit"
SCHEMA_VERSION = 1

CSV_COLUMNS = (
    "path", "class", "format", "dtype", "channels", "height", "width", "frames", "stored_bits",
    "effective_bits", "min", "max", "mean", "std", "p0_5", "p99_5", "frac_at_min", "frac_at_max",
    "photometric", "signed", "hash", "duplicate_of", "error_code", "error", "detail",
    "phash", "blur", "brightness", "entropy", "aspect_ratio", "grayscale", "subset", "cluster",
    "flags",
    "modality", "manufacturer", "transfer_syntax", "lossy", "slope", "intercept",
    "window_center", "window_width", "pixel_spacing", "patient_id",
    "units", "value_dtype", "units_range",
)


@dataclass
class AuditReport:
    """Everything an audit found. Per-file records live on disk; iterate :meth:`records`.

    Attributes:
        dataset: absolute dataset root.
        where: the dataset as findings name it.
        config: config file, or ``None`` for a bare directory.
        quick: headers only.
        engine: engine that ran the per-file work.
        summary: counts (see the module docstring).
        groups: aggregated statistics per ``(dtype, channels)``.
        report: findings with the ``checks:`` policy applied.
        suggestion: suggested ``source.expect`` (see :mod:`preproc.auditing.suggest`).
        stats: stats-file document, or ``None`` (quick audits, nothing readable).
        seconds: wall time of the audit.
    """

    dataset: str
    where: str
    config: str | None
    quick: bool
    engine: str
    summary: dict[str, Any]
    groups: list[GroupStats]
    report: Report
    suggestion: dict[str, Any] | None
    stats: dict[str, Any] | None
    seconds: float = 0.0
    #: the audit's collector: the record spool, duplicates, patient ids and screening
    _collector: Collector = field(kw_only=True, repr=False)

    @property
    def findings(self) -> list[Finding]:
        return self.report.findings

    @property
    def not_computed(self) -> dict[str, str]:
        """Findings this audit did not look for (a quick audit reads headers only)."""
        from .screen import QUICK_SKIPS

        return dict(QUICK_SKIPS) if self.quick else {}

    @property
    def codes(self) -> set[str]:
        return self.report.codes

    @property
    def failed(self) -> bool:
        return self.report.failed

    def exit_code(self) -> int:
        """1 when a finding is at or above ``fail_on``, else 0."""
        return self.report.exit_code()

    def records(self) -> Iterator[FileRecord]:
        """Every :class:`~preproc.dataset.records.FileRecord`, in file order."""
        return iter(self._collector.spool)

    def suggested_yaml(self) -> str | None:
        from .suggest import expect_yaml

        return expect_yaml(self.suggestion) if self.suggestion else None

    def to_json(self, files: bool = True) -> dict[str, Any]:
        """The ``report.json`` document; ``files=False`` leaves out the per-file list."""
        from .._version import __version__

        out: dict[str, Any] = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "preproc": __version__,
            "dataset": self.dataset, "config": self.config,
            "mode": "quick" if self.quick else "full", "engine": self.engine,
            "seconds": round(self.seconds, 3), "summary": self.summary,
            "groups": [g.to_json() for g in self.groups],
            **{k: v for k, v in self.report.to_json().items() if k != "trace"},
            "suggested_source": self.suggestion, "stats": self.stats,
            "not_computed": self.not_computed,
        }
        if files:
            out["files"] = [self._file_json(r) for r in self.records()]
        doc: dict[str, Any] = _jsonable(out)
        return doc

    def _file_json(self, rec: FileRecord) -> dict[str, Any]:
        row = rec.to_json()
        row["duplicate_of"] = self._collector.duplicate_of(rec) or None
        row["patient_id"] = self._collector.patients(rec.patient_id)
        return row

    def csv_rows(self) -> Iterator[dict[str, str]]:
        """One ``files.csv`` row per file."""
        screen = self._collector.screen
        for i, rec in enumerate(self.records()):
            row = _csv_row(rec, self._collector.duplicate_of(rec))
            row.update(screen.csv_fields(i, rec) if screen is not None else {})
            row["patient_id"] = self._collector.patients(rec.patient_id) or ""
            yield row

    def write(self, directory: StrPath) -> dict[str, Path]:
        """Write ``report.json``, ``files.csv`` and ``report.html`` atomically into ``directory``."""
        from .html import render_html

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "csv": out / "files.csv",
                 "html": out / "report.html"}
        atomic_write(paths["json"], self._write_json)
        atomic_write(paths["csv"], self._write_csv)
        atomic_write(paths["html"], lambda f: f.write(render_html(self)))
        return paths

    def write_stats(self, path: StrPath) -> Path:
        """Write the stats file (see :mod:`preproc.auditing.suggest`) atomically."""
        from ..errors import PreprocError

        if self.stats is None:
            raise PreprocError("no statistics to write: the audit decoded no readable file "
                               "(a --quick audit reads headers only)")
        _refuse_to_overwrite(Path(path))
        atomic_write(Path(path), lambda f: json.dump(_jsonable(self.stats), f, indent=1))
        return Path(path)

    def _write_json(self, handle: TextIO) -> None:
        """``to_json()`` streamed: the per-file list comes from the spool one record at a time."""
        head = json.dumps(self.to_json(files=False), indent=1, allow_nan=False)
        handle.write(head[: head.rindex("}")].rstrip() + ',\n "files": [')
        for i, rec in enumerate(self.records()):
            row = json.dumps(_jsonable(self._file_json(rec)), allow_nan=False)
            handle.write(("," if i else "") + "\n  " + row)
        handle.write("\n ]\n}\n")

    def _write_csv(self, handle: TextIO) -> None:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.csv_rows())

    def close(self) -> None:
        """Delete the on-disk record spool (also happens when the report is garbage collected)."""
        self._collector.spool.close()


def _csv_row(rec: FileRecord, duplicate_of: str) -> dict[str, str]:
    def joined(values: Iterable[float] | None) -> str:
        return "" if values is None else ";".join(format_number(v) for v in values)

    return {
        "path": rec.path, "class": rec.cls or "", "format": rec.format or "",
        "dtype": rec.dtype or "", "channels": _opt(rec.channels), "height": _opt(rec.height),
        "width": _opt(rec.width), "frames": _opt(rec.frames),
        "stored_bits": _opt(rec.stored_bits), "effective_bits": _opt(rec.effective_bits),
        "min": "" if rec.min is None else format_number(min(rec.min)),
        "max": "" if rec.max is None else format_number(max(rec.max)),
        "mean": joined(rec.mean), "std": joined(rec.std), "p0_5": joined(rec.p_low),
        "p99_5": joined(rec.p_high), "frac_at_min": joined(rec.frac_min),
        "frac_at_max": joined(rec.frac_max), "photometric": rec.photometric or "",
        "signed": "" if rec.signed is None else str(bool(rec.signed)).lower(),
        "hash": rec.hash or "", "duplicate_of": duplicate_of, "error_code": rec.error_code or "",
        "error": rec.error, "detail": rec.detail, **_dicom_cells(rec),
    }


def _dicom_cells(rec: FileRecord) -> dict[str, str]:
    """The DICOM header columns (empty for other formats); ``patient_id`` is filled by the
    report, which owns the hashing."""
    def number(x: float | None) -> str:
        return "" if x is None else format_number(x)

    return {
        "modality": rec.modality or "", "manufacturer": rec.manufacturer or "",
        "transfer_syntax": rec.transfer_syntax or "",
        "lossy": "" if rec.lossy is None else str(bool(rec.lossy)).lower(),
        "slope": number(rec.slope), "intercept": number(rec.intercept),
        "window_center": number(rec.window_center), "window_width": number(rec.window_width),
        "pixel_spacing": ";".join(format_number(v) for v in rec.pixel_spacing or ()),
        "patient_id": "", "units": rec.units or "", "value_dtype": rec.value_dtype or "",
        "units_range": ";".join(format_number(v) for v in rec.units_range or ()),
    }


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _jsonable(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k) if k is not None else "null": _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj




def check_stats_target(path: StrPath) -> None:
    """Raise before any work when ``--stats FILE`` would overwrite something else."""
    _refuse_to_overwrite(Path(path))


def _refuse_to_overwrite(path: Path) -> None:
    """``--stats FILE`` replaces an earlier stats file, never anything else (an image, a
    config, a device)."""
    from ..errors import PreprocError, printable
    from ..io.smallfile import read_capped
    from .suggest import STATS_FORMAT

    if not os.path.lexists(path):
        return
    try:
        doc = json.loads(read_capped(path, 64 << 20))
        ours = isinstance(doc, dict) and doc.get("format") == STATS_FORMAT
    except (OSError, ValueError, RecursionError):
        ours = False
    if not ours:
        raise PreprocError(f"{printable(path)} exists and is not a preproc stats file; refusing "
                           "to overwrite it: choose another --stats path or remove the file")
