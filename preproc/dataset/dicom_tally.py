"""Findings about what file headers say beyond bit depth: confounds, lossy sources, frames, splits.

:class:`DicomTally` consumes the same file records as the bit-depth tally, one at a time, and
keeps memory bounded by the number of distinct property values (and, with a per-file
``validation_split``, the patients' files), never pixels:

* ``class-confound``: a file property (photometric interpretation, modality, manufacturer,
  transfer syntax, bit depth, pixel spacing, image size, lossy) whose values split along the
  classes. A model learns such a property instead of the pathology. A bias-corrected Cramér's
  V of the property-by-class contingency table at or above :data:`CONFOUND_V` is a warning; a
  property whose every value occurs in one class only (so it separates the classes
  completely) is an error. A property with more distinct values than half its files is not
  judged: unique values separate anything and say nothing.
* ``lossy-source``: LossyImageCompression ``01`` or a lossy transfer syntax.
* ``multi-frame``: with ``source.dicom.frames: first``, every frame after the first is dropped.
* ``mixed-photometric``: with ``source.dicom.monochrome1: keep``, a class mixes MONOCHROME1 and
  MONOCHROME2, so the same tissue is bright in some files and dark in others.
* ``split-leakage``: a per-file ``validation_split`` puts files of one patient in both subsets.

Patient IDs never leave this module unhashed unless asked: :class:`PatientIds` turns them into
salted hashes that are stable within one report and cannot be joined across reports.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..findings import Finding, Location, Severity
from .records import FileRecord

#: A property's contingency table: value -> class -> files.
Table = dict[str, Counter[str | None]]
#: Where a patient's files fall: ``(class, position in class[, path])``.
Spot = tuple[Any, ...]

__all__ = ["CONFOUND_PROPERTIES", "CONFOUND_V", "DicomOptions", "DicomTally", "PatientIds"]

#: Cramér's V from which a property is reported as splitting along the classes.
CONFOUND_V = 0.5
#: ``(record attribute or derived key, how messages name it)``, in report order.
CONFOUND_PROPERTIES = (
    ("photometric", "photometric interpretation"), ("modality", "modality"),
    ("manufacturer", "manufacturer"), ("transfer_syntax", "transfer syntax"),
    ("stored_bits", "bit depth"), ("pixel_spacing", "pixel spacing"),
    ("size", "image size"), ("lossy", "lossy compression"),
)
_MAX_VALUES = 1000  # distinct values tracked per property before it is given up
_EXAMPLES = 10


@dataclass(frozen=True)
class DicomOptions:
    """What the config says that these rules depend on (read duck-typed, with defaults)."""

    monochrome1: str = "invert"
    frames: str = "first"
    validation_split: float = 0.0
    split_by: object = None
    modality_lut: bool = True
    voi: str = "none"

    @classmethod
    def from_config(cls, cfg: Any) -> DicomOptions:
        """The options of ``cfg``; a bare directory (``None``) gets the config defaults, so it
        is audited in the units a default config's pipeline receives."""
        if cfg is None:
            return cls()
        dicom = getattr(cfg.source, "dicom", None)
        batches = cfg.batches
        return cls(str(getattr(dicom, "monochrome1", "invert") or "invert"),
                   str(getattr(dicom, "frames", "first") or "first"),
                   float(getattr(batches, "validation_split", 0.0) or 0.0),
                   getattr(batches, "split_by", None),
                   bool(getattr(dicom, "modality_lut", True)),
                   str(getattr(dicom, "voi", "none") or "none"))

    def decoding(self) -> DicomOptions:
        """Only what decoding needs (``modality_lut``, ``voi``, ``monochrome1``, ``frames``):
        small and picklable, for the audit's worker processes."""
        return DicomOptions(self.monochrome1, self.frames, modality_lut=self.modality_lut,
                            voi=self.voi)


class PatientIds:
    """Salted, keyed hashes of patient IDs: ``pt-`` and 12 hex digits, or the ID when ``show``.

    The salt is drawn once per instance (one per report), so equal IDs hash equally inside a
    report while two reports cannot be joined on the hash.
    """

    def __init__(self, show: bool = False, salt: bytes | None = None) -> None:
        self.show = show
        self._salt = salt if salt is not None else os.urandom(16)

    def __call__(self, patient_id: str | None) -> str | None:
        if not patient_id or self.show:
            return patient_id or None
        digest = hashlib.blake2b(patient_id.encode("utf-8", "surrogatepass"), digest_size=6,
                                 key=self._salt)
        return "pt-" + digest.hexdigest()


@dataclass
class _Count:
    count: int = 0
    examples: list[str] = field(default_factory=list)
    found: Counter[str] = field(default_factory=Counter)

    def add(self, path: str, found: str | None = None, n: int = 1) -> None:
        self.count += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(path)
        if found is not None:
            self.found[found] += n


def property_value(rec: FileRecord, key: str) -> str | None:
    """The value of confound property ``key`` for a record, as a hashable label, or ``None``."""
    if key == "size":
        return None if rec.height is None else f"{rec.height}x{rec.width}"
    if key == "pixel_spacing":
        spacing = rec.pixel_spacing
        return None if not spacing else "x".join(f"{float(v):g}" for v in spacing)
    if key == "stored_bits":
        return None if rec.stored_bits is None else f"{rec.stored_bits}-bit"
    if key == "lossy":
        return None if rec.lossy is None else ("lossy" if rec.lossy else "lossless")
    if key == "transfer_syntax":
        return _syntax_name(rec.transfer_syntax)
    value = getattr(rec, key, None)
    return None if value in (None, "") else str(value)


@lru_cache(maxsize=256)
def _syntax_name(uid: str | None) -> str | None:
    """A transfer syntax's name (pydicom's table), for each file of a dataset: cached, as a
    dataset holds a handful of syntaxes."""
    if not uid:
        return None
    try:
        from pydicom.uid import UID

        name = UID(uid).name
        return name if name and name != uid else uid
    except ImportError:
        return uid


class DicomTally:
    """Streaming state of the header rules. Feed records with :meth:`add`, then :meth:`findings`.

    Args:
        options: the config's DICOM and split settings.
        where: how findings name the dataset.
        scope: ``''`` for a whole dataset, or e.g. ``' (sample of 64 of 900 files)'``; a
            sample judges ``split-leakage`` by repeated patients only (a warning).
        patients: the hasher of the report.
    """

    def __init__(self, options: DicomOptions, where: str, scope: str = "",
                 patients: PatientIds | None = None) -> None:
        self.options, self.where, self.scope = options, where, scope
        self.patients = patients or PatientIds()
        self.tables: dict[str, Table | None] = {key: {} for key, _ in CONFOUND_PROPERTIES}
        self.examples: dict[tuple[str, str], list[str]] = {}
        self.lossy, self.frames = _Count(), _Count()
        self.photometric: dict[str | None, dict[str, _Count]] = {}
        self.patient_files: dict[str, list[Spot]] = {}  # patient -> [(class, position in class)]
        self.class_files: Counter[str | None] = Counter()
        self.formats: set[str | None] = set()
        # patients are only remembered when a per-file split could put them on both sides
        self._watch_patients = options.validation_split > 0 and options.split_by is None

    def add(self, rec: FileRecord) -> None:
        """Account for one record, in listing order (folder entries end with ``/``)."""
        if rec.path.endswith("/"):
            return
        position = self.class_files[rec.cls]
        self.class_files[rec.cls] += 1
        if rec.dtype is None:
            return
        self.formats.add(rec.format)
        if rec.cls is not None:
            self._add_properties(rec)
        if rec.lossy:
            from ..io.dicom import LOSSY_SYNTAXES

            lossy_syntax = rec.transfer_syntax in LOSSY_SYNTAXES
            self.lossy.add(rec.path, _syntax_name(rec.transfer_syntax) if lossy_syntax
                           else "LossyImageCompression 01")
        if rec.format == "dicom" and (rec.frames or 1) > 1:
            self.frames.add(rec.path, "frames", (rec.frames or 1) - 1)
        if rec.format == "dicom" and rec.photometric in ("MONOCHROME1", "MONOCHROME2"):
            by_value = self.photometric.setdefault(rec.cls, {})
            count = by_value.get(rec.photometric)
            if count is None:
                count = by_value[rec.photometric] = _Count()
            count.add(rec.path)
        if rec.patient_id and self._watch_patients:
            spots = self.patient_files.setdefault(rec.patient_id, [])
            spots.append((rec.cls, position, rec.path) if len(spots) < 4 else (rec.cls, position))

    def _add_properties(self, rec: FileRecord) -> None:
        for key, _ in CONFOUND_PROPERTIES:
            table = self.tables.get(key)
            value = property_value(rec, key)
            if table is None or value is None:
                continue
            if value not in table and len(table) >= _MAX_VALUES:
                self.tables[key] = None  # as many values as files: nothing to learn
                continue
            counts = table.get(value)
            if counts is None:
                counts = table[value] = Counter()
            counts[rec.cls] += 1
            examples = self.examples.setdefault((key, value), [])
            if len(examples) < 3:
                examples.append(rec.path)

    def breakdown(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per property, value and class, the file counts of the DICOM files (for the report).

        ``{property: {value: {class: files}}}``; empty when no DICOM file was read.
        """
        if not any(rec_format == "dicom" for rec_format in self.formats):
            return {}
        return {key: {str(v): {str(c): n for c, n in sorted(counts.items(), key=str)}
                      for v, counts in sorted(table.items(), key=str)}
                for key, _ in CONFOUND_PROPERTIES
                if (table := self.tables.get(key))}

    def findings(self) -> list[Finding]:
        """Every finding the records support, in a stable order."""
        out: list[Finding] = []
        if not self.scope:
            out += self._confound_findings()
        out += self._lossy_finding() + self._frames_finding() + self._photometric_findings()
        return out + self._leakage_finding()

    def _finding(self, code: str, count: int, examples: list[str], message: str, hint: str,
                 key: str = "", severity: Severity | None = None,
                 data: dict[str, Any] | None = None) -> Finding:
        return Finding(code, message + self.scope, hint, severity=severity,
                       location=Location(self.where, path=key), files=tuple(examples),
                       count=count, data=data or {})

    def _confound_findings(self) -> list[Finding]:
        out: list[Finding] = []
        for key, label in CONFOUND_PROPERTIES:
            table = self.tables.get(key)
            verdict = judge_confound(table) if table else None
            if verdict is not None and table:
                out.append(self._confound(key, label, table, *verdict))
        return out

    def _confound(self, key: str, label: str, table: Table, v: float,
                  separates: bool) -> Finding:
        classes = sorted({c for counts in table.values() for c in counts}, key=str)
        totals = {c: sum(counts[c] for counts in table.values()) for c in classes}
        values = sorted(table, key=lambda val: (-sum(table[val].values()), val))
        text = "; ".join(contingency_row(val, table[val], classes, totals) for val in values)
        examples = [p for val in values for p in self.examples.get((key, val), [])][:_EXAMPLES]
        how = "separates the classes completely" if separates else "splits along the classes"
        return self._finding(
            "class-confound", sum(totals.values()), examples,
            f"{label} {how} (Cramér's V {v:.2f}): {text}",
            f"a model can learn the {label} instead of the label; balance it across classes "
            "(or harmonise the files) before training, and check where each class came from",
            severity=Severity.ERROR if separates else Severity.WARNING,
            data={"property": key, "cramers_v": round(v, 4), "separates": separates,
                  "class_totals": totals,
                  "table": {val: {c: table[val].get(c, 0) for c in classes} for val in values}})

    def _lossy_finding(self) -> list[Finding]:
        bucket = self.lossy
        if not bucket.count:
            return []
        text = ", ".join(f"{k} ({n})" for k, n in sorted(bucket.found.items(),
                                                        key=lambda kv: (-kv[1], kv[0])))
        return [self._finding(
            "lossy-source", bucket.count, bucket.examples,
            f"{bucket.count} DICOM file(s) went through lossy compression: {text}",
            "lossy artefacts can differ between sites and classes; prefer the original "
            "(lossless) studies, or check class-confound on `lossy` before training",
            data={"reasons": dict(bucket.found)})]

    def _frames_finding(self) -> list[Finding]:
        bucket = self.frames
        if not bucket.count or self.options.frames != "first":
            return []
        dropped = bucket.found["frames"]
        return [self._finding(
            "multi-frame", bucket.count, bucket.examples,
            f"{bucket.count} multi-frame DICOM file(s) give only their first frame: "
            f"{dropped} frame(s) are dropped", "set `source.dicom.frames: all` to make every "
            "frame a sample, or keep `first` knowingly", "source.dicom.frames",
            data={"files": bucket.count, "dropped_frames": dropped})]

    def _photometric_findings(self) -> list[Finding]:
        if self.options.monochrome1 != "keep":
            return []
        out: list[Finding] = []
        for cls in sorted(self.photometric, key=str):
            kinds = self.photometric[cls]
            if len(kinds) < 2:
                continue
            one, two = kinds["MONOCHROME1"], kinds["MONOCHROME2"]
            out.append(self._finding(
                "mixed-photometric", one.count + two.count, (one.examples + two.examples)[:10],
                f"class `{cls}` mixes MONOCHROME1 ({one.count}) and MONOCHROME2 ({two.count}) "
                "with source.dicom.monochrome1: keep: high values are bright in some files and "
                "dark in others", "set `source.dicom.monochrome1: invert` (the default)",
                "source.dicom.monochrome1",
                data={"class": cls, "MONOCHROME1": one.count, "MONOCHROME2": two.count}))
        return out

    def _leakage_finding(self) -> list[Finding]:
        opts = self.options
        if opts.validation_split <= 0 or opts.split_by is not None:
            return []
        if self.scope:
            leaked = {p: s for p, s in self.patient_files.items() if len(s) > 1}
            what = "have several files in the sample, and a per-file validation_split can " \
                   "put one patient in both subsets"
        else:
            leaked = self._leaked_patients()
            what = "have files in both the training and the validation subset"
        if not leaked:
            return []
        files = sum(len(s) for s in leaked.values())
        examples = [s[2] for spots in leaked.values() for s in spots if len(s) > 2][:_EXAMPLES]
        return [self._finding(
            "split-leakage", files, examples,
            f"{len(leaked)} patient(s) ({files} files) {what}",
            "split by patient: `batches.split_by: {dicom: PatientID}` keeps every patient's "
            "files in one subset", "batches.validation_split",
            severity=Severity.WARNING if self.scope else None,
            data={"patients": len(leaked), "files": files,
                  "examples": sorted(self.patients(p) or "" for p in leaked)[:_EXAMPLES]})]

    def _leaked_patients(self) -> dict[str, list[Spot]]:
        """Patients whose files fall on both sides of the Keras per-class split."""
        cut = {c: int(self.options.validation_split * n) for c, n in self.class_files.items()}
        out: dict[str, list[Spot]] = {}
        for patient, spots in self.patient_files.items():
            sides = {s[1] < cut[s[0]] for s in spots}
            if len(sides) > 1:
                out[patient] = spots
        return out


def contingency_row(value: str, counts: Counter[str | None], classes: list[str | None],
                    totals: dict[str | None, int]) -> str:
    """``'MONOCHROME1: class a 3/3, class b 0/4'``."""
    cells = ", ".join(f"class {c} {counts.get(c, 0)}/{totals[c]}" for c in classes)
    return f"{value}: {cells}"


def judge_confound(table: Table) -> tuple[float, bool] | None:
    """``(Cramér's V, separates completely)`` of a value-by-class table, or ``None`` if clean.

    Needs two classes and two values; a property with more values than half its files is not
    judged (unique values separate anything).
    """
    classes = sorted({c for counts in table.values() for c in counts}, key=str)
    n = sum(sum(counts.values()) for counts in table.values())
    if len(classes) < 2 or len(table) < 2 or len(table) > n / 2:
        return None
    totals = {c: sum(counts.get(c, 0) for counts in table.values()) for c in classes}
    chi2 = 0.0
    for counts in table.values():
        row = sum(counts.values())
        for c in classes:
            expected = row * totals[c] / n
            chi2 += (counts.get(c, 0) - expected) ** 2 / expected
    v = corrected_cramers_v(chi2, n, len(table), len(classes))
    separates = all(sum(1 for c in counts if counts[c]) == 1 for counts in table.values())
    if separates or v >= CONFOUND_V:
        return v, separates
    return None


def corrected_cramers_v(chi2: float, n: int, rows: int, cols: int) -> float:
    """Cramér's V with Bergsma's small-sample bias correction (1 for a perfect association).

    The plain V of a small table with sparse cells is large by chance alone; the correction
    subtracts the chi-square expected under independence.
    """
    if n < 2:
        return 0.0
    phi2 = max(0.0, chi2 / n - (rows - 1) * (cols - 1) / (n - 1))
    r = rows - (rows - 1) ** 2 / (n - 1)
    k = cols - (cols - 1) ** 2 / (n - 1)
    span = min(r - 1, k - 1)
    return math.sqrt(phi2 / span) if span > 0 else 0.0
