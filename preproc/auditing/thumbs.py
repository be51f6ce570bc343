"""The image sections of ``report.html``: thumbnails of the worst examples, near-duplicate
clusters side by side, a contact sheet per class of what the model sees, and per-class
histograms of the measures.

Thumbnails are PNGs embedded as ``data:`` URIs (the page stays one self-contained file). Each is
the file decoded again (only the few files shown) with the config's ``source.dicom`` options
(modality LUT, VOI, MONOCHROME1 inverted: the values the audit measured), normalised by the same
range its measures used (``level_lo``/``level_hi`` of its record: a 12-bit image is shown over
0-4095, not over 0-65535; a CT over the HU interval of its header) and reduced to fit
:data:`THUMB_SIDE` pixels.

The contact sheet shows the first :data:`PER_CLASS` readable files of each class after the
config's pipeline as validation runs it (random stages left out): decoded as above, converted
to ``batches.color_mode`` and resized to ``batches.target_size`` as the batches do
(:func:`preproc.io.imaging.prepare`: the same interpolation and aspect rule), then every
stage up to the first featurewise one (whose statistics only ``flow`` fits); each image is shown
over the pipeline's inferred output interval.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..types import Array
from .collect import Collector

if TYPE_CHECKING:
    from ..config.model import Config
    from ..dataset.dicom_tally import DicomOptions
    from ..dataset.records import FileRecord
    from ..findings import Finding
    from ..stages.pipeline import Pipeline
    from .html import _Plotter
    from .report import AuditReport
    from .screen import Screen

__all__ = ["PER_CLASS", "THUMB_SIDE", "contact_sheets", "image_sections", "thumbnail_uri"]

#: Longer side of a thumbnail, pixels.
THUMB_SIDE = 112
#: Thumbnails per finding.
PER_FINDING = 8
#: Files per class on the contact sheet.
PER_CLASS = 4

_CSS = (".thumbs{display:flex;flex-wrap:wrap;gap:8px;margin:.4em 0 1em}"
        ".thumbs figure{margin:0;width:124px;font-size:11px;word-break:break-all}"
        ".thumbs img{display:block;border:1px solid #d7dde3;background:#888;"
        f"max-width:{THUMB_SIDE}px;max-height:{THUMB_SIDE}px}}"
        ".clusters{display:flex;flex-wrap:wrap;gap:10px 18px}"
        ".cluster{border-left:3px solid #b54708;padding-left:8px;margin:.3em 0}"
        ".validation{color:#b42318;font-weight:600}")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def thumbnail_uri(root: str, rec: FileRecord, dicom: DicomOptions | None = None) -> str | None:
    """``data:image/png;base64,...`` of one file's thumbnail, or ``None`` if it cannot be read.

    ``dicom``: the config's ``source.dicom`` options, so a DICOM file is shown in the units
    its record was measured in.
    """
    pixels = _decoded(os.path.join(root, rec.path), dicom)
    if pixels is None:
        return None
    lo = rec.level_lo if rec.level_lo is not None else float(np.nanmin(pixels))
    hi = rec.level_hi if rec.level_hi is not None else float(np.nanmax(pixels))
    return _png_uri(pixels, lo, hi)


def _decoded(path: str, dicom: DicomOptions | None) -> Array | None:
    """The file's first frame as the audit decoded it, or ``None`` when it cannot be read."""
    from ..io import decode

    try:
        pixels, _ = decode(path, dicom=dicom) if dicom is not None else decode(path)
    except Exception:  # noqa: BLE001 - the report shows the error instead of the image
        return None
    out: Array = pixels
    return out


def _png_uri(pixels: Array, lo: float, hi: float) -> str:
    """``pixels`` mapped from ``[lo, hi]`` to 8 bits, reduced, as a PNG ``data:`` URI."""
    from PIL import Image

    arr = pixels[0] if pixels.ndim == 4 else pixels
    arr = arr[..., :3] if arr.ndim == 3 and arr.shape[2] >= 3 else arr[..., 0] if arr.ndim == 3 \
        else arr
    scaled = (np.nan_to_num(arr.astype(np.float32)) - lo) * (255.0 / (hi - lo if hi > lo else 1))
    image = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8))
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def contact_sheets(report: AuditReport) -> str:
    """HTML of the per-class contact sheet (see the module notes), or ``''`` without files."""
    collector = _collector_of(report)
    picked = _first_per_class(report, collector.classes)
    if not picked:
        return ""
    dicom = collector.dicom.options.decoding()
    view = _ModelView.of(collector.config)
    out = ["<h2>What the model sees</h2>", f"<p class='muted'>{_e(view.caption)}</p>"]
    for cls in sorted(picked, key=lambda c: (c is not None, c or "")):
        figs = [_figure(view.uri(report.dataset, rec, dicom), [_e(rec.path)])
                for rec in picked[cls]]
        label = "(root)" if cls is None else cls
        out.append(f"<h3>class {_e(label)}</h3><div class='thumbs'>{''.join(figs)}</div>")
    return "\n".join(out)


def _collector_of(report: AuditReport) -> Collector:
    collector = report._collector
    assert isinstance(collector, Collector), "an audit report holds its collector"
    return collector


def _first_per_class(report: AuditReport,
                     classes: Sequence[str | None]) -> dict[str | None, list[FileRecord]]:
    """The first :data:`PER_CLASS` readable records of each class, in file order."""
    picked: dict[str | None, list[FileRecord]] = {}
    wanted = len(classes) if classes else None
    full = 0  # classes holding PER_CLASS records
    for rec in report.records():
        if not rec.ok or rec.min is None:
            continue
        row = picked.setdefault(rec.cls, [])
        if len(row) < PER_CLASS:
            row.append(rec)
            full += len(row) == PER_CLASS
            if wanted is not None and full >= wanted:
                break
    return picked


class _ModelView:
    """The config's pipeline as validation runs it, on one decoded file at a time."""

    def __init__(self, cfg: Config | None, pipeline: Pipeline | None, caption: str) -> None:
        self.cfg, self.pipeline, self.caption = cfg, pipeline, caption

    @classmethod
    def of(cls, cfg: Config | None) -> _ModelView:
        if cfg is None:
            return cls(None, None, "No config: each file as decoded, over its own value range.")
        from ..dataset.sampling import resolve_source
        from ..stages.pipeline import Pipeline

        try:
            src, _ = resolve_source(cfg)
            pipe = Pipeline.from_config(cfg, source=src, subset="validation")
        except Exception as exc:  # noqa: BLE001 - the check reports config problems
            return cls(cfg, None, f"The pipeline could not be built ({exc}); files as decoded.")
        fitted = next((k for k, s in enumerate(pipe.stages) if getattr(s, "needs_fit", False)),
                      None)
        caption = ("Decoded with source.dicom, converted to batches.color_mode and resized to "
                   "batches.target_size as the batches are, then the pipeline's stages as "
                   "validation runs them; shown over the pipeline's output interval.")
        if fitted is not None:
            caption += (f" Stages from {pipe.stages[fitted].describe()} on are left out: their "
                        "featurewise statistics are fitted by flow.")
            pipe = pipe.part(0, fitted)
        return cls(cfg, pipe, caption)

    def uri(self, root: str, rec: FileRecord, dicom: DicomOptions | None) -> str | None:
        pixels = _decoded(os.path.join(root, rec.path), dicom)
        if pixels is None:
            return None
        if pixels.ndim == 4:
            pixels = pixels[0]
        if self.pipeline is None or self.cfg is None:
            return _png_uri(pixels, float(np.nanmin(pixels)), float(np.nanmax(pixels)))
        from ..io import imaging

        batches = self.cfg.batches
        height, width = batches.target_size
        expect = self.cfg.source.expect
        bits = (expect.bit_depth if expect is not None else None) or rec.stored_bits
        x = imaging.prepare(pixels, batches.color_mode, (int(height), int(width)),
                            batches.interpolation, batches.keep_aspect_ratio, bits)
        try:
            x = self.pipeline.apply(x, file=rec.path, index=0)
        except Exception:  # noqa: BLE001 - flow names the failing stage; the sheet shows none
            return None
        iv = self.pipeline.output_spec.interval if self.pipeline.output_spec.known else None
        lo, hi = (iv.lo, iv.hi) if iv is not None and math.isfinite(iv.lo) and \
            math.isfinite(iv.hi) and iv.hi > iv.lo else (float(np.nanmin(x)), float(np.nanmax(x)))
        return _png_uri(x, lo, hi)


def _figure(uri: str | None, lines: list[str]) -> str:
    caption = "<br>".join(lines)
    if uri is None:
        return f"<figure><span class='muted'>(not readable)</span><figcaption>{caption}" \
               "</figcaption></figure>"
    return f"<figure><img alt='{_e(lines[0] if lines else '')}' src='{uri}'>" \
           f"<figcaption>{caption}</figcaption></figure>"


def image_sections(report: AuditReport, plots: _Plotter | None) -> str:
    """HTML of every image section, or ``''`` for a quick audit or without a screening."""
    screen = report._collector.screen
    if screen is None:
        return ""  # unread files are listed with their reasons by the report's own section
    shown = [f for f in report.findings if f.code in _CODES]
    wanted = {p for f in shown for p in f.files[:PER_FINDING]}
    for f in shown:
        for group in (f.data.get("examples") or []) if "clusters" in f.data else []:
            wanted.update(m["path"] for m in group)
    records = {rec.path: rec for rec in report.records() if rec.path in wanted}
    dicom = _collector_of(report).dicom.options.decoding()
    uris = {p: thumbnail_uri(report.dataset, rec, dicom) for p, rec in records.items()}
    out = [f"<style>{_CSS}</style>", "<h2>Image findings</h2>"]
    if not shown:
        out.append("<p>No near-duplicates, leakage or quality outliers.</p>")
    for f in shown:
        out.append(f"<h3><span class='{f.severity}'>{f.severity}</span> <code>{_e(f.code)}"
                   f"</code>: {f.count} file(s)</h3><p>{_e(f.message)}</p>")
        if "clusters" in f.data:
            out.append(_clusters(f, uris))
            continue
        values = f.data.get("values") or {}
        figs = []
        for p in f.files[:PER_FINDING]:
            rec = records.get(p)
            lines = [_e(p), f"class {_e(rec.cls if rec else '')}"]
            if p in values and values[p] is not None:
                lines.append(f"{_e(f.data.get('measure'))} {values[p]:.4g}")
            figs.append(_figure(uris.get(p), lines))
        out.append("<div class='thumbs'>" + "".join(figs) + "</div>")
    out.append(contact_sheets(report))
    out.append(_histograms(screen, plots))
    return "\n".join(out)


_CODES = ("near-duplicate", "split-leakage", "label-conflict", "blurry", "dark", "light",
          "low-information", "odd-size", "odd-aspect-ratio", "grayscale-in-rgb")


def _clusters(finding: Finding, uris: dict[str, str | None]) -> str:
    out = []
    for group in finding.data.get("examples") or []:
        figs = []
        for m in group:
            subset = m.get("subset")
            tag = f"<span class='{subset}'>{_e(subset)}</span>" if subset else "no split"
            figs.append(_figure(uris.get(m["path"]),
                                [_e(m["path"]), f"class {_e(m['class'])}", tag]))
        out.append("<div class='cluster thumbs'>" + "".join(figs) + "</div>")
    out = ["<div class='clusters'>" + "".join(out) + "</div>"]
    more = finding.data.get("clusters", 0) - len(finding.data.get("examples") or [])
    if more > 0:
        out.append(f"<p class='muted'>and {more} more cluster(s); files.csv has every file's "
                   "cluster number.</p>")
    return "".join(out)


def _histograms(screen: Screen, plots: _Plotter | None) -> str:
    if plots is None or screen.class_index is None or not screen.n:
        return ""
    out = ["<h2>Image measures per class</h2>"]
    for name, values, log in (("brightness", screen.measures.get("brightness"), False),
                              ("blur", screen.measures.get("blur"), True),
                              ("entropy", screen.measures.get("entropy"), False)):
        if values is None or not np.isfinite(values).any():
            continue
        out.append(_measure_histogram(plots, name, values, screen.class_index, screen.classes,
                                      log))
    return "\n".join(out)


def _measure_histogram(plots: _Plotter, name: str, values: Array, class_index: Array,
                       classes: list[str | None], log: bool) -> str:
    """One figure: the measure's distribution per class (step lines, shared bins)."""
    finite = np.isfinite(values) & ((values > 0) if log else True)
    x = np.log10(values[finite]) if log else values[finite]
    cls = class_index[finite]
    bins = np.histogram_bin_edges(x, bins=40)
    fig = plots.Figure(figsize=(8, 2.6))
    ax = fig.add_subplot()
    for c, label in enumerate(classes):
        sel = x[cls == c]
        if len(sel):
            counts, _ = np.histogram(sel, bins=bins)
            ax.stairs(counts, bins, label="(root)" if label is None else str(label))
    ax.set_xlabel(f"log10 {name}" if log else name)
    ax.set_ylabel("files")
    if len(classes) > 1:
        ax.legend(fontsize=8)
    return plots._img(fig, f"{name} per class")


