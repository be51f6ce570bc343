"""`preproc audit` on the command line: outputs, exit codes, usage errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from builders import clean_dataset, config_for, messy_dataset

from preproc.commands import main


class _Page(HTMLParser):
    """Collects tags, sources of images and external references of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith("data:"):
                self.external.append(value)

    def handle_data(self, data):
        self.text.append(data)


def test_audit_text_report_and_stats(tmp_path, capsys):
    cfg = config_for(messy_dataset(tmp_path / "data"))
    out = tmp_path / "out"
    code = main(["audit", str(cfg), "--report", str(out), "--stats", str(tmp_path / "s.json"),
                 "--workers", "1"])
    assert code == 1
    text = capsys.readouterr().out
    assert "error[unreadable-file]" in text
    assert "suggested source block" in text and "bit_depth: 16" in text
    assert "2 could not be read" in text
    rows = _table_rows(text)  # the summary table: one row per class and kind, then the total
    assert rows["normal"][:3] == ["normal", "8", "8"]
    assert rows["pneumonia"][:3] == ["pneumonia", "4", "2"]
    assert rows["total"][:3] == ["total", "12", "10"]
    assert rows["empty"][:3] == ["empty", "0", "0"]
    assert "audit FAILED: 12 files, 10 read, 2 could not be read" in text
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "preproc-stats"
    assert (out / "report.html").is_file()


def test_audit_html_report_is_self_contained_with_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="the report's plots are drawn with matplotlib")
    out = tmp_path / "out"
    main(["audit", str(config_for(messy_dataset(tmp_path / "data"))), "--report", str(out),
          "--workers", "1"])
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.external == [] and "script" not in page.tags
    assert page.images and all(s.startswith("data:image/png;base64,") for s in page.images)
    body = " ".join(page.text)
    for heading in ("Findings", "Bit depth per class", "Values per dtype group",
                    "Suggested source block"):
        assert heading in body


def _table_rows(text: str) -> dict[str, list[str]]:
    """First table row of each class name: its cells, whatever box characters drew them."""
    import re

    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)[1:-1]]
        if cells and cells[0] and cells[0] not in rows:
            rows[cells[0]] = cells
    return rows


def test_html_without_matplotlib_says_so(tmp_path, monkeypatch):
    from preproc.auditing import audit

    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    report = audit(clean_dataset(tmp_path / "data", per_class=1), workers=1)
    page = _Page()
    page.feed(report.write(tmp_path / "out")["html"].read_text(encoding="utf-8"))
    assert len(page.images) == 2  # the contact sheet's two thumbnails (Pillow), no plot
    assert "matplotlib is not installed" in " ".join(page.text)


def test_audit_json_and_clean_exit(tmp_path, capsys):
    cfg = config_for(clean_dataset(tmp_path / "data", per_class=2))
    assert main(["audit", str(cfg), "--format", "json", "--workers", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"] == [] and doc["failed"] is False
    assert "files" not in doc and doc["summary"]["files"] == 4


def test_quick_json_has_no_values(tmp_path, capsys):
    root = messy_dataset(tmp_path / "data")
    assert main(["audit", str(root), "--quick", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "quick" and doc["stats"] is None and doc["groups"] == []


@pytest.mark.parametrize(("argv", "says"), [
    (["audit", "{missing}"], "no such config file or directory"),
    (["audit", "{root}", "--quick", "--stats", "{tmp}/s.json"], "drop --quick"),
    (["audit", "{root}", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
    (["audit", "{root}", "--workers", "0"], "--workers must be at least 1"),
])
def test_usage_errors_exit_2(tmp_path, capsys, argv, says):
    root = clean_dataset(tmp_path / "data", per_class=1)
    argv = [a.format(root=root, tmp=tmp_path, missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert says in captured.err and captured.out == ""
    assert not (tmp_path / "s.json").exists()


def test_no_progress_bar_when_piped(tmp_path, capsys):
    root = clean_dataset(tmp_path / "data", per_class=1)
    assert main(["audit", str(root), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "auditing" not in captured.err and "\x1b[" not in captured.err
    assert "audit passed: 2 files, 2 read" in captured.out
