"""Terminal output of ``preproc audit``: progress bar, summary table, findings, suggestion.

Uses :mod:`rich`. The progress bar appears only when stderr is a terminal; tables render plain
when stdout is piped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod
    from rich.table import Table

    from .report import AuditReport

__all__ = ["print_report", "progress_bar", "summary_table"]


@contextlib.contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """Yield a ``progress(done, total)`` callback; a rich bar on a terminal, else a no-op."""
    from rich.console import Console

    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("files"), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def summary_table(report: AuditReport) -> Table:
    """A rich table: one row per class and kind of file, with the class totals."""
    from rich.table import Table

    table = Table(title=f"{report.where}: {'headers' if report.quick else 'full audit'}",
                  title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("class", "left"), ("files", "right"), ("readable", "right"), ("format", "left"),
        ("dtype", "left"), ("stored bits", "right"), ("effective bits", "right"),
        ("ch", "right"), ("photometric", "left"), ("n", "right"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    rows_by_class: dict[str | None, list[dict[str, Any] | None]] = {}
    for row in report.summary["breakdown"]:
        rows_by_class.setdefault(row["class"], []).append(row)
    for entry in report.summary["classes"]:
        rows = rows_by_class.get(entry["class"]) or [None]
        for i, row in enumerate(rows):
            head = [_class(entry["class"]), str(entry["files"]), str(entry["readable"])] \
                if i == 0 else ["", "", ""]
            table.add_row(*head, *_kind_cells(row), end_section=i == len(rows) - 1)
    s = report.summary
    table.add_row("total", str(s["files"]), str(s["readable"]), *[""] * 7, style="bold")
    return table


def _kind_cells(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return [""] * 7
    eff = row["effective_bits"]
    return [row["format"] or "", row["dtype"] or "", _opt(row["stored_bits"]), _opt(eff),
            _opt(row["channels"]), row["photometric"] or "", str(row["files"])]


def _class(name: object) -> str:
    return "(root)" if name is None else str(name)


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def print_report(report: AuditReport, console: Console | None = None) -> None:
    """Summary table, findings (compiler style), suggested block and the verdict line.

    Findings and the YAML block are printed as plain text, never re-wrapped, so they can be
    grepped and pasted.
    """
    import sys

    from rich.console import Console

    if console is None:
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(summary_table(report))
    out = console.file
    for finding in report.findings:
        print(finding.format(), file=out)
    text = report.suggested_yaml()
    if text:
        print("\nsuggested source block (matches the data):", file=out)
        print(text.rstrip("\n"), file=out)
    if report.not_computed:
        print(not_computed_note(report), file=out)
    print(verdict(report), file=out)


def not_computed_note(report: AuditReport) -> str:
    """The findings a quick audit did not look for, so their absence is not read as a pass."""
    return ("not computed (--quick reads headers only; run a full audit for these): "
            + ", ".join(report.not_computed))


def verdict(report: AuditReport) -> str:
    """``audit FAILED: 120 files, 118 read, 2 could not be read; 1 error, 2 warnings``."""
    from ..findings import Severity

    s = report.summary
    counts = {sev: sum(f.severity == sev for f in report.findings) for sev in Severity}
    parts = [f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in
             sorted(counts.items(), reverse=True) if n]
    head = f"audit {'FAILED' if report.failed else 'passed'}: {s['files']} files, " \
           f"{s['readable']} read, {s['unreadable']} could not be read"
    if s["lossy"]:
        head += f", {s['lossy']} only lossily"
    return head + "; " + (", ".join(parts) if parts else "no findings")
