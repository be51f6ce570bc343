"""The guard's non-finite scan and its proof that a pipeline cannot make NaN or infinity, pinned
at exact values: which rows are reported and how, and where the proof holds or gives up (the
float limits, overflowing factors, integer containers' full ranges, unknown declarations)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from preproc.batches.guard import _representable, check_finite, finite_by_construction
from preproc.findings import Location
from preproc.spec import Interval, ValueSpec
from preproc.stages.builtin import Invert, Rescale, ToDtype
from preproc.stages.pipeline import Pipeline

F16_MAX = float(np.finfo(np.float16).max)   # 65504
F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
CONFIG = SimpleNamespace(path=Path("/data/cfg.yaml"))
HINT = ("the files hold NaN or inf (run `preproc audit`), or a stage divides by zero; repair "
        "or drop the files before training on them")


def _batch(rows=3, bad=()):
    """``rows`` float32 images of 2x2x1 ones; ``bad`` maps row -> values written into it."""
    x = np.ones((rows, 2, 2, 1), dtype=np.float32)
    for r, values in dict(bad).items():
        x[r].flat[:len(values)] = values
    return x


# --- check_finite -------------------------------------------------------------------------

def test_the_finding_names_only_the_rows_holding_non_finite_values():
    x = _batch(4, {1: [np.nan, np.inf], 3: [-np.inf]})
    f = check_finite(x, ["a.png", "b.png", "c.png", "d.png"], 7, 2, CONFIG)
    assert f is not None
    assert f.code == "non-finite-values"
    assert f.message == "batch 7 of epoch 2 holds 3 NaN or infinite value(s) in 2 image(s)"
    assert f.hint == HINT
    assert f.files == ("b.png", "d.png")
    assert f.count == 2
    assert f.data == {"batch": 7, "epoch": 2, "values": 3}
    assert f.location == Location(file="/data/cfg.yaml")
    assert f.stage is None


def test_a_single_bad_row_that_is_not_the_first_is_the_one_named():
    f = check_finite(_batch(3, {1: [np.nan]}), ["a", "b", "c"], 0, 0)
    assert f is not None
    assert f.files == ("b",)
    assert f.count == 1
    assert f.data == {"batch": 0, "epoch": 0, "values": 1}
    assert f.message == "batch 0 of epoch 0 holds 1 NaN or infinite value(s) in 1 image(s)"


def test_every_value_of_a_row_counts():
    f = check_finite(_batch(2, {0: [np.nan, np.nan, np.inf, -np.inf]}), ["a", "b"], 1, 1)
    assert f is not None
    assert f.data["values"] == 4
    assert f.files == ("a",)


def test_files_are_capped_at_ten_but_the_count_is_every_bad_image():
    x = np.full((12, 1, 1, 1), np.nan, dtype=np.float64)
    names = [f"f{i:02d}" for i in range(12)]
    f = check_finite(x, names, 0, 3)
    assert f is not None
    assert f.files == tuple(names[:10])
    assert f.count == 12
    assert f.data == {"batch": 0, "epoch": 3, "values": 12}


@pytest.mark.parametrize("config", [None, SimpleNamespace(path=None), SimpleNamespace()])
def test_no_config_path_means_no_file_in_the_location(config):
    f = check_finite(_batch(1, {0: [np.inf]}), ["a"], 0, 0, config)
    assert f is not None
    assert f.location == Location(file=None)


def test_finite_float_empty_and_non_float_batches_report_nothing():
    assert check_finite(_batch(3), ["a", "b", "c"], 0, 0) is None
    assert check_finite(np.zeros((0, 2, 2, 1), np.float32), [], 0, 0) is None
    assert check_finite(np.full((1, 2, 2, 1), 255, np.uint8), ["a"], 0, 0) is None
    # only real float batches are scanned: a complex container is not a float batch
    assert check_finite(np.full((1, 1, 1, 1), complex(np.nan, 0)), ["a"], 0, 0) is None


def test_float16_infinity_is_found():
    x = np.array([[[[F16_MAX]]], [[[np.inf]]]], dtype=np.float16)
    f = check_finite(x, ["a", "b"], 0, 0)
    assert f is not None and f.files == ("b",)


# --- _representable -----------------------------------------------------------------------

@pytest.mark.parametrize(("interval", "dtype", "expected"), [
    (Interval(0.0, 1.0), "float32", True),
    (Interval(0.0, np.inf), "float32", False),           # unbounded proves nothing
    (Interval(-np.inf, 0.0), "uint8", False),
    (Interval(0.0, F32_MAX), "float32", False),          # strictly inside the finite range
    (Interval(-F32_MAX, 0.0), "float32", False),
    (Interval(0.0, float(np.nextafter(np.float32(F32_MAX), np.float32(0)))), "float32", True),
    (Interval(-1.0, 1e39), "float32", False),
    (Interval(-1.0, 1e39), "float64", True),
    (Interval(-1e39, 1.0), "float64", True),
    (Interval(0.0, F64_MAX), "float64", False),
    (Interval(0.0, 65535.0), "float16", False),
    (Interval(0.0, F16_MAX), "float16", False),
    (Interval(0.0, 65503.0), "float16", True),
    (Interval(0.0, 1e39), None, False),                 # unknown dtype is judged as float32
    (Interval(0.0, 1e38), None, True),
    (Interval(0.0, 1e300), "uint8", True),               # integer results cannot be infinite
    (Interval(0.0, 255.0), np.dtype(np.int16), True),
])
def test_representable_at_the_float_limits(interval, dtype, expected):
    assert _representable(interval, dtype) is expected


# --- finite_by_construction ---------------------------------------------------------------

U16 = ValueSpec(dtype="uint16", interval=Interval(0.0, 65535.0), channels=3)
U8 = ValueSpec(dtype="uint8", interval=Interval(0.0, 255.0), channels=3)


def _pipe(*stages, entry=U16):
    built = [s(params, index=i) for i, (s, params) in enumerate(stages)]
    return Pipeline(built, entry, entry)


def _proven(pipe, rows, out="float32"):
    return finite_by_construction(pipe, np.dtype(rows), np.dtype(out))


def test_integer_rows_through_a_unit_rescale_are_proven_finite():
    pipe = _pipe((Rescale, {"factor": 1 / 255}), entry=U8)
    for rows in ("uint8", "uint16", "int32", "int64", "uint64", "bool"):
        assert _proven(pipe, rows), rows
    assert not _proven(pipe, "float32")
    assert not _proven(pipe, "float64")


def test_the_proof_uses_the_container_range_not_the_declaration():
    # declared 8-bit, yet uint16 rows times 1e35 reach 6.6e39: beyond float32
    big = _pipe((Rescale, {"factor": 1e35}), entry=U8)
    assert _proven(big, "uint8")
    assert not _proven(big, "uint16")
    assert not _proven(big, "int32")


def test_an_unknown_declaration_still_gets_a_proof_from_the_container():
    pipe = _pipe((Rescale, {"factor": 1 / 255}), entry=ValueSpec.unknown(3))
    assert _proven(pipe, "uint8")
    assert _proven(pipe, "uint16")


def test_no_stages_judges_the_container_range_against_the_output_dtype():
    empty = Pipeline([], U16, U16)
    assert _proven(empty, "uint16", "float32")
    assert _proven(empty, "uint8", "float16")
    assert not _proven(empty, "uint16", "float16")   # 65535 is beyond float16's 65504
    assert _proven(empty, "uint16", "uint16")


def test_the_output_dtype_limits_the_last_stage():
    pipe = _pipe((Rescale, {"factor": 1}))
    assert _proven(pipe, "uint16", "float32")
    assert not _proven(pipe, "uint16", "float16")
    assert _proven(pipe, "uint8", "float16")


def test_a_float16_stage_reaching_its_largest_value_proves_nothing():
    # invert saturates uint16 at 0, so the float16 cast sees exactly [0, 65504]: not strictly
    # inside float16's finite range, however representable float32 finds it
    pipe = _pipe((Invert, {"max": F16_MAX}), (ToDtype, {"dtype": "float16"}))
    assert pipe.bind_findings == []
    assert not _proven(pipe, "uint16")
    smaller = _pipe((Invert, {"max": 65000}), (ToDtype, {"dtype": "float16"}))
    assert _proven(smaller, "uint16")


def test_a_stage_finding_ends_the_proof_even_with_a_finite_result():
    # a factor of 1e-300 underflows every value to 0 (degenerate-output): finite, yet unproven
    pipe = _pipe((Rescale, {"factor": 1e-300}))
    assert [f.code for f in pipe.bind_findings] == ["degenerate-output"]
    assert pipe.specs[-1].known
    assert not _proven(pipe, "uint16")


def test_the_cast_sees_the_rows_dtype_so_scaling_uses_its_full_scale():
    # scaled to float32, uint16 rows become [0, 1]; times 1e35 stays below float32's max
    pipe = _pipe((ToDtype, {"dtype": "float32", "scale": True}), (Rescale, {"factor": 1e35}))
    assert _proven(pipe, "uint16")
    assert _proven(pipe, "uint8")


def test_an_overflowing_stage_then_a_shrinking_one_proves_nothing():
    pipe = _pipe((Rescale, {"factor": 1e35}), (Rescale, {"factor": 1e-35}))
    assert not _proven(pipe, "uint16")
    assert _proven(pipe, "uint8")
