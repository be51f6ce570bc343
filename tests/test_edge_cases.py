"""Edge cases found in review: 64-bit limits, bool, cascades, unknown sources, odd params."""

from __future__ import annotations

import numpy as np
import pytest

from preproc import ConfigError, Pipeline, ValueSpec, check, load_config, registered_stages
from preproc.commands import main
from preproc.stages import functional as F


def codes(write_config, text):
    return check(load_config(write_config(text)), sample=0).codes


def stage(name, **params):
    return registered_stages()[name](params)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "uint32"])
def test_rescale_inference_is_sound_at_64_bit_limits(dtype):
    spec = ValueSpec.for_dtype(dtype)
    s = stage("rescale", factor=1 / 255)
    info = np.iinfo(dtype)
    x = np.array([[[info.min, info.max]]], dtype=dtype)
    out = s.apply_alone(x)
    iv = s.infer(spec).interval
    assert iv.lo <= out.min() and out.max() <= iv.hi and iv.lo < iv.hi


def test_casts_saturate_at_64_bit_limits():
    assert F.cast(np.array([[[255]]], np.uint8), "int64", True)[0, 0, 0] > 0
    top32 = int(np.nextafter(np.float32(2.0**63), np.float32(0)))  # largest float32 < 2**63
    assert F.cast(np.array([[[1e30, -1e30]]], np.float32), "int64", False).tolist() == [
        [[top32, np.iinfo(np.int64).min]]]
    assert F.cast(np.array([[[2**64 - 1]]], np.uint64), "int64", False)[0, 0, 0] == np.iinfo(np.int64).max
    assert F.cast(np.array([[[1.0, 6e4]]], np.float16), "uint64", False).tolist() == [[[1, 60000]]]


def test_bool_data_casts_and_inverts():
    x = np.array([[[True, False]]])
    assert F.cast(x, "uint8", True).tolist() == [[[255, 0]]]
    assert F.invert(x, 1).tolist() == [[[False, True]]]
    s = stage("to_dtype", dtype="bool")
    spec = ValueSpec.for_dtype("int8")
    out = s.apply_alone(np.array([[[-3, 0, 5]]], np.int8))
    assert s.infer(spec).interval.contains(
        type(s.infer(spec).interval)(float(out.min()), float(out.max())))


def test_gamma_never_produces_nan():
    out = F.gamma(np.array([[[-0.5, 0.25]]], np.float32), 0.5)
    assert out.tolist() == [[[0.0, 0.5]]]


def test_normalize_lists_must_agree(write_config):
    with pytest.raises(ConfigError, match="same length"):
        load_config(write_config("version: 1\nstages:\n  - normalize: {mean: [1, 2, 3], std: [1, 2]}\n"))
    with pytest.raises(ConfigError, match="same length"):
        load_config(write_config("version: 1\nstages:\n  - normalize: {mean: [], std: []}\n"))
    # a scalar mean with per-channel std broadcasts, and its inference covers every channel
    path = write_config("""\
        version: 1
        source: {expect: {dtype: uint8}}
        stages:
          - rescale: {factor: 1/255}
          - normalize: {mean: 0.5, std: [0.5, 0.01, 0.5]}
        """)
    pipe = Pipeline.from_config(load_config(path))
    assert pipe.specs[-1].interval.hi == pytest.approx(50, rel=1e-4)
    out = pipe.apply(np.full((2, 2, 3), 255, np.uint8), guard=True)
    assert out.max() == pytest.approx(50, rel=1e-4)


def test_rgba_alpha_widens_float_entry_interval(write_config):
    path = write_config("""\
        version: 1
        source: {expect: {dtype: float32, range: [0, 0.5], channels: 1}}
        stages:
          - rescale: {factor: 2}
        batches: {color_mode: rgba}
        """)
    pipe = Pipeline.from_config(load_config(path))
    assert pipe.entry_spec.interval.hi == 1.0 and pipe.specs[-1].interval.hi == 2.0


@pytest.mark.parametrize("text", [
    "  - window: {center: 0.5, width: 1e-9}\n",
    "  - rescale_intensity: {in_range: [100, 100.000001]}\n",
    "  - clahe: {kernel_size: 0}\n",
])
def test_parameters_that_cannot_compute_are_config_errors(write_config, text):
    with pytest.raises(ConfigError):
        load_config(write_config("version: 1\nstages:\n" + text))


def test_one_mistake_is_reported_once(write_config):
    expect = "version: 1\nsource: {expect: {dtype: uint16, bit_depth: 12}}\nstages:\n"
    assert codes(write_config, expect + "  - rescale: {factor: 1/65535}\n  - gamma: {gamma: 0.8}\n") \
        == {"range-underuse"}
    assert codes(write_config, expect + "  - rescale_intensity: {in_range: bit_depth}\n"
                 "  - window: {center: 400, width: 200}\n  - gamma: {gamma: 2}\n") == {"degenerate-output"}


def test_repair_keeps_the_scaling_history(write_config):
    text = ("version: 1\nsource: {expect: {dtype: uint8}}\nstages:\n"
            "  - normalize: {mode: samplewise}\n  - gamma: {gamma: 2.2}\n  - rescale: {factor: 1/255}\n")
    report = check(load_config(write_config(text)), sample=0)
    assert report.codes == {"unbounded-input", "compounded-scaling"}
    assert report.failed


def test_unknown_source_still_catches_clahe_then_rescale(write_config):
    text = "version: 1\nstages:\n  - clahe: {}\n  - rescale: {factor: 1/255}\n"
    assert codes(write_config, text) == {"source-unknown", "compounded-scaling"}


def test_factor_one_expects_nothing(write_config):
    text = "version: 1\nsource: {expect: {dtype: uint8}}\nstages:\n  - rescale: {factor: 1, offset: -127.5}\n"
    assert codes(write_config, text) == set()


def test_integer_bit_depth_modes_need_integer_input(write_config):
    text = ("version: 1\nsource: {expect: {dtype: float32, range: [0, 1]}}\nstages:\n"
            "  - rescale_intensity: {in_range: bit_depth}\n  - gamma: {gamma: 2}\n")
    assert codes(write_config, text) == {"dtype-mismatch"}


def test_integer_clip_between_two_integers_is_degenerate(write_config):
    text = "version: 1\nsource: {expect: {dtype: uint8}}\nstages:\n  - clip: {min: 0.3, max: 0.7}\n"
    assert codes(write_config, text) == {"degenerate-output"}


def test_safety_clip_wider_than_data_is_clean(write_config):
    text = ("version: 1\nsource: {expect: {dtype: uint8}}\nstages:\n"
            "  - normalize: {mean: 127.5, std: 127.5}\n  - clip: {min: -5, max: 5}\n")
    assert codes(write_config, text) == set()


@pytest.mark.parametrize("text, fragment", [
    ("source: {expect: {dtype: uint16, bit_depth: 12, range: [0, 65535]}}\n", "does not fit in 12 bits"),
    ("batches: {classes: [a, b, a]}\n", "listed twice"),
    ("batches: {color_mode: greyscale}\n", "did you mean `grayscale`"),
    ('source: {directory: "a\\0b"}\n', "bad path"),
])
def test_more_config_errors(write_config, text, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(write_config("version: 1\n" + text))
    assert fragment in str(info.value)


def test_internal_errors_exit_2_not_1(monkeypatch, capsys, write_config):
    import sys

    check_mod = sys.modules["preproc.analysis"]

    def boom(*a, **k):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(check_mod, "check_pipeline", boom)
    path = write_config("version: 1\n")
    assert main(["check", str(path), "--sample", "0"]) == 2
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err


def test_out_of_memory_names_what_bounds_the_commands_memory(monkeypatch, capsys, tmp_path):
    """An audit's memory is bounded by its workers and the largest image they decode, not by
    batch settings it does not use."""
    import preproc.auditing as auditing

    def no_room(*a, **k):
        raise MemoryError

    monkeypatch.setattr(auditing, "audit", no_room)
    (tmp_path / "d").mkdir()
    assert main(["audit", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "out of memory" in err and "--workers" in err and "batch_size" not in err


def test_stage_failure_names_the_stage_and_file():
    from preproc import RunContext, StageError

    s = stage("clahe")
    with pytest.raises(StageError, match="stage 0 `clahe`.*x.png"):
        s(np.linspace(0, 50, 64, dtype=np.float32).reshape(8, 8, 1), RunContext(file="x.png"))


def test_a_clipping_stage_mapping_to_one_value_is_left_to_the_range_rules():
    """A window far outside its input collapses every value by design (the clip was asked for):
    the check's range rules report that, with the stage's own bounds; the arithmetic guard of
    inference must not add an "underflow" finding of its own, so a flow built without the check
    does not blame the stage's parameters either."""
    from preproc.spec import Interval
    from preproc.stages.pipeline import infer_checked

    window = stage("window", center=5, width=2)
    unit = ValueSpec.for_dtype("float32").with_(interval=Interval(0.0, 1.0))
    out, finding = infer_checked(window, unit)
    assert out.interval.width == 0 and finding is None
    # a stage that does not clip and collapses its input is the arithmetic's fault
    tiny = stage("rescale", factor=1e-300)
    _, finding = infer_checked(tiny, unit)
    assert finding is not None and finding.code == "degenerate-output"
