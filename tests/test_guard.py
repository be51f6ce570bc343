"""The runtime guard: a measured batch against each stage's inferred interval, bounds and NaN."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from preproc.batches.guard import check_batch
from preproc.spec import Interval


def _pipeline(*intervals):
    stages = [SimpleNamespace(index=i, name=f"s{i}", line=5 + i) for i in range(len(intervals))]
    specs = [SimpleNamespace(interval=Interval(lo, hi)) for lo, hi in intervals]
    return SimpleNamespace(stages=stages, specs=specs)


CONFIG = SimpleNamespace(path=Path("/data/cfg.yaml"))
FILES = ["a.png", "b.png", "c.png"]


def _one(stats, intervals=((0.0, 1.0),)):
    return check_batch(_pipeline(*intervals), CONFIG, 3, 2, FILES[:len(stats)], stats)


@pytest.mark.parametrize(("stat", "bad"), [
    ((0.0, 1.0, False), False),        # exactly the inferred bounds
    ((0.25, 0.75, False), False),
    ((-1e-6, 0.5, False), True),       # below the lower bound only
    ((0.5, 1.000001, False), True),    # above the upper bound only
    ((0.2, 0.8, True), True),          # NaN inside an otherwise fine range
])
def test_each_bound_and_nan_is_held(stat, bad):
    found = _one([[stat]])
    assert [f.code for f in found] == (["runtime-range-violation"] if bad else [])


def test_finding_names_the_offending_files_stage_and_extremes():
    stats = [[(0.0, 0.5, False), (0.1, 0.2, False)],    # fine everywhere
             [(-0.5, 0.9, False), (0.1, 0.2, False)],   # stage 0 below
             [(0.2, 0.4, False), (0.1, 0.3, True)]]     # stage 1 NaN
    found = check_batch(_pipeline((0.0, 1.0), (0.0, 0.5)), CONFIG, 3, 2, FILES, stats)
    below, nan = found
    assert (below.stage, below.stage_name, below.files, below.count) == (0, "s0", ("b.png",), 1)
    assert below.data == {"batch": 3, "epoch": 2, "observed": [-0.5, 0.9], "inferred": [0.0, 1.0]}
    assert (nan.stage, nan.files) == (1, ("c.png",))
    assert nan.data["observed"] == [0.1, 0.3]  # extremes over every measured image of the batch
    assert below.location.file == str(CONFIG.path) and below.location.line == 5
    assert nan.location.line == 6
    for text in ("stage 0 `s0` (line 5)", "[-0.5, 0.9]", "[0, 1]", "batch 3 of epoch 2",
                 "1 image(s)"):
        assert text in below.message
    assert "source.expect" in below.hint and "infer()" in below.hint


def test_unmeasured_images_are_skipped_and_no_config_means_no_file():
    stats = [None, [(-2.0, -1.0, False)], []]
    (f,) = check_batch(_pipeline((0.0, 1.0)), None, 0, 0, FILES, stats)
    assert f.files == ("b.png",) and f.data["observed"] == [-2.0, -1.0]
    assert f.location.file is None
    stage = SimpleNamespace(index=0, name="s0", line=None)
    pipeline = SimpleNamespace(stages=[stage], specs=[SimpleNamespace(interval=Interval(0, 1))])
    (g,) = check_batch(pipeline, SimpleNamespace(), 0, 0, ["a"], [[(2.0, 3.0, False)]])
    assert g.message == ("stage 0 `s0` produced values in [2, 3] outside its inferred [0, 1] in "
                         "batch 0 of epoch 0 (1 image(s))")
    assert g.hint == ("the files do not match source.expect (run `preproc audit`), or a plugin "
                      "stage's infer() is not sound; fix the declaration or the stage")
    assert g.location.file is None and g.location.line is None
    assert check_batch(_pipeline((0.0, 1.0)), None, 0, 0, FILES, [None, None, None]) == []


def test_flow_reports_values_below_the_declared_range(tmp_path):
    """End to end: data darker than source.expect declares leaves every stage's lower bound."""
    from builders import flow_config as write_config, rgb_dataset

    from preproc.batches.flow import RuntimeRangeWarning, flow

    rgb_dataset(tmp_path / "d", per_class=4)  # random values reach down to 0
    cfg = write_config(tmp_path, tmp_path / "d", expect={"dtype": "uint8", "range": [200, 255]},
                       target_size=[8, 8], batch_size=4, shuffle=False, runtime=1)
    it = flow(cfg, workers=0, check=False)  # the static check would only warn of underuse
    with pytest.warns(RuntimeRangeWarning, match="stage 0 `rescale`"):
        list(it)
    it.close()
    (f,) = it.findings
    assert f.data["inferred"] == [pytest.approx(200 / 255), pytest.approx(1.0)]
    assert f.data["observed"][0] < 200 / 255 and f.data["observed"][1] <= 1.0
