"""The image sections of ``report.html``: thumbnails of the worst examples, near-duplicate
clusters side by side, per-class histograms of the measures, and the files not read.

Thumbnails are PNGs embedded as ``data:`` URIs (the page stays one self-contained file). Each is
the file decoded again (only the few files shown), normalised by the same range its measures
used (``level_lo``/``level_hi`` of its record: a 12-bit image is shown over 0-4095, not over
0-65535) and reduced to fit :data:`THUMB_SIDE` pixels.
"""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np

__all__ = ["THUMB_SIDE", "image_sections", "thumbnail_uri"]

#: Longer side of a thumbnail, pixels.
THUMB_SIDE = 112
#: Thumbnails per finding.
PER_FINDING = 8

_CSS = (".thumbs{display:flex;flex-wrap:wrap;gap:8px;margin:.4em 0 1em}"
        ".thumbs figure{margin:0;width:124px;font-size:11px;word-break:break-all}"
        ".thumbs img{display:block;border:1px solid #d7dde3;background:#888;"
        f"max-width:{THUMB_SIDE}px;max-height:{THUMB_SIDE}px}}"
        ".clusters{display:flex;flex-wrap:wrap;gap:10px 18px}"
        ".cluster{border-left:3px solid #b54708;padding-left:8px;margin:.3em 0}"
        ".validation{color:#b42318;font-weight:600}")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def thumbnail_uri(root: str, rec) -> str | None:
    """``data:image/png;base64,...`` of one file's thumbnail, or ``None`` if it cannot be read."""
    from PIL import Image

    from ..io import decode

    try:
        pixels, _ = decode(os.path.join(root, rec.path))
    except Exception:  # noqa: BLE001 - the report shows the error instead of the image
        return None
    lo = rec.level_lo if rec.level_lo is not None else float(np.nanmin(pixels))
    hi = rec.level_hi if rec.level_hi is not None else float(np.nanmax(pixels))
    arr = pixels[0] if pixels.ndim == 4 else pixels
    arr = arr[..., :3] if arr.ndim == 3 and arr.shape[2] >= 3 else arr[..., 0] if arr.ndim == 3 \
        else arr
    scaled = (np.nan_to_num(arr.astype(np.float32)) - lo) * (255.0 / (hi - lo if hi > lo else 1))
    image = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8))
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.BOX)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(uri: str | None, lines: list[str]) -> str:
    caption = "<br>".join(lines)
    if uri is None:
        return f"<figure><span class='muted'>(not readable)</span><figcaption>{caption}" \
               "</figcaption></figure>"
    return f"<figure><img alt='{_e(lines[0] if lines else '')}' src='{uri}'>" \
           f"<figcaption>{caption}</figcaption></figure>"


def image_sections(report, plots) -> str:
    """HTML of every image section, or ``''`` for a quick audit or without a screening."""
    screen = getattr(report._collector, "screen", None)
    if screen is None:
        return ""  # unread files are listed with their reasons by the report's own section
    shown = [f for f in report.findings if f.code in _CODES]
    wanted = {p for f in shown for p in f.files[:PER_FINDING]}
    for f in shown:
        for group in (f.data.get("examples") or []) if "clusters" in f.data else []:
            wanted.update(m["path"] for m in group)
    records = {rec.path: rec for rec in report.records() if rec.path in wanted}
    uris = {p: thumbnail_uri(report.dataset, rec) for p, rec in records.items()}
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
    out.append(_histograms(screen, plots))
    return "\n".join(out)


_CODES = ("near-duplicate", "split-leakage", "label-conflict", "blurry", "dark", "light",
          "low-information", "odd-size", "odd-aspect-ratio", "grayscale-in-rgb")


def _clusters(finding, uris) -> str:
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


def _histograms(screen, plots) -> str:
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


def _measure_histogram(plots, name, values, class_index, classes, log: bool) -> str:
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


