"""The parent side of an audit: consume records in file order, keep bounded state only.

:class:`Collector` spools every record to disk, feeds the rule :class:`~preproc.dataset.tally.Tally`,
merges histograms and moments into per-group :class:`~preproc.auditing.aggregate.GroupStats`, counts
the summary breakdown and keeps 8 bytes of content hash per file to find duplicates at the end.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.dicom_tally import DicomOptions, DicomTally, PatientIds
from ..dataset.records import FileRecord
from ..dataset.tally import Expectation, Tally
from ..errors import printable
from .aggregate import GroupStats, RecordSpool

if TYPE_CHECKING:
    from ..config.model import Config
    from .screen import Screen

__all__ = ["Collector", "UnitsSeen"]

#: Unread files named one by one in the summary (files.csv lists them all).
MAX_UNREAD = 200
#: A kind of file: ``(dtype, channels)``.
Kind = tuple[Any, Any]
_BREAKDOWN_FIELDS = ("class", "format", "dtype", "stored_bits", "channels", "photometric")


class Collector:
    """Streaming accumulator of one audit.

    Args:
        expect: declared source, or ``None``.
        classes: class names expected to hold images.
        where: dataset directory as shown in findings.
        options: :class:`~preproc.dataset.dicom_tally.DicomOptions` of the config.
        show_patient_ids: keep PatientID in the report instead of its salted hash.
        validation: relative paths of the batches' validation subset, or ``None``.
        quick: the records will hold headers only.
    """

    def __init__(self, expect: Expectation | None, classes: Iterable[str],
                 where: str, options: DicomOptions | None = None,
                 show_patient_ids: bool = False, validation: set[str] | None = None,
                 quick: bool = False) -> None:
        from .columns import ColumnBuilder

        classes = [printable(c) for c in classes]
        where = printable(where)
        #: how findings name the dataset
        self.where = where
        self.spool = RecordSpool()
        #: the audited config (``None`` for a bare directory), for the report's contact sheet
        self.config: Config | None = None
        #: the image screening of the spooled records, set once collection is over
        self.screen: Screen | None = None
        #: the screening's columns, built as the records arrive; the spooled records hold
        #: printable paths, so the validation paths are matched in that form
        self.columns = ColumnBuilder(
            None if validation is None else {printable(p) for p in validation}, quick)
        self.tally = Tally(expect, classes, where)
        self.patients = PatientIds(show=show_patient_ids)
        self.dicom = DicomTally(options or DicomOptions(), where, patients=self.patients)
        self.classes = list(classes)
        self.groups: dict[Kind, GroupStats] = {}
        self.breakdown: Counter[tuple[Any, ...]] = Counter()
        self.breakdown_bits: dict[tuple[Any, ...], int] = {}
        self.files: Counter[str | None] = Counter()
        self.readable: Counter[str | None] = Counter()
        self.unread: list[dict[str, Any]] = []
        #: dtypes of files whose header declares their stored bits (DICOM BitsStored, ...)
        self.declared: set[str] = set()
        #: header kind ``(dtype, channels)`` -> what its values were measured in
        self.units: dict[Kind, UnitsSeen] = {}
        self._hashes = array("Q")
        self._dup_first: dict[str, str] | None = None

    def value_group(self, kind: Kind) -> GroupStats | None:
        """The statistics group of header kind ``(dtype, channels)``: the group of the dtype its
        values were decoded to (``int16`` HU of ``uint16`` stored DICOM values)."""
        seen = self.units.get(kind)
        dtype = seen.value_dtypes.most_common(1)[0][0] if seen is not None else kind[0]
        return self.groups.get((dtype, kind[1]))

    def add(self, rec: FileRecord) -> None:
        """Account for one record (records must arrive in file order for reproducible sums)."""
        self.add_chunk([rec])

    def add_chunk(self, records: list[FileRecord]) -> None:
        """Account for records in file order, spooling them together (before counting them,
        so a counted record is always in the spool). The screening's columns take each record's
        thumbnails and window hashes first: nothing else reads them, so they are not spooled."""
        payloads = [rec.hist for rec in records]
        for rec in records:
            rec.hist = None  # transport only: not spooled
            _escape_strings(rec)
            self.columns.add(rec)
            rec.tiny = rec.crops = None
        self.spool.extend(records)
        for rec, payload in zip(records, payloads):
            self._account(rec, payload)

    def _account(self, rec: FileRecord, payload: Any) -> None:
        self.tally.add(rec)
        self.dicom.add(rec)
        self.files[rec.cls] += 1
        if not rec.ok and len(self.unread) < MAX_UNREAD:
            self.unread.append({"path": rec.path, "class": rec.cls, "code": rec.error_code,
                                "reason": rec.error, "detail": rec.detail})
        if rec.ok:
            self.readable[rec.cls] += 1
        if rec.dtype is not None:
            key = (rec.cls, rec.format, rec.dtype, rec.stored_bits, rec.channels, rec.photometric)
            self.breakdown[key] += 1
            if rec.effective_bits is not None:
                self.breakdown_bits[key] = max(self.breakdown_bits.get(key, 0), rec.effective_bits)
        if rec.stored_bits_declared and rec.dtype is not None:
            self.declared.add(rec.dtype)
        if rec.units is not None and rec.dtype is not None:
            seen = self.units.get((rec.dtype, rec.channels))
            if seen is None:
                seen = self.units[(rec.dtype, rec.channels)] = UnitsSeen()
            seen.add(rec)
        if rec.ok and rec.min is not None:
            dtype = rec.value_dtype or rec.dtype or ""  # a measured record has its dtype
            group = self.groups.get((dtype, rec.channels))
            if group is None:
                group = self.groups[(dtype, rec.channels)] = GroupStats(dtype, rec.channels or 0)
            group.add(rec, payload)
        if rec.hash is not None:
            self._hashes.append(int(rec.hash[:16], 16))

    def duplicates(self) -> dict[str, list[list[tuple[str, str | None]]]]:
        """Groups of files with identical content: ``{"groups": [[(path, cls), ...], ...]}``."""
        prefixes = np.frombuffer(self._hashes, dtype=np.uint64) if self._hashes else None
        if prefixes is None or len(prefixes) < 2:
            self._dup_first = {}
            return {"groups": []}
        ordered = np.sort(prefixes)
        repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
        groups: dict[str, list[tuple[str, str | None]]] = {}
        if repeated:
            for rec in self.spool:
                if rec.hash is not None and int(rec.hash[:16], 16) in repeated:
                    groups.setdefault(rec.hash, []).append((rec.path, rec.cls))
        found = [g for g in groups.values() if len(g) > 1]
        self._dup_first = {h: g[0][0] for h, g in groups.items() if len(g) > 1}
        return {"groups": found}

    def duplicate_of(self, rec: FileRecord) -> str:
        """Path of the first file with the same content, or ``''``."""
        if self._dup_first is None:
            self.duplicates()
        known = self._dup_first or {}
        first = known.get(rec.hash, "") if rec.hash else ""
        return "" if first == rec.path else first

    def summary(self) -> dict[str, Any]:
        """Counts for the terminal table, the JSON report and the HTML page."""
        errors: Counter[str] = Counter()
        for code, bucket in self.tally.errors.items():
            errors.update({f"{code}: {reason}": n for reason, n in bucket.found.items()})
        names = sorted(set(self.files) | set(self.classes), key=lambda c: (c is not None, c or ""))
        rows = []
        for key, count in sorted(self.breakdown.items(), key=lambda kv: _sort_key(kv[0])):
            row = dict(zip(_BREAKDOWN_FIELDS, key))
            row.update(files=count, effective_bits=self.breakdown_bits.get(key))
            rows.append(row)
        photometric: Counter[Any] = Counter()
        for key, count in self.breakdown.items():
            photometric[key[5]] += count
        return {
            "files": sum(self.files.values()),
            "readable": sum(self.readable.values()),
            "unreadable": self._count("unreadable-file"),
            "lossy": self._count("lossy-decode"),
            "classes": [{"class": c, "files": self.files[c], "readable": self.readable[c]}
                        for c in names],
            "empty_classes": [c for c in self.classes if not self.files.get(c)],
            "breakdown": rows,
            "photometric": dict(sorted(photometric.items(), key=lambda kv: str(kv[0]))),
            "errors": dict(sorted(errors.items())),
            "unread": list(self.unread),
            "dicom": self.dicom.breakdown(),
        }

    def _count(self, code: str) -> int:
        bucket = self.tally.errors.get(code)
        return bucket.count if bucket else 0


@dataclass
class UnitsSeen:
    """What the DICOM files of one header kind were measured in: the units, the dtypes of the
    decoded values, the union of the intervals their headers allow (``units_range``) and the
    observed extremes, all in those units."""

    names: Counter[str] = field(default_factory=Counter)
    value_dtypes: Counter[str] = field(default_factory=Counter)
    allowed: list[float] | None = None
    observed: list[float] | None = None

    def add(self, rec: FileRecord) -> None:
        self.names[rec.units or "stored"] += 1
        self.value_dtypes[rec.value_dtype or rec.dtype or ""] += 1
        if rec.units_range:
            self.allowed = _hull(self.allowed, rec.units_range[0], rec.units_range[1])
        if rec.ok and rec.min is not None:
            self.observed = _hull(self.observed, min(rec.min), max(rec.max or rec.min))

    @property
    def name(self) -> str:
        """The most common units (ties: alphabetical)."""
        return min(self.names, key=lambda k: (-self.names[k], k))


def _hull(pair: list[float] | None, lo: float, hi: float) -> list[float]:
    return [lo, hi] if pair is None else [min(pair[0], lo), max(pair[1], hi)]


def _escape_strings(rec: FileRecord) -> None:
    """File names, class folders and header strings may hold any byte: keep only their
    printable, escaped form in the record, which every report shows."""
    fields = vars(rec)
    texts = "".join(value for value in fields.values() if isinstance(value, str))
    if texts.isprintable() and texts.isascii():  # the common case: nothing to escape
        return
    for name, value in fields.items():
        if isinstance(value, str):
            safe = printable(value)
            if safe is not value:
                setattr(rec, name, safe)


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is not None, v if v is not None else "") if not isinstance(v, int)
                 else (True, v) for v in key)
