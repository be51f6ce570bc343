"""`preproc audit --quick`: what a header-only audit computes, and what it says it did not."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from quality_fixtures import scene

from preproc.auditing import audit
from preproc.auditing.screen import QUICK_SKIPS
from preproc.commands import main

#: Findings that need the pixels: a quick audit must name each of them as not computed.
PIXEL_FINDINGS = {"duplicate-image", "constant-image", "near-duplicate", "label-conflict",
                  "blurry", "dark", "light", "low-information", "grayscale-in-rgb"}


def _dataset(root):
    """30 pictures of 64 px, a strip and a huge one; an exact and a resized copy."""
    rng = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    for i in range(30):
        img = np.round(scene(rng, 64, 64) * 255).astype(np.uint8)
        Image.fromarray(img).save(root / "a" / f"{i:02d}.png")
    Image.fromarray(np.round(scene(rng, 64, 16) * 255).astype(np.uint8)).save(root / "a" / "strip.png")
    Image.fromarray(np.round(scene(rng, 512, 512) * 255).astype(np.uint8)).save(root / "a" / "huge.png")
    Image.open(root / "a" / "00.png").save(root / "a" / "copy.png")
    Image.open(root / "a" / "01.png").resize((80, 80)).save(root / "a" / "resized.png")
    return root


def test_quick_finds_sizes_from_headers_and_lists_what_it_skipped(tmp_path):
    root = _dataset(tmp_path / "data")
    quick, full = audit(root, quick=True), audit(root, workers=1)
    assert PIXEL_FINDINGS <= set(quick.not_computed) and full.not_computed == {}
    assert {"near-duplicate", "duplicate-image"} <= full.codes  # the copies are really there
    assert not quick.codes & PIXEL_FINDINGS
    for code in ("odd-size", "odd-aspect-ratio"):  # header sizes suffice: same files as full
        found = {f.code: set(f.files) for f in quick.findings}
        assert found[code] == {f.code: set(f.files) for f in full.findings}[code]
    assert set(quick.to_json(files=False)["not_computed"]) == set(QUICK_SKIPS)
    assert full.to_json(files=False)["not_computed"] == {}


def test_quick_notice_in_terminal_json_and_html(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    main(["audit", str(root), "--quick", "--report", str(tmp_path / "out")])
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("not computed"))
    assert "--quick" in line and all(code in line for code in PIXEL_FINDINGS)
    main(["audit", str(root), "--quick", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "quick" and PIXEL_FINDINGS <= set(doc["not_computed"])
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Not computed" in page and all(f"<code>{code}</code>" in page for code in PIXEL_FINDINGS)
    main(["audit", str(root), "--workers", "1", "--report", str(tmp_path / "full")])
    assert "not computed" not in capsys.readouterr().out
    assert "Not computed" not in (tmp_path / "full" / "report.html").read_text(encoding="utf-8")
