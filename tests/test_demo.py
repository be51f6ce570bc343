"""`preproc demo`: builds its dataset, shows each step, and leaves or removes the folder."""

from __future__ import annotations

import importlib.util

import pytest

from preproc.commands import main


def test_demo_keep(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", "--keep", str(target)]) == 0
    out = capsys.readouterr().out
    assert "error[compounded-scaling]" in out
    assert "wrong.yaml:11:5" in out  # the finding points at the rescale's line
    assert "unreadable-file" in out and "duplicate-image" in out and "mixed-bit-depth" in out
    assert (target / "report" / "report.html").is_file()
    assert (target / "report" / "report.json").is_file()
    assert "img/s" in out
    assert len(list((target / "chest").rglob("*.png"))) == 48 + 2 + 1 + 1
    if importlib.util.find_spec("pydicom") is not None:  # the DICOM step: stored values vs HU
        assert "error[dicom-stored-units]" in out
        assert "87.0% white" in out and "8.8% white" in out
    # the augmentation step: the fill and the brightness are caught at their lines, the fixed
    # config passes, and the contact sheet is drawn
    assert "augment-wrong.yaml:9:5: error[fill-out-of-range]" in out
    assert "augment-wrong.yaml:11:5: error[range-overflow]" in out
    assert "from stage 2 `brightness` (line 10)" in out
    assert (target / "augment-preview.png").is_file()


def test_demo_refuses_non_empty_keep_dir(tmp_path, capsys):
    (tmp_path / "x").write_text("mine")
    assert main(["demo", "--keep", str(tmp_path)]) == 2
    assert (tmp_path / "x").read_text() == "mine"


@pytest.mark.parametrize("argv", [["demo"]])
def test_demo_cleans_up_its_temporary_folder(argv, capsys, monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(argv) == 0
    assert list(tmp_path.iterdir()) == []

