"""Findings: what a check or an audit reports. Data, never exceptions, never pixels.

Every finding has a stable ``code`` (see :data:`CODES`), a severity, a message, a hint that would
fix it and a location: the stage and YAML line for pipeline findings, example files for data
findings. A :class:`Report` collects findings and applies the config's ``checks:`` policy.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = ["CODES", "CheckPolicy", "CodeInfo", "Finding", "Location", "Report", "Severity"]


class Severity(enum.IntEnum):
    INFO = 10
    WARNING = 20
    ERROR = 30

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity
    meaning: str


def _codes(*rows: tuple[str, Severity, str]) -> dict[str, CodeInfo]:
    return {code: CodeInfo(code, sev, meaning) for code, sev, meaning in rows}


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO

#: Every finding code preproc emits, with its default severity. Stable: users match on them.
CODES: dict[str, CodeInfo] = _codes(
    ("config-invalid", E, "the YAML does not validate (exit 2, not a finding list)"),
    ("range-overflow", E, "a stage receives values outside the range it expects"),
    ("compounded-scaling", E, "a stage scales data an earlier stage already scaled"),
    ("range-underuse", W, "a stage's expected range is at least 4x wider than what it receives, "
     "with no earlier scaling to blame"),
    ("normalize-units", E, "normalize's mean/std are in other units than its input"),
    ("dtype-mismatch", E, "a stage needs another dtype kind than it receives"),
    ("clipping", W, "a cast or an internal conversion discards part of the incoming interval unasked"),
    ("degenerate-output", E, "a stage maps the whole incoming interval to one value"),
    ("precision-loss", W, "a cast or stage quantizes to fewer levels than the input has"),
    ("unbounded-input", W, "a stage that expects a bounded range receives an unbounded one"),
    ("source-unknown", I, "nothing is declared or sampled about the source; range checks skipped"),
    ("bit-depth-mismatch", E, "a file's container dtype, channel count or stored bits differ from "
     "source.expect"),
    ("mixed-bit-depth", E, "the dataset mixes dtypes, bit depths or channel counts"),
    ("effective-bit-depth", I, "content uses fewer bits than its container"),
    ("out-of-declared-range", E, "file values fall outside source.expect.range"),
    ("lossy-decode", E, "a file cannot be decoded without losing bits or channels"),
    ("unreadable-file", E, "a file is corrupt, truncated, empty or unsupported"),
    ("no-images", E, "the dataset holds no image file to read"),
    ("files-ignored", W, "image files are present but left out by source.extensions"),
    ("empty-class", W, "a class folder holds no usable image"),
    ("class-imbalance", I, "the largest class is over 10x the smallest"),
    ("duplicate-image", W, "identical pixel content appears more than once"),
    ("constant-image", W, "an image has a single value"),
    ("near-duplicate", W, "the same picture appears resized, re-encoded, cropped, re-toned or at "
     "another bit depth"),
    ("label-conflict", E, "copies of one picture sit in two class folders"),
    ("blurry", W, "an image is much less sharp than the rest of its class"),
    ("dark", W, "an image is much darker than the rest of its class, in its own value range"),
    ("light", W, "an image is much lighter than the rest of its class, in its own value range"),
    ("low-information", W, "an image carries far less information (entropy) than the rest of its class"),
    ("odd-size", W, "an image is far larger or smaller than the rest of its class"),
    ("odd-aspect-ratio", W, "an image's width/height ratio is far from the rest of its class"),
    ("grayscale-in-rgb", W, "a colour image whose channels are all equal"),
    ("class-confound", W, "a file property (photometric, modality, manufacturer, transfer syntax, "
     "bit depth, pixel spacing, size, lossy) splits along the classes; an error when it "
     "separates them completely"),
    ("lossy-source", W, "a DICOM file went through lossy compression (LossyImageCompression 01 "
     "or a lossy transfer syntax)"),
    ("multi-frame", W, "multi-frame DICOM files give their first frame only; the others are "
     "dropped"),
    ("mixed-photometric", E, "a class mixes MONOCHROME1 and MONOCHROME2 while "
     "source.dicom.monochrome1 is keep"),
    ("inverted-twice", W, "an `invert` stage flips DICOM MONOCHROME1 data that "
     "source.dicom.monochrome1: invert already inverted at decode"),
    ("split-leakage", E, "the same group (patient) or picture lands in both the training and the "
     "validation subset (a warning in check)"),
    ("runtime-range-violation", E, "a batch held values outside the inferred interval of a stage"),
    ("dicom-stored-units", E, "a stage with absolute parameters receives DICOM stored values "
     "whose modality LUT (slope/intercept) is not applied"),
    ("mixed-rescale", E, "DICOM files map stored values to modality units differently while "
     "source.dicom.modality_lut is false"),
    ("non-finite-output", E, "a stage's parameters make finite input infinite or NaN"),
    ("non-finite-values", E, "a float file, or a batch, holds NaN or infinite values"),
    ("fill-out-of-range", E, "a geometric augmentation fills with a constant outside the interval "
     "it receives"),
    ("pipeline-mismatch", E, "the training and evaluation pipelines end in different image "
     "sizes or channel counts (a warning for different dtypes)"),
    ("augment-units", W, "an augmentation amount (channel shift, clip) is in other units than "
     "the values it receives"),
    ("cache-stale", E, "batches.cache was made from another config, preproc version or "
     "source files, so it is refused"),
    ("jpeg-draft", I, "batches.decode.jpeg_draft decodes JPEGs at a reduced scale: batches are "
     "not Keras-identical"),
)


class CheckPolicy(Protocol):
    """The ``checks:`` settings a :class:`Report` applies (the config's ``Checks`` model)."""

    @property
    def fail_on(self) -> str: ...

    @property
    def ignore(self) -> Collection[str]: ...

    @property
    def severity(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Location:
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path}


@dataclass(frozen=True)
class Finding:
    """One problem. ``stage`` is the 0-based stage index for pipeline findings, else ``None``."""

    code: str
    message: str
    hint: str = ""
    severity: Severity | None = None
    stage: int | None = None
    stage_name: str | None = None
    location: Location = field(default_factory=Location)
    files: tuple[str, ...] = ()
    count: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")
        if self.severity is None:
            object.__setattr__(self, "severity", CODES[self.code].severity)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "hint": self.hint,
            "stage": self.stage,
            "stage_name": self.stage_name,
            "location": self.location.to_json(),
            "files": list(self.files),
        }
        if self.count is not None:
            out["count"] = self.count
        if self.data:
            out["data"] = self.data
        return out

    def format(self) -> str:
        """Compiler-style text: ``file:line:col: severity[code]: message`` and the hint."""
        loc = self.location
        where = loc.file or "<pipeline>"
        if loc.line is not None:
            where += f":{loc.line}"
            if loc.column is not None:
                where += f":{loc.column}"
        text = f"{where}: {self.severity}[{self.code}]: {self.message}"
        if self.files:
            shown = ", ".join(self.files[:5])
            more = (self.count or len(self.files)) - min(len(self.files), 5)
            text += f"\n  files: {shown}" + (f" and {more} more" if more > 0 else "")
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass
class Report:
    """Findings plus the value-spec trace, with the ``checks:`` policy applied.

    ``findings`` holds what survives ``ignore`` with severities overridden; ``fail_on`` decides
    :attr:`failed` and :meth:`exit_code`.
    """

    findings: list[Finding] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    fail_on: Severity = Severity.ERROR

    @classmethod
    def with_policy(
        cls,
        findings: Iterable[Finding],
        checks: CheckPolicy | None = None,
        trace: Iterable[dict[str, Any]] | None = None,
    ) -> Report:
        ignore: set[str] = set()
        overrides: dict[str, Severity] = {}
        fail_on = Severity.ERROR
        if checks is not None:
            ignore = set(checks.ignore)
            overrides = {k: Severity.parse(v) for k, v in checks.severity.items()}
            fail_on = Severity.parse(checks.fail_on)
        kept = [
            replace(f, severity=overrides[f.code]) if f.code in overrides else f
            for f in findings
            if f.code not in ignore
        ]
        return cls(kept, list(trace or []), fail_on)

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    @property
    def failed(self) -> bool:
        # severity is never None after Finding.__post_init__; the test only narrows the type
        return any(f.severity is not None and f.severity >= self.fail_on for f in self.findings)

    def summary(self, verb: str = "check") -> str:
        """One line: the verdict and the number of findings per severity."""
        counts = {sev: sum(f.severity == sev for f in self.findings) for sev in Severity}
        parts = [f"{n} {sev}{'s' if n != 1 else ''}"
                 for sev, n in sorted(counts.items(), reverse=True) if n]
        verdict = "FAILED" if self.failed else "passed"
        return f"{verb} {verdict}: " + (", ".join(parts) if parts else "no findings")

    def format_text(self, verb: str = "check") -> str:
        """Every finding as ``preproc check`` prints it, then the summary line."""
        return "\n".join([f.format() for f in self.findings] + [self.summary(verb)])

    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "trace": self.trace,
            "failed": self.failed,
            "fail_on": str(self.fail_on),
        }
