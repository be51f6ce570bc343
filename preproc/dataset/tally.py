"""Data findings: one grouped finding per kind of problem, with a count and a few example paths.

:class:`Tally` consumes file records one at a time (memory bounded by the number of distinct
kinds, not files) and turns what it saw into :class:`~preproc.findings.Finding` objects. The same
tally serves the full audit, ``audit --quick`` and the header sample of ``preproc check``; value
rules (range, constant images, effective bits) only fire on records that carry values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .. import dtypes
from ..findings import Finding, Location
from ..spec import Interval, format_interval, format_number

if TYPE_CHECKING:
    from ..config.model import Expect
    from .records import FileRecord

__all__ = ["MAX_EXAMPLES", "Expectation", "Tally", "signature_label"]

#: Example paths kept per finding.
MAX_EXAMPLES = 10

#: ``(dtype, stored bits, channels)``: what must agree across a dataset (``FileRecord.signature``).
Signature: TypeAlias = tuple[str | None, int | None, int | None]


@dataclass(frozen=True)
class Expectation:
    """What ``source.expect`` declares, with the range a bit depth implies filled in."""

    dtype: str | None = None
    bit_depth: int | None = None
    range: Interval | None = None
    channels: int | None = None
    range_key: str = "source.expect.range"

    @classmethod
    def from_config(cls, expect: Expect | None) -> Expectation | None:
        """Build from a config's ``source.expect`` model (``None`` stays ``None``)."""
        if expect is None:
            return None
        dtype = getattr(expect, "dtype", None)
        bits = getattr(expect, "bit_depth", None)
        bounds = getattr(expect, "range", None)
        key = "source.expect.range"
        if bounds is not None:
            interval = Interval.of(bounds)
        elif bits is not None and (dtype is None or dtypes.is_integer(dtype)):
            signed = dtype is not None and dtypes.is_signed(dtype)
            interval, key = Interval.of(dtypes.levels_range(bits, signed)), "source.expect.bit_depth"
        else:
            interval = None
        return cls(dtype, bits, interval, getattr(expect, "channels", None), key)


def signature_label(dtype: str | None, bits: int | None, channels: int | None) -> str:
    """``'uint16 12-bit 1ch'``: how the summary and findings name a kind of file."""
    return f"{dtype} {bits}-bit {channels}ch"


@dataclass
class _Bucket:
    """Count, example paths and a breakdown of found values for one kind of problem."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    found: Counter[Hashable] = field(default_factory=Counter)

    def add(self, path: str, found: Hashable = None) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(path)
        if found is not None:
            self.found[found] += 1

    def breakdown(self, limit: int = 6) -> str:
        ranked = sorted(self.found.items(), key=_by_count)
        text = ", ".join(f"{format_number(k) if isinstance(k, float) else k} ({n})"
                         for k, n in ranked[:limit])
        return text + (f" and {len(ranked) - limit} more" if len(ranked) > limit else "")


def _by_count(item: tuple[Hashable, int]) -> tuple[int, str]:
    return (-item[1], str(item[0]))


class Tally:
    """Streaming rule state. Feed records with :meth:`add`, then call :meth:`findings`.

    Args:
        expect: the declared source, or ``None`` for a bare directory (data-intrinsic rules only).
        classes: class names that must hold images (for ``empty-class``); ``None`` for root files.
        where: how findings name the dataset (its directory, as the user wrote it).
        scope: ``''`` for a whole dataset, or e.g. ``' in a sample of 64 files'``.
    """

    def __init__(self, expect: Expectation | None, classes: Iterable[str], where: str,
                 scope: str = "") -> None:
        self.expect, self.where, self.scope = expect, where, scope
        self.classes = list(classes)
        self.total = 0
        self.usable: Counter[str | None] = Counter()
        self.errors: dict[str | None, _Bucket] = {}
        self.kinds: dict[Signature, _Bucket] = {}
        self.mismatch = {k: _Bucket() for k in ("dtype", "channels", "stored_bits")}
        self.out_of_range, self.constant = _Bucket(), _Bucket()
        self.nonfinite = _Bucket()
        self.nonfinite_values = 0
        self.observed: list[float] = []
        self.effective: dict[str, Counter[int]] = {}
        self.effective_examples: dict[str, list[tuple[str, int]]] = {}
        #: files present but outside ``source.extensions``: extension -> (count, examples)
        self.ignored: dict[str, tuple[int, list[str]]] = {}
        self.installs: Counter[str] = Counter()  # pip commands of missing decoders -> files

    def add(self, rec: FileRecord) -> None:
        """Account for one record."""
        self.total += 1
        if not rec.ok:
            self.errors.setdefault(rec.error_code, _Bucket()).add(rec.path, rec.error)
            if "install" in rec.detail and "with: pip install" in rec.detail:
                self.installs[rec.detail.rsplit("with: ", 1)[1]] += 1
        if rec.dtype is not None:
            kind = self.kinds.get(rec.signature)
            if kind is None:  # created on first sight only: this runs once per file
                kind = self.kinds[rec.signature] = _Bucket()
            kind.add(rec.path)
            self._check_header(rec)
        if rec.ok:
            self.usable[rec.cls] += 1
            if getattr(rec, "nonfinite", 0):
                self.nonfinite.add(rec.path)
                self.nonfinite_values += rec.nonfinite
            if rec.min is not None:
                self._check_values(rec)

    def _check_header(self, rec: FileRecord) -> None:
        exp = self.expect
        if exp is None:
            return
        if exp.dtype is not None and rec.dtype != exp.dtype:
            self.mismatch["dtype"].add(rec.path, rec.dtype)
        if exp.channels is not None and rec.channels != exp.channels:
            self.mismatch["channels"].add(rec.path, rec.channels)
        if (exp.bit_depth is not None and rec.stored_bits_declared
                and rec.stored_bits != exp.bit_depth):
            self.mismatch["stored_bits"].add(rec.path, rec.stored_bits)

    def _check_values(self, rec: FileRecord) -> None:
        assert rec.min is not None and rec.max is not None and rec.dtype is not None  # see add
        lo, hi = min(rec.min), max(rec.max)
        if lo == hi:
            self.constant.add(rec.path, lo)
        rng = self.expect.range if self.expect is not None else None
        if rng is not None and (lo < rng.lo or hi > rng.hi):
            self.out_of_range.add(rec.path)
            self.observed = [min(self.observed[0], lo), max(self.observed[1], hi)] \
                if self.observed else [lo, hi]
        if rec.effective_bits is not None:
            counts = self.effective.get(rec.dtype)
            if counts is None:
                counts = self.effective[rec.dtype] = Counter()
            counts[rec.effective_bits] += 1
            examples = self.effective_examples.setdefault(rec.dtype, [])
            reference = self._reference_bits(rec.dtype)[0]
            if rec.effective_bits < reference and len(examples) < MAX_EXAMPLES:
                examples.append((rec.path, rec.effective_bits))

    def findings(self, duplicates: Mapping[str, Any] | None = None) -> list[Finding]:
        """Every finding the records support, in a stable order."""
        out = self._listing_findings() + self._error_findings() + self._mismatch_findings()
        out += self._mixed_finding() + self._effective_findings() + self._range_finding()
        out += self._class_findings() + self._duplicate_finding(duplicates)
        if self.nonfinite.count:
            out.append(self._finding(
                "non-finite-values", self.nonfinite,
                f"{self.nonfinite.count} file(s) hold NaN or infinite values "
                f"({self.nonfinite_values} pixel(s) in all); statistics skip them, batches "
                "would carry them into training",
                "repair or remove these files; NaN or inf has no place in a range check, a "
                "mean or a loss", data={"files": self.nonfinite.count,
                                        "pixels": self.nonfinite_values}))
        if self.constant.count:
            out.append(self._finding(
                "constant-image", self.constant,
                f"{self.constant.count} image(s) hold a single value: {self.constant.breakdown()}",
                "check the export of these files; a constant image carries no information"))
        return out

    def _listing_findings(self) -> list[Finding]:
        """``no-images`` when nothing was listed, ``files-ignored`` for excluded image files."""
        out: list[Finding] = []
        if self.ignored:
            count = sum(n for n, _ in self.ignored.values())
            examples = [p for _, ex in self.ignored.values() for p in ex][:MAX_EXAMPLES]
            what = ", ".join(f"{n} .{ext} file{'s' if n != 1 else ''}" if ext else
                             f"{n} DICOM file{'s' if n != 1 else ''} without extension"
                             for ext, (n, _) in sorted(self.ignored.items()))
            exts = sorted(ext for ext in self.ignored if ext)
            out.append(self._finding(
                "files-ignored", _Bucket(count, examples),
                f"{what} {'is' if count == 1 else 'are'} not in source.extensions and "
                f"{'is' if count == 1 else 'are'} left out",
                f"add {', '.join(exts) or 'the extension'} to source.extensions if "
                f"{'it belongs' if count == 1 else 'they belong'} to the dataset",
                "source.extensions", {"ignored": {e: n for e, (n, _) in self.ignored.items()}},
                scoped=False))  # counted over the whole dataset, not a sample
        if self.total == 0 and not self.scope:
            out.append(self._finding(
                "no-images", _Bucket(0, []),
                "no image file was found: there is nothing to check, audit or train on",
                "point source.directory at the dataset (one sub-folder per class) and check "
                "source.extensions", "source.directory"))
        return out

    def _finding(self, code: str, bucket: _Bucket, message: str, hint: str, key: str = "",
                 data: dict[str, Any] | None = None, *, scoped: bool = True) -> Finding:
        scope = self.scope if scoped else ""
        return Finding(code, message + scope, hint, location=Location(self.where, path=key),
                       files=tuple(bucket.examples), count=bucket.count, data=data or {})

    def _error_findings(self) -> list[Finding]:
        out: list[Finding] = []
        texts = {
            "unreadable-file": ("could not be read", ("fix or remove these files; files.csv "
                                "lists each one with its reason in the error column")),
            "lossy-decode": ("can only be decoded by dropping bits or channels",
                             "convert them losslessly (16-bit PNG or TIFF) or exclude them"),
        }
        if self.installs:
            commands = "; ".join(f"{cmd} ({n} file(s))" for cmd, n in self.installs.items())
            texts["unreadable-file"] = (texts["unreadable-file"][0], "a decoder is missing: "
                                        f"{commands}; " + texts["unreadable-file"][1])
        for code, (what, hint) in texts.items():
            bucket = self.errors.get(code)
            if bucket:
                out.append(self._finding(
                    code, bucket, f"{bucket.count} of {self.total} files {what}: "
                    f"{bucket.breakdown()}", hint, data={"reasons": dict(bucket.found)}))
        return out

    def _mismatch_findings(self) -> list[Finding]:
        exp = self.expect
        if exp is None:  # nothing declared: no mismatch was counted
            return []
        out: list[Finding] = []
        specs: tuple[tuple[str, str, Callable[[Expectation], object], str, str], ...] = (
            ("dtype", "source.expect.dtype", lambda e: e.dtype, "have another container dtype",
             "convert these files, or declare the dtype they have in source.expect.dtype"),
            ("channels", "source.expect.channels", lambda e: e.channels,
             "have another channel count", "convert these files, or fix source.expect.channels"),
            ("stored_bits", "source.expect.bit_depth", lambda e: e.bit_depth,
             ("declare other stored bits in their header (PNG sBIT, TIFF BitsPerSample, "
              "DICOM BitsStored)"),
             ("check which bit depth the scanner or export wrote, and fix "
              "source.expect.bit_depth or the files")),
        )
        for kind, key, declared, what, hint in specs:
            bucket = self.mismatch[kind]
            if bucket.count:
                out.append(self._finding(
                    "bit-depth-mismatch", bucket,
                    f"{bucket.count} of {self.total} files {what} than {key} = "
                    f"{declared(exp)}: found {bucket.breakdown()}", hint, key,
                    {"field": kind, "expected": declared(exp), "found": _keys(bucket.found)}))
        return out

    def _mixed_finding(self) -> list[Finding]:
        if len(self.kinds) < 2:
            return []
        ranked = sorted(self.kinds.items(), key=lambda kv: (-kv[1].count, str(kv[0])))
        minority = _Bucket(count=sum(b.count for _, b in ranked[1:]))
        for _, bucket in ranked[1:]:
            minority.examples.extend(bucket.examples[: MAX_EXAMPLES - len(minority.examples)])
        kinds = ", ".join(f"{signature_label(*sig)} ({b.count})" for sig, b in ranked)
        return [self._finding(
            "mixed-bit-depth", minority,
            f"the dataset mixes {len(ranked)} kinds of files: {kinds}",
            "convert the files to one dtype and bit depth, or split the dataset: a pipeline "
            "scales one value range for all files",
            data={"kinds": [{"dtype": s[0], "stored_bits": s[1], "channels": s[2],
                             "files": b.count} for s, b in ranked]})]

    def _effective_findings(self) -> list[Finding]:
        out: list[Finding] = []
        for dtype, counter in sorted(self.effective.items()):
            reference, what = self._reference_bits(dtype)
            under = sum(n for bits, n in counter.items() if bits < reference)
            if not under:
                continue
            top = max(counter)
            spread = ", ".join(f"{b}-bit ({n})" for b, n in sorted(counter.items(), reverse=True))
            hint = (f"declare source.expect.bit_depth: {top} so range checks use the real range"
                    if top < reference else "dark or low-contrast images; check they are "
                    "exported at the intended depth")
            examples = [p for p, bits in self.effective_examples[dtype] if bits < reference]
            out.append(self._finding(
                "effective-bit-depth", _Bucket(under, examples[:MAX_EXAMPLES]),
                f"{under} of {sum(counter.values())} {dtype} files use fewer than {reference} "
                f"bits ({what}; at most {top} in the dataset): {spread}", hint,
                data={"dtype": dtype, "reference_bits": reference, "max_effective_bits": top,
                      "effective_bits": {str(b): n for b, n in sorted(counter.items())}}))
        return out

    def _reference_bits(self, dtype: str) -> tuple[int, str]:
        """Declared bit depth when ``source.expect`` gives one for this dtype, else the container."""
        exp = self.expect
        if exp is not None and exp.bit_depth is not None and exp.dtype in (None, dtype):
            return exp.bit_depth, "source.expect.bit_depth"
        return dtypes.container_bits(dtype), "the container"

    def _range_finding(self) -> list[Finding]:
        bucket = self.out_of_range
        if not bucket.count:
            return []
        exp = self.expect
        # files are counted out of range only against a declared range
        assert exp is not None and exp.range is not None
        rng = exp.range
        lo, hi = self.observed
        return [self._finding(
            "out-of-declared-range", bucket,
            f"{bucket.count} file(s) have values outside {rng} declared by "
            f"{exp.range_key}: these files span {format_interval(lo, hi)}",
            "fix source.expect to match the data (see the suggested block) or fix the files",
            exp.range_key, {"declared": [rng.lo, rng.hi], "observed": [lo, hi]})]

    def _class_findings(self) -> list[Finding]:
        out: list[Finding] = []
        empty = [c for c in self.classes if not self.usable.get(c)]
        if empty:
            bucket = _Bucket(len(empty), [f"{c}/" for c in empty[:MAX_EXAMPLES]])
            out.append(self._finding(
                "empty-class", bucket,
                f"{len(empty)} class folder(s) hold no usable image: {', '.join(empty)}",
                "add images or remove the folder; an empty class still takes an index",
                data={"classes": empty}))
        counts = {c: self.usable[c] for c in self.classes if self.usable.get(c)}
        if len(counts) >= 2:
            big = max(counts, key=lambda c: (counts[c], c))
            small = min(counts, key=lambda c: (counts[c], c))
            if counts[big] > 10 * counts[small]:
                out.append(self._finding(
                    "class-imbalance", _Bucket(2, [f"{big}/", f"{small}/"]),
                    f"the largest class `{big}` has {counts[big]} images, "
                    f"{counts[big] / counts[small]:.1f}x the smallest `{small}` "
                    f"({counts[small]})", "use class weights or resampling",
                    data={"counts": counts}))
        return out

    def _duplicate_finding(self, duplicates: Mapping[str, Any] | None) -> list[Finding]:
        if not duplicates or not duplicates["groups"]:
            return []
        groups = duplicates["groups"]
        extra = sum(len(g) - 1 for g in groups)
        cross = sum(1 for g in groups if len({cls for _, cls in g}) > 1)
        examples = [p for g in groups[:5] for p, _ in g][:MAX_EXAMPLES]
        return [self._finding(
            "duplicate-image", _Bucket(extra, examples),
            f"{extra} file(s) repeat the pixels of another file, in {len(groups)} group(s), "
            f"{cross} of them across classes",
            "remove the copies; across classes they contradict each other, across splits "
            "they leak into validation",
            data={"groups": len(groups), "cross_class_groups": cross,
                  "examples": [[p for p, _ in g] for g in groups[:5]]})]


def _keys(counter: Counter[Hashable]) -> list[Hashable]:
    return [k for k, _ in sorted(counter.items(), key=_by_count)]
