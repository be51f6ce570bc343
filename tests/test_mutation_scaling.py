"""The ``normalize`` stage: its params, stats files, inferred interval and unit findings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from preproc import ConfigError, Interval, ValueSpec
from preproc.spec import ScaleStep
from preproc.stages.base import StageContext
from preproc.stages.scaling import Normalize, _as_list, _broadcast, load_stats

UNIT = ValueSpec.for_dtype("float32", interval=(0, 1))


def _iv(spec):
    return (spec.interval.lo, spec.interval.hi)


def _img(values, dtype=np.float32):
    return np.array(values, dtype=dtype).reshape(1, -1, 1)


@pytest.mark.parametrize("params, message", [
    ({"mean": 0.5}, "give `mean` and `std`, or `mode: samplewise` or `mode: featurewise`"),
    ({"std": 0.5}, "give `mean` and `std`"),
    ({"mode": "samplewise", "mean": 0.5}, "`mode: samplewise` computes mean and std itself"),
    ({"mode": "featurewise", "std": 0.5}, "`mode: featurewise` computes mean and std itself"),
    ({"mode": "samplewise", "stats": "s.json"}, "`stats` goes with `mode: featurewise`"),
    ({"mean": 0.5, "std": 0.0}, "every std must be positive"),
    ({"mean": 0.5, "std": [1.0, -1.0]}, "every std must be positive"),
    ({"mean": [1, 2], "std": [1, 2, 3]}, "one value each, or one per channel"),
    ({"mean": [], "std": 1}, "one value each, or one per channel"),
])
def test_params_refuse_inconsistent_statistics(params, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Normalize(params)


def test_params_accept_scalars_lists_and_broadcasting():
    assert Normalize({"mean": 1, "std": [1, 2, 3]}).mean == [1.0]
    assert Normalize({"mean": [1, 2, 3], "std": 2}).std == [2.0]
    assert Normalize({"mean": [1, 2], "std": [3, 4]}).std == [3.0, 4.0]
    assert Normalize({"mode": "featurewise", "stats": None}).needs_fit
    assert Normalize({"mode": "samplewise"}).mean == []


def test_list_helpers():
    assert _as_list(None) == []
    assert _as_list(3) == [3.0]
    assert _as_list([1, 2]) == [1.0, 2.0]
    assert _broadcast([1.0, 2.0], 2) == [1.0, 2.0]
    assert _broadcast([5.0], 3) == [5.0, 5.0, 5.0]


def _stats(tmp_path, payload, name="stats.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_load_stats_reads_mean_std_and_space(tmp_path):
    path = _stats(tmp_path, {"mean": [1, 2], "std": [3, 4], "space": "scaled"})
    assert load_stats(path) == ([1.0, 2.0], [3.0, 4.0], "scaled")
    path = _stats(tmp_path, {"mean": [1], "std": [3]})
    assert load_stats(path) == ([1.0], [3.0], "raw")


@pytest.mark.parametrize("payload, message", [
    ("{", "is not valid"),
    ({"mean": [1]}, "is not valid: 'std'"),
    ({"mean": 1, "std": [1]}, "is not valid"),
    ({"mean": ["x"], "std": [1]}, "is not valid"),
    ({"mean": [1, float("nan")], "std": [1, 1]}, "holds a NaN or infinite mean/std"),
    ({"mean": [1], "std": [float("inf")]}, "holds a NaN or infinite mean/std"),
    ({"mean": [1, 2], "std": [1]}, "needs equal-length `mean` and positive `std` lists"),
    ({"mean": [], "std": []}, "needs equal-length"),
    ({"mean": [1, 2], "std": [1, 0]}, "needs equal-length"),
    ({"mean": [1], "std": [-1]}, "needs equal-length"),
])
def test_load_stats_refuses_bad_files(tmp_path, payload, message):
    path = _stats(tmp_path, payload)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        load_stats(path)
    assert str(path) in str(info.value)


def test_a_missing_stats_file_says_how_to_write_it(tmp_path):
    with pytest.raises(ConfigError, match="not found") as info:
        load_stats(tmp_path / "nope.json")
    assert info.value.hint == "write it with `preproc audit --stats`"


def test_stats_are_read_relative_to_the_config(tmp_path):
    _stats(tmp_path, {"mean": [10, 20], "std": [2, 4]}, "s.json")
    stage = Normalize({"mode": "featurewise", "stats": "s.json"},
                      context=StageContext(base_dir=str(tmp_path)))
    assert (stage.mean, stage.std, stage.stats_space) == ([10.0, 20.0], [2.0, 4.0], "raw")
    assert not stage.needs_fit
    assert Normalize({"mean": 1, "std": 1}).stats_space is None


def test_traits_and_fitting():
    assert Normalize({"mode": "samplewise"}).traits().elementwise is False
    assert Normalize({"mean": 1, "std": 1}).traits().elementwise is True
    assert Normalize({"mean": 1, "std": 1}).traits().changes_scale is True
    assert not Normalize({"mean": 1, "std": 1}).needs_fit
    assert not Normalize({"mode": "samplewise"}).needs_fit
    raw = Normalize({"mode": "featurewise"}, index=3, line=7, column=2)
    fit = raw.fitted([np.float64(1.5), 2], [0.0, 4])
    assert (fit.mean, fit.std) == ([1.5, 2.0], [1e-12, 4.0])
    assert (fit.index, fit.line, fit.column, fit.context) == (3, 7, 2, raw.context)
    assert not fit.needs_fit and raw.needs_fit


def test_a_per_channel_count_must_match_the_images():
    stage = Normalize({"mean": [1, 2], "std": 1}, index=2, line=9, column=4,
                      context=StageContext(file="cfg.yaml"))
    with pytest.raises(ConfigError, match="has 2 mean/std values but the images have 3 "
                                          "channels") as info:
        stage.infer(ValueSpec("float32", Interval(0.0, 1.0), channels=3))
    err = info.value
    assert (err.file, err.line, err.column, err.path) == ("cfg.yaml", 9, 4,
                                                          "stages[2].normalize")
    assert err.hint == ("give one value, or one per channel (color_mode decides the channel "
                        "count)")
    for channels in (None, 2):
        stage.infer(ValueSpec("float32", Interval(0.0, 1.0), channels=channels))
    Normalize({"mean": 1, "std": 1}).infer(ValueSpec("float32", Interval(0.0, 1.0), channels=3))


def test_infer_takes_the_hull_over_channels():
    stage = Normalize({"mean": [0, 10], "std": [1, 2]})
    out = stage.infer(ValueSpec("float32", Interval(0.0, 20.0), channels=2))
    assert (out.dtype, _iv(out)) == ("float32", (-5.0, 20.0))
    assert out.scaled_by[-1].name == "normalize"
    out = Normalize({"mean": 4, "std": [2, 4]}).infer(ValueSpec("float32", Interval(0.0, 8.0)))
    assert _iv(out) == (-2.0, 2.0)
    out = Normalize({"mean": 0.5, "std": 0.25}).infer(UNIT)
    assert _iv(out) == (-2.0, 2.0)
    free = Normalize({"mode": "samplewise"}).infer(UNIT)
    assert (free.dtype, _iv(free), free.bits) == ("float32", (-math.inf, math.inf), None)


def test_apply_in_each_mode():
    x = _img([0, 2])
    np.testing.assert_array_equal(Normalize({"mean": 1, "std": 2}).apply_alone(x).ravel(),
                                  [-0.5, 0.5])
    np.testing.assert_array_equal(
        Normalize({"mode": "samplewise", "epsilon": 1.0}).apply_alone(x).ravel(), [-0.5, 0.5])
    with pytest.raises(ValueError, match="stage 0 `normalize`: featurewise statistics are not "
                                         "computed yet"):
        Normalize({"mode": "featurewise"}).apply_alone(x)


def test_raw_stats_after_a_scaling_stage_are_in_the_wrong_units(tmp_path):
    _stats(tmp_path, {"mean": [100], "std": [50]}, "s.json")
    stage = Normalize({"mode": "featurewise", "stats": "s.json"}, index=1, line=4,
                      context=StageContext(base_dir=str(tmp_path)))
    scaled = ValueSpec("float32", Interval(0.0, 1.0),
                       scaled_by=(ScaleStep(0, "rescale", 3),))
    (f,) = stage.extra_findings(scaled)
    assert f.code == "normalize-units"
    assert f.message == ("stage 1 `normalize` (line 4) reads statistics of the raw file values "
                         "from 's.json', but stage 0 `rescale` (line 3) changed the scale "
                         "before it")
    assert f.hint == ("drop `stats:` so they are computed at this stage's position, or move "
                      "normalize before the scaling stage")
    raw = ValueSpec("float32", Interval(0.0, 4095.0))
    assert stage.extra_findings(raw) == []
    _stats(tmp_path, {"mean": [100], "std": [50], "space": "scaled"}, "t.json")
    other = Normalize({"mode": "featurewise", "stats": "t.json"},
                      context=StageContext(base_dir=str(tmp_path)))
    (g,) = other.extra_findings(scaled)  # measured after scaling: only the units rule speaks
    assert g.message.startswith("stage 0 `normalize` uses mean/std in raw units")


def test_unit_mismatch_between_statistics_and_input():
    small = Normalize({"mean": 0.5, "std": 0.25})
    (f,) = small.extra_findings(ValueSpec.for_dtype("uint8"))
    assert f.message == ("stage 0 `normalize` uses mean/std in [0, 1] units but receives "
                         "[0, 255]")
    assert f.hint == ("rescale to [0, 1] before normalize (e.g. rescale: {factor: 1/255}), or "
                      "give mean/std in the input's units")
    big = Normalize({"mean": 127.5, "std": 64})
    (g,) = big.extra_findings(UNIT)
    assert g.message == ("stage 0 `normalize` uses mean/std in raw units (up to 127.5) but "
                         "receives [0, 1]")
    assert g.hint == "divide mean and std by the raw range, or normalize before rescaling"
    # the boundaries: width 2 and statistics of magnitude 1 or 2 are still consistent
    edge = ValueSpec("float32", Interval(-1.0, 1.0))
    assert Normalize({"mean": -2, "std": 2}).extra_findings(edge) == []
    assert Normalize({"mean": -1, "std": 1}).extra_findings(edge) == []
    assert [f.code for f in Normalize({"mean": -1, "std": 1}).extra_findings(
        ValueSpec("float32", Interval(-1.0, 1.01)))] == ["normalize-units"]
    assert [f.code for f in Normalize({"mean": 0, "std": 2.01}).extra_findings(edge)] == \
        ["normalize-units"]
    assert [f.code for f in Normalize({"mean": 1.01, "std": 1}).extra_findings(
        ValueSpec.for_dtype("uint8"))] == []
    # nothing to compare against
    assert small.extra_findings(ValueSpec.unknown()) == []
    assert small.extra_findings(ValueSpec("float32", Interval(0.0, math.inf))) == []
    assert Normalize({"mode": "samplewise"}).extra_findings(ValueSpec.for_dtype("uint8")) == []


# --- cases that separate near-identical rules ----------------------------------------------

def test_stds_between_zero_and_one_are_valid(tmp_path):
    path = _stats(tmp_path, {"mean": [0.5], "std": [0.25]})
    assert load_stats(path) == ([0.5], [0.25], "raw")


def test_a_fitted_stage_keeps_its_place_contract_and_context(tmp_path):
    from preproc.stages.base import Expects

    context = StageContext(base_dir=str(tmp_path), file="cfg.yaml")
    expects = Expects(range=(0, 1))
    raw = Normalize({"mode": "featurewise"}, expects=expects, context=context)
    fit = raw.fitted([1], [2])
    assert fit.expects is expects and fit.context is context


def test_unfitted_statistics_leave_the_levels_behind():
    out = Normalize({"mode": "samplewise"}).infer(ValueSpec.for_dtype("uint16", bits=12))
    assert out.bits is None


def test_inference_warns_about_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Normalize({"mean": 0, "std": 1e-30}).infer(
            ValueSpec("float32", Interval(0.0, 3e38)))
    assert _iv(out) == (0.0, math.inf)


def test_a_per_channel_hull_over_a_known_range():
    stage = Normalize({"mean": [0, 1, 2], "std": [1, 1, 1]})
    out = stage.infer(ValueSpec("float32", Interval(0.0, 1.0), channels=3))
    assert _iv(out) == (-2.0, 1.0)


def test_raw_statistics_on_a_range_just_over_two_wide_are_consistent():
    edge = ValueSpec("float32", Interval(0.0, 2.5))
    assert Normalize({"mean": 100, "std": 50}).extra_findings(edge) == []
