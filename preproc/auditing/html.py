"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG, no scripts).

Sections: summary, findings, bit-depth breakdown per class (table and stacked bar chart), DICOM
header properties per class, value statistics and histograms per ``(dtype, channels)`` group,
suggested ``source`` block, and the files not read with their reasons.
Plots need matplotlib (``pip install 'preproc[plots]'``); without it the page says so and shows
the tables only.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..spec import format_number
from .thumbs import image_sections

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .report import AuditReport

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1d2329;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #d7dde3}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #d7dde3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d7dde3;border-radius:6px;
padding:.5em 1em;min-width:7em}.card b{display:block;font-size:1.5em}
.error{color:#b42318;font-weight:600}.warning{color:#b54708;font-weight:600}
.info{color:#175cd3;font-weight:600}pre{background:#f6f8fa;padding:.8em;overflow:auto}
.muted{color:#667085}img{max-width:100%}code{font-size:12px}
"""


def render_html(report: AuditReport) -> str:
    """The whole page for an :class:`~preproc.auditing.report.AuditReport`."""
    plots = _Plotter.create()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>preproc audit: {_e(report.where)}</title><style>{_CSS}</style></head><body>",
        _header(report), _findings(report), _breakdown(report, plots),
        _dicom(report), _groups(report, plots), _suggestion(report), _errors(report),
        image_sections(report, plots),
    ]
    if plots is None:
        parts.insert(2, "<p class='muted'>matplotlib is not installed, so this report has no "
                        "plots; install it with <code>pip install 'preproc[plots]'</code>.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Iterable[str], rows: Iterable[Sequence[object]],
           numeric: Collection[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body: list[str] = []
    for row in rows:
        cells = "".join(f"<td class='n'>{_e(v)}</td>" if i in numeric else f"<td>{v}</td>"
                        for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header(report: AuditReport) -> str:
    s = report.summary
    mode = "headers only (--quick)" if report.quick else "full (every file decoded)"
    cards = [("files", s["files"]), ("readable", s["readable"]),
             ("unreadable", s["unreadable"]), ("lossy", s["lossy"]),
             ("classes", sum(1 for c in s["classes"] if c["class"] is not None))]
    verdict = "FAILED" if report.failed else "passed"
    return (
        f"<h1>Dataset audit: {_e(report.where)}</h1>"
        f"<p class='muted'>{_e(report.dataset)} &middot; config {_e(report.config or 'none')} "
        f"&middot; {mode} &middot; engine {_e(report.engine)} &middot; "
        f"{report.seconds:.1f} s &middot; verdict <b>{verdict}</b> (fail_on "
        f"{_e(report.report.fail_on)})</p><div class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b>{_e(k)}</div>" for k, v in cards) + "</div>"
    )


def _findings(report: AuditReport) -> str:
    skipped = ""
    if report.not_computed:  # a quick audit: an absent finding is not a pass
        items = "".join(f"<li><code>{_e(code)}</code>: {_e(what)}</li>"
                        for code, what in report.not_computed.items())
        skipped = ("<p class='notice'><b>Not computed:</b> a quick audit reads headers only, "
                   f"so it did not look for these findings; run a full audit.</p><ul>{items}</ul>")
    if not report.findings:
        return "<h2>Findings</h2>" + skipped + "<p>No findings.</p>"
    rows: list[list[object]] = []
    for f in report.findings:
        files = ", ".join(f"<code>{_e(p)}</code>" for p in f.files)
        more = (f.count or 0) - len(f.files)
        files += f" and {more} more" if more > 0 else ""
        rows.append([f"<span class='{f.severity}'>{f.severity}</span>", f"<code>{f.code}</code>",
                     _e(f.message), f.count if f.count is not None else "", files, _e(f.hint)])
    return "<h2>Findings</h2>" + skipped + _table(
        ["severity", "code", "message", "files", "examples", "hint"], rows, numeric=(3,))


def _class_name(name: object) -> str:
    return "(root)" if name is None else str(name)


def _breakdown(report: AuditReport, plots: _Plotter | None) -> str:
    rows = [[_e(_class_name(r["class"])), _e(r["format"]), _e(r["dtype"]), r["stored_bits"],
             "" if r["effective_bits"] is None else r["effective_bits"], r["channels"],
             _e(r["photometric"]), r["files"]] for r in report.summary["breakdown"]]
    out = "<h2>Bit depth per class</h2>" + _table(
        ["class", "format", "dtype", "stored bits", "effective bits (max)", "channels",
         "photometric", "files"], rows, numeric=(3, 4, 5, 7))
    if plots is not None and rows:
        out += plots.breakdown(report.summary["breakdown"])
    return out


def _groups(report: AuditReport, plots: _Plotter | None) -> str:
    if report.quick:
        return "<h2>Values</h2><p class='muted'>A quick audit reads headers only.</p>"
    out = ["<h2>Values per dtype group</h2>"]
    for g in report.groups:
        stats = g.to_json()
        rows = [[c, _num(stats["min"][c]), _num(stats["max"][c]), _num(stats["mean"][c]),
                 _num(stats["std"][c])] for c in range(g.channels)]
        out.append(f"<h3>{_e(g.dtype)}, {g.channels} channel(s): {g.files} files</h3>")
        out.append(_table(["channel", "min", "max", "mean", "std"], rows,
                          numeric=(0, 1, 2, 3, 4)))
        if plots is not None and stats["histogram"]:
            out.append(plots.histogram(g.key, stats["histogram"]))
    return "\n".join(out)


def _suggestion(report: AuditReport) -> str:
    text = report.suggested_yaml()
    if not text:
        return ""
    return ("<h2>Suggested source block</h2><p>Matches the data; paste it into the config.</p>"
            f"<pre>{_e(text)}</pre>")


def _errors(report: AuditReport) -> str:
    errors = report.summary["errors"]
    if not errors:
        return ""
    rows = [[_e(k), v] for k, v in errors.items()]
    unread = report.summary.get("unread", [])
    named = [[f"<code>{_e(u['path'])}</code>", _e(_class_name(u["class"])), _e(u["code"]),
              _e(u["reason"]), _e(u["detail"])] for u in unread]
    shown = sum(errors.values())
    more = (f"<p class='muted'>The first {len(unread)} of {shown} are named here; files.csv "
            "lists every file with its error.</p>" if len(unread) < shown else
            "<p class='muted'>files.csv lists the same, with every other file.</p>")
    return ("<h2>Files not read</h2>" + _table(["code: reason", "files"], rows, numeric=(1,))
            + _table(["file", "class", "code", "reason", "detail"], named) + more)


_DICOM_LABELS = {"photometric": "photometric interpretation", "modality": "modality",
                 "manufacturer": "manufacturer", "transfer_syntax": "transfer syntax",
                 "stored_bits": "bit depth", "pixel_spacing": "pixel spacing (mm)",
                 "size": "image size", "lossy": "lossy compression"}


def _dicom(report: AuditReport) -> str:
    """Per class, how the DICOM files spread over each header property."""
    props = report.summary.get("dicom") or {}
    if not props:
        return ""
    classes = sorted({c for table in props.values() for counts in table.values() for c in counts})
    out = [("<h2>DICOM properties per class</h2><p class='muted'>Files per value and class; "
            "a value found in one class only is a confound a model can learn "
            "(see <code>class-confound</code>).</p>")]
    for key, table in props.items():
        rows = [[_e(value)] + [counts.get(c, 0) for c in classes]
                for value, counts in table.items()]
        out.append(f"<h3>{_e(_DICOM_LABELS.get(key, key))}</h3>")
        out.append(_table(["value"] + [f"class {c}" for c in classes], rows,
                          numeric=tuple(range(1, len(classes) + 1))))
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "" if x is None else format_number(x)


class _Plotter:
    """Matplotlib figures as ``<img>`` tags; built without pyplot, so no global state."""

    def __init__(self, figure_cls: type[Figure]) -> None:
        self.Figure = figure_cls

    @classmethod
    def create(cls) -> _Plotter | None:
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None
        return cls(Figure)

    def _img(self, fig: Figure, alt: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"

    def histogram(self, key: str, hist: dict[str, Any]) -> str:
        fig = self.Figure(figsize=(8, 2.8))
        ax = fig.add_subplot()
        edges = hist["edges"]
        colors = ("#444", "#c0392b", "#27ae60", "#2e86c1")
        for c, counts in enumerate(hist["counts"]):
            label = f"channel {c}" if len(hist["counts"]) > 1 else None
            ax.stairs(counts, edges, color=colors[c % 4], label=label)
        ax.set_yscale("symlog")
        ax.set_xlabel("value (as decoded)")
        ax.set_ylabel("pixels")
        ax.set_title(key)
        if len(hist["counts"]) > 1:
            ax.legend()
        return self._img(fig, f"histogram of {key}")

    def breakdown(self, rows: list[dict[str, Any]]) -> str:
        per_class: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in rows:
            label = f"{r['dtype']} {r['stored_bits']}-bit {r['channels']}ch"
            per_class[_class_name(r["class"])][label] += r["files"]
        classes = list(per_class)
        labels = sorted({k for v in per_class.values() for k in v})
        fig = self.Figure(figsize=(8, 0.5 + 0.3 * max(3, len(classes), len(labels))))
        ax = fig.add_subplot()
        left = [0] * len(classes)
        for label in labels:
            widths = [per_class[c].get(label, 0) for c in classes]
            ax.barh(classes, widths, left=left, label=label)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_xlabel("files")
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return self._img(fig, "files per class by dtype and stored bits")
