"""``preproc run``: exit codes, throughput line, guard findings, --out."""

from __future__ import annotations

import json

from builders import flow_config, rgb_dataset

from preproc.commands import main


def test_run_prints_throughput_and_exits_0(tmp_path, capsys):
    rgb_dataset(tmp_path / "d", per_class=4)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=3)
    assert main(["run", str(cfg.path), "--epochs", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "16 images in 3 batches x 2 epoch(s)" in out and "img/s" in out


def test_runtime_violation_exits_1_and_is_printed(tmp_path, capsys):
    rgb_dataset(tmp_path / "d", per_class=4)
    cfg = flow_config(tmp_path, tmp_path / "d", expect={"dtype": "uint8", "range": [0, 100]},
                       target_size=[8, 8], batch_size=4)
    assert main(["run", str(cfg.path), "--workers", "0"]) == 1
    assert "error[runtime-range-violation]" in capsys.readouterr().out


def test_run_out_writes_shards_and_bad_usage_exits_2(tmp_path, capsys):
    rgb_dataset(tmp_path / "d", per_class=2)
    cfg = flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=3,
                       validation_split=0.5)
    out = tmp_path / "out"
    assert main(["run", str(cfg.path), "--subset", "validation", "--out", str(out)]) == 0
    assert json.loads((out / "index.json").read_text())["images"] == 2
    assert main(["run", str(cfg.path), "--out", str(out), "--epochs", "3"]) == 2
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
