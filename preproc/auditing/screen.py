"""Dataset-level image screening: near-duplicates, split leakage, label conflicts, quality outliers.

Runs in the parent after every record is spooled, from the measures the workers took
(:mod:`preproc.auditing.quality`): the columns built as the records arrived
(:mod:`.columns`: hashes, measures, class and subset codes, a mapped file of thumbnails) feed
the hash index (:mod:`.similarity`), which finds near-duplicate clusters, and robust per-class
thresholds find the quality outliers. One pass over the on-disk spool fetches the paths of the
files that findings name. Nothing keeps a per-file Python object.

Subsets: a file is in the validation subset exactly when the batches would put it there: the
audit's listing split by the batches' own rule (:func:`.columns.validation_paths`).

Quality outliers, per measure (``checks.audit`` sets ``k`` and the margins): within each class
with at least ``min_class_files`` measured files (else over the dataset), a file is an outlier
when its measure lies more than ``k`` robust deviations (1.4826 x MAD) from the median *and* at
least the measure's margin away. Sharpness, size and aspect ratio are compared on a log scale
(a factor from the median), darkness on the log of the brightness and lightness on the log of
its complement (exposure is multiplicative: half the light is half the brightness). A dataset with fewer measured files than ``min_class_files``
gets no outlier findings at all. A low-information file is not judged for blur or brightness:
those measures mean nothing on an image without content. Brightness is re-expressed against the range of the file's
dtype over the dataset (declared ``source.expect`` range, else the widest file range), so a
12-bit image that reaches only 1200 stays dark and a uniformly dark dataset stays unflagged;
entropy likewise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from ..dataset.records import FileRecord
from ..dataset.tally import MAX_EXAMPLES
from ..findings import Finding, Location
from ..types import Array
from .columns import ColumnBuilder, Columns
from .nearby import join_near_duplicates
from .similarity import Components

__all__ = ["QUALITY_CODES", "Screen", "Thresholds", "screen"]

#: Codes this module can report.
QUALITY_CODES = ("blurry", "dark", "light", "low-information", "odd-size", "odd-aspect-ratio",
                 "grayscale-in-rgb")
SIMILARITY_CODES = ("near-duplicate", "split-leakage", "label-conflict")
#: Codes a quick audit computes from the image sizes in the headers.
GEOMETRY_CODES = ("odd-size", "odd-aspect-ratio")
#: What a quick audit (headers only) does not compute, ``code: what it would look for``: these
#: findings need the pixels. Every other finding comes from the headers as in a full audit.
QUICK_SKIPS = {
    "duplicate-image": "identical pixel content",
    "constant-image": "single-valued images",
    "effective-bit-depth": "content using fewer bits than its container",
    "out-of-declared-range": "values outside source.expect.range",
    "non-finite-values": "NaN or infinite values",
    "near-duplicate": "resized, re-encoded, cropped or re-toned copies",
    "split-leakage": "copies of one picture in both subsets (DICOM patients are checked)",
    "label-conflict": "copies of one picture under two classes",
    "blurry": "out-of-focus images",
    "dark": "under-exposed images",
    "light": "over-exposed images",
    "low-information": "blank or near-constant images",
    "grayscale-in-rgb": "grayscale pictures stored as colour",
}

#: Found files per code: ``(spool indices, extra data)``.
Named: TypeAlias = "dict[str, tuple[list[int], dict[str, Any]]]"
#: Spool index -> ``(path, class)`` of the files findings name.
Paths: TypeAlias = "dict[int, tuple[str, str | None]]"
#: A quality threshold per class: ``(low or None, high or None, median)``.
Bounds: TypeAlias = "tuple[float | None, float | None, float]"

_TRAIN, _VAL = 0, 1
_SUBSETS = ("training", "validation")
_MAD_SCALE = 1.4826
#: Clusters (and members per cluster) kept in a finding's data for the reports.
MAX_CLUSTERS = 20
MAX_MEMBERS = 8


@dataclass(frozen=True)
class Thresholds:
    """``checks.audit`` values (defaults when there is no config)."""

    near_duplicate_distance: int = 10
    near_duplicate_correlation: float = 0.85
    k: float = 3.5
    min_class_files: int = 20
    blur_factor: float = 6.0
    brightness_factor: float = 2.0
    entropy_margin: float = 4.0
    size_factor: float = 3.0
    aspect_factor: float = 1.5

    @classmethod
    def from_config(cls, cfg: Any) -> Thresholds:
        model = getattr(getattr(cfg, "checks", None), "audit", None)
        if model is None:
            return cls()
        return cls(**{f: getattr(model, f) for f in cls.__dataclass_fields__})


@dataclass
class _Measure:
    """How one quality code reads its measure: transform, side, margin, wording."""

    code: str
    column: str
    side: int  # -1: low values are bad, +1: high values, 0: both
    margin: float
    scale: str  # "linear", "log" or "log-complement" (-log(1 - x), for light values)
    what: str
    unit: str
    hint: str


@dataclass
class Screen:
    """What the screening found; the reports read it.

    Attributes:
        findings: the findings, in code order.
        n: files screened (every spooled record, readable or not).
        subset: per spooled record, 0 training, 1 validation, -1 none.
        brightness: per spooled record, brightness in the dataset's range (NaN when unmeasured).
        entropy: per spooled record, entropy in bits at 256 levels of the dataset's range.
        cluster: per spooled record, near-duplicate cluster number (-1 for none).
        flags: spool index -> codes that name the file.
        clusters: every cluster as ``[spool index, ...]``.
        thresholds: per quality code, ``{class: (low, high)}`` in the measure's units.
    """

    findings: list[Finding] = field(default_factory=list)
    n: int = 0
    subset: Array | None = None
    brightness: Array | None = None
    entropy: Array | None = None
    cluster: Array | None = None
    flags: dict[int, list[str]] = field(default_factory=dict)
    clusters: list[list[int]] = field(default_factory=list)
    thresholds: dict[str, dict[str | None, Bounds]] = field(default_factory=dict)
    measures: dict[str, Array | None] = field(default_factory=dict)
    classes: list[str | None] = field(default_factory=list)
    class_index: Array | None = None

    def csv_fields(self, i: int, rec: FileRecord) -> dict[str, str]:
        """``files.csv`` columns of spooled record ``i``."""
        aspect = (rec.width / rec.height) if rec.width and rec.height else None
        subset = "" if self.subset is None or self.subset[i] < 0 else _SUBSETS[self.subset[i]]
        bright = None if self.brightness is None else self.brightness[i]
        return {
            "phash": rec.phash or "", "blur": _fmt(rec.blur), "brightness": _fmt(bright),
            "entropy": _fmt(None if self.entropy is None else self.entropy[i]),
            "aspect_ratio": _fmt(aspect),
            "grayscale": "" if rec.grayscale is None else str(bool(rec.grayscale)).lower(),
            "subset": subset,
            "cluster": "" if self.cluster is None or self.cluster[i] < 0 else str(self.cluster[i]),
            "flags": ";".join(self.flags.get(i, ())),
        }


def _fmt(x: Any) -> str:
    if x is None:
        return ""
    x = float(x)
    return "" if math.isnan(x) else f"{x:.6g}"


def screen(spool: Iterable[FileRecord], cfg: Any, where: str, columns: ColumnBuilder,
           expect: Any = None, quick: bool = False) -> Screen:
    """Screen every spooled record; ``cfg`` may be ``None`` (bare directory).

    ``columns``: the records' columns, built as the records arrived. ``quick``: the records
    hold headers only; only the findings of the image geometry (``odd-size``,
    ``odd-aspect-ratio``) are computed, the rest are in :data:`QUICK_SKIPS`.
    """
    limits = Thresholds.from_config(cfg)
    try:
        cols = columns.build()
    finally:
        columns.close()  # the mapping outlives the file: no thumbnails left on disk after this
    out = Screen(n=cols.n, subset=cols.subset, classes=cols.class_names,
                 class_index=cols.cls)
    out.brightness, out.entropy = _dataset_units(cols, expect)
    out.measures = {"blur": cols.blur, "brightness": out.brightness, "entropy": out.entropy}
    named: Named = {}
    if not quick:
        _similarity(cols, limits, out, named)
    _quality(cols, limits, out, named, GEOMETRY_CODES if quick else QUALITY_CODES)
    _name_files(spool, named, out, where, cols)
    return out


def _dataset_units(cols: Columns, expect: Any) -> tuple[Array, Array]:
    """Brightness and entropy re-expressed against the range of the file's dtype over the
    dataset (the declared ``source.expect`` range, else the widest file range).

    A file normalised by a narrower range of its own (a dim 12-bit image whose values need only
    10 bits) is as bright as its values say and loses the entropy a coarser quantisation of the
    dataset's range would lose: ``log2(dataset span / file span)`` bits.
    """
    bright = np.full(cols.n, np.nan)
    entropy = np.full(cols.n, np.nan)
    declared = getattr(expect, "range", None)
    for d, name in enumerate(cols.dtype_names):
        rows = (cols.dtype == d) & np.isfinite(cols.bright)
        if not rows.any():
            continue
        lo, hi = np.nanmin(cols.lo[rows]), np.nanmax(cols.hi[rows])
        if declared is not None and getattr(expect, "dtype", None) in (None, name) \
                and name is not None and np.dtype(name).kind in "ui":
            lo, hi = float(declared.lo), float(declared.hi)
        span = cols.hi[rows] - cols.lo[rows]
        raw = cols.bright[rows] * span + cols.lo[rows]
        bright[rows] = (raw - lo) / (hi - lo) if hi > lo else 0.0
        ratio = np.where(span > 0, (hi - lo) / np.where(span > 0, span, 1), 1.0)
        entropy[rows] = np.maximum(cols.entropy[rows] - np.log2(np.maximum(ratio, 1.0)), 0.0)
    return bright, entropy


def _similarity(cols: Columns, limits: Thresholds, out: Screen, named: Named) -> None:
    found = Components(cols.n)
    exact = _exact_pairs(cols)
    found.join(exact[:, 0], exact[:, 1])
    join_near_duplicates(found, cols, limits.near_duplicate_distance,
                         limits.near_duplicate_correlation)
    groups = found.groups()
    out.clusters = groups
    out.cluster = np.full(cols.n, -1, dtype=np.int64)
    near, leak, conflict = [], [], []
    for number, members in enumerate(groups):
        out.cluster[members] = number
        m = np.asarray(members)
        if len(np.unique(cols.content[m])) > 1:
            near.append(members)
        subsets = set(cols.subset[m].tolist()) - {-1}
        if len(subsets) > 1:
            leak.append(members)
        if len(np.unique(cols.cls[m])) > 1:
            conflict.append(members)
    for code, found_in in (("near-duplicate", near), ("split-leakage", leak),
                           ("label-conflict", conflict)):
        if found_in:
            named[code] = ([i for g in found_in for i in g], {"clusters": found_in})


def _exact_pairs(cols: Columns) -> np.ndarray:
    """Files with identical content (equal 64-bit content-hash prefix), chained as pairs."""
    have = np.flatnonzero(cols.content != 0)
    if len(have) < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = have[np.argsort(cols.content[have], kind="stable")]
    same = cols.content[order[1:]] == cols.content[order[:-1]]
    a, b = order[:-1][same], order[1:][same]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def _measures(limits: Thresholds) -> list[_Measure]:
    return [
        _Measure("blurry", "blur", -1, math.log(limits.blur_factor), "log",
                 "sharpness (variance of the Laplacian over the variance of the image)", "",
                 "check focus and motion blur; remove or re-acquire these images"),
        _Measure("dark", "brightness", -1, math.log(limits.brightness_factor), "log",
                 "brightness (mean luminance as a fraction of the range of the dtype's files)",
                 "", "check exposure or windowing; these images are dark for their range"),
        _Measure("light", "brightness", 1, math.log(limits.brightness_factor), "log-complement",
                 "brightness (mean luminance as a fraction of the range of the dtype's files)",
                 "", "check exposure or windowing; these images are washed out for their range"),
        _Measure("low-information", "entropy", -1, limits.entropy_margin, "linear",
                 "entropy (bits at 256 levels of the range of the dtype's files)", " bits",
                 "check these images are not blank, placeholders or failed exports"),
        _Measure("odd-size", "side", 0, math.log(limits.size_factor), "log",
                 "size (square root of width x height, pixels)", " px",
                 "check these files belong to the dataset; resizing them distorts detail"),
        _Measure("odd-aspect-ratio", "aspect", 0, math.log(limits.aspect_factor), "log",
                 "aspect ratio (width / height)", "",
                 "check these files belong to the dataset; a resize to a fixed shape distorts "
                 "them"),
    ]


#: Measure scales: (transform of an array, inverse of one value).
_SCALES: dict[str, tuple[Callable[[Array], Array], Callable[[float], float]]] = {
    "linear": (lambda a: a, lambda v: v),
    "log": (lambda a: np.log(np.maximum(a, 1e-9)), math.exp),
    "log-complement": (lambda a: -np.log(np.maximum(1.0 - a, 1e-9)), lambda v: 1.0 - math.exp(-v)),
}


def _quality(cols: Columns, limits: Thresholds, out: Screen, named: Named,
             codes: tuple[str, ...]) -> None:
    sized = (cols.height > 0) & (cols.width > 0)
    assert out.brightness is not None and out.entropy is not None, "screen() sets them first"
    values = {
        "blur": cols.blur, "brightness": out.brightness, "entropy": out.entropy,
        "side": np.where(sized, np.sqrt(cols.height * cols.width), np.nan),
        "aspect": np.where(sized, cols.width / np.where(sized, cols.height, 1), np.nan),
    }
    blank: Array = np.zeros(cols.n, dtype=np.bool_)  # low-information files: other measures moot
    chosen = [m for m in _measures(limits) if m.code in codes]
    for m in sorted(chosen, key=lambda m: m.code != "low-information"):
        raw = values[m.column]
        x = _SCALES[m.scale][0](raw)
        if m.code in ("blurry", "dark", "light"):
            x = np.where(blank, np.nan, x)
        flagged: Array = np.zeros(cols.n, dtype=np.bool_)
        score = np.zeros(cols.n)
        bounds = {}
        for c, name in enumerate(cols.class_names):
            rows = (cols.cls == c) & np.isfinite(x)
            if not rows.any():
                continue
            ref = rows if rows.sum() >= limits.min_class_files else np.isfinite(x)
            if ref.sum() < limits.min_class_files:
                continue  # too few files for a median and a spread to mean anything
            med = float(np.median(x[ref]))
            spread = max(limits.k * _MAD_SCALE * float(np.median(np.abs(x[ref] - med))),
                         m.margin)
            low, high = med - spread, med + spread
            hit: Array = np.zeros(cols.n, dtype=np.bool_)
            if m.side <= 0:
                hit |= rows & (x < low)
            if m.side >= 0:
                hit |= rows & (x > high)
            flagged |= hit
            score[hit] = np.abs(x[hit] - med) / spread
            un = _SCALES[m.scale][1]
            bounds[name] = (un(low) if m.side <= 0 else None, un(high) if m.side >= 0 else None,
                            un(med))
        out.thresholds[m.code] = bounds
        if m.code == "low-information":
            blank = flagged
        if flagged.any():
            order = np.flatnonzero(flagged)
            order = order[np.argsort(-score[order], kind="stable")]
            named[m.code] = (order.tolist(), {"measure": m, "values": raw})
    gray = np.flatnonzero(cols.gray)
    if len(gray) and "grayscale-in-rgb" in codes:
        named["grayscale-in-rgb"] = (gray.tolist(), {})


def _name_files(spool: Iterable[FileRecord], named: Named, out: Screen, where: str,
                cols: Columns) -> None:
    """Fetch the paths findings need (one pass) and build the findings."""
    wanted: set[int] = set()
    for code, (members, extra) in named.items():
        for i in members:
            out.flags.setdefault(i, []).append(code)
        if "clusters" in extra:
            for g in extra["clusters"][:MAX_CLUSTERS]:
                wanted.update(g[:MAX_MEMBERS])
        wanted.update(members[:MAX_EXAMPLES])
    paths: dict[int, tuple[str, str | None]] = {}
    if wanted:
        for i, rec in enumerate(spool):
            if i in wanted:
                paths[i] = (rec.path, rec.cls)
    total = int(np.isfinite(cols.bright).sum()) or int((cols.height > 0).sum())
    for code in SIMILARITY_CODES + QUALITY_CODES:
        if code not in named:
            continue
        members, extra = named[code]
        out.findings.append(_finding(code, members, extra, paths, where, total, cols, out))


def _member(i: int, paths: Paths, cols: Columns) -> dict[str, Any]:
    path, cls = paths[i]
    sub = int(cols.subset[i])
    return {"path": path, "class": cls, "subset": _SUBSETS[sub] if sub >= 0 else None}


def _finding(code: str, members: list[int], extra: dict[str, Any], paths: Paths, where: str,
             total: int, cols: Columns, out: Screen) -> Finding:
    examples = tuple(paths[i][0] for i in members[:MAX_EXAMPLES])
    location = Location(where, path="checks.audit" if code in QUALITY_CODES else "")
    if "clusters" in extra:
        groups = extra["clusters"]
        clustered = {"clusters": len(groups), "distance": None,
                     "examples": [[_member(i, paths, cols) for i in g[:MAX_MEMBERS]]
                                  for g in groups[:MAX_CLUSTERS]]}
        message, hint = _cluster_text(code, groups, cols)
        return Finding(code, message, hint, location=location, files=examples,
                       count=len(members), data=clustered)
    if code == "grayscale-in-rgb":
        return Finding(code, f"{len(members)} of {total} image(s) store a grayscale picture in "
                       "3 or 4 identical colour channels", "convert them to one channel, or "
                       "check the colour export; they triple memory and mislead colour "
                       "statistics", location=location, files=examples, count=len(members),
                       data={"measure": "channels equal"})
    m: _Measure = extra["measure"]
    values = extra["values"]
    bounds = out.thresholds[code]
    parts = []
    for name, (low, high, med) in bounds.items():
        limit = " or ".join(f"{'<' if b is low else '>'} {_short(b)}" for b in (low, high)
                            if b is not None)
        parts.append(f"{name if name is not None else '(root)'}: {limit} (median {_short(med)})")
    message = (f"{len(members)} of {total} image(s) are {code.replace('-', ' ')} outliers of "
               f"their class by {m.what}: thresholds{m.unit and ' in' + m.unit} "
               + "; ".join(parts))
    data: dict[str, Any] = {
        "measure": m.column, "thresholds": {str(k): list(v) for k, v in bounds.items()},
            "values": {paths[i][0]: _round(values[i]) for i in members[:MAX_EXAMPLES]}}
    return Finding(code, message, m.hint + "; tune checks.audit if the class is meant to vary",
                   location=location, files=examples, count=len(members), data=data)


def _cluster_text(code: str, groups: list[list[int]], cols: Columns) -> tuple[str, str]:
    files = sum(len(g) for g in groups)
    if code == "near-duplicate":
        message = (f"{files} files form {len(groups)} cluster(s) of the same picture (resized, "
                   "re-encoded, cropped, re-toned or at another bit depth)")
        return message, "keep one file per cluster; files.csv gives each file's cluster number"
    if code == "split-leakage":
        val = sum(int((cols.subset[np.asarray(g)] == _VAL).sum()) for g in groups)
        message = (f"{len(groups)} picture(s) are in both subsets of batches.validation_split: "
                   f"{val} validation file(s) have a copy in training")
        hint = ("remove the copies, or split by group so copies share a subset; validation "
                "scores are inflated otherwise")
        return message, hint
    return (f"{len(groups)} picture(s) appear under more than one class folder ({files} files)",
            "decide the right class for each picture and remove the other copies")


def _short(x: float) -> str:
    return f"{x:.3g}"


def _round(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else float(f"{x:.4g}")
