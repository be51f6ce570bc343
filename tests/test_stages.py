"""Stages: the contract over every registered stage (plugins included), and the arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from preproc import (
    Interval,
    PluginError,
    RunContext,
    Stage,
    StageError,
    ValueSpec,
    load_config,
    registered_stages,
)
from preproc.stages import functional as F
from preproc.stages import registry_for
from preproc.stages.registry import StageRegistry, verify_stage_class
from preproc.testing import check_stage

from conftest import CONFIGS

#: every built-in stage plus the example plugins, as a config that names the plugins sees them
STAGES = registry_for(sorted(str(p) for p in (CONFIGS.parent / "plugins").glob("*.py"))).as_dict()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_contract(name):
    check_stage(STAGES[name], max_examples=15)


def test_registry_includes_builtins_and_plugins():
    builtins = {"rescale", "rescale_intensity", "clahe", "normalize", "clip", "window", "gamma",
                "invert", "to_dtype"}
    assert builtins | {"percentile_clip", "unsharp_mask"} <= set(STAGES)
    # a config's plugins stay with that config: the process-wide registry has the built-ins only
    assert builtins <= set(registered_stages())
    assert not {"percentile_clip", "unsharp_mask"} & set(registered_stages())


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Liar(Stage):
    """Claims [0, 1] but doubles its input."""

    name = "liar"
    Params = _P
    examples = [{"params": {}, "input": {"dtype": "float32", "range": [0, 1]}}]

    def infer(self, spec):
        return self.output_spec(spec, Interval(0.0, 1.0), "float32")

    def apply(self, x, ctx):
        return (x * 2).astype(np.float32)


class Mutator(Liar):
    name = "mutator"

    def infer(self, spec):
        return self.output_spec(spec, Interval(0.0, 2.0), "float32")

    def apply(self, x, ctx):
        x *= 2
        return x


def test_contract_helper_catches_unsound_inference():
    with pytest.raises(AssertionError, match="escapes inferred"):
        check_stage(Liar, max_examples=20)


def test_contract_helper_catches_input_mutation():
    with pytest.raises(AssertionError, match="mutated"):
        check_stage(Mutator, max_examples=20)


def test_guarded_call_raises_on_unsound_output():
    stage = Liar()
    image = np.ones((4, 4, 1), np.float32)
    with pytest.raises(StageError, match="outside its inferred"):
        stage(image, RunContext(spec=ValueSpec.for_dtype("float32", interval=(0, 1))), guard=True)


def test_registry_refuses_duplicates_and_invalid_classes():
    registry = StageRegistry()
    registry.add(Liar)
    registry.add(Liar)  # the same class again is harmless

    class Other(Liar):
        pass

    with pytest.raises(PluginError, match="already taken"):
        registry.add(Other)
    assert registry.get("liar") is Liar

    class NoApply(Stage):
        name = "no_apply"
        Params = _P

        def infer(self, spec):
            return spec

    assert any("apply" in p for p in verify_stage_class(NoApply))

    class OverridesCall(Liar):
        name = "overrides_call"

        def __call__(self, x, **kw):
            return x

    assert any("__call__" in p for p in verify_stage_class(OverridesCall))


def test_rescale_multiplies_in_float32_like_keras():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    factor = 1 / 255
    expected = x.astype(np.float32) * np.float32(factor)  # Keras: x *= rescale
    assert np.array_equal(F.affine_f32(x, factor), expected)
    assert F.affine_f32(x, factor).max() == np.float32(255) * np.float32(factor)


def test_cast_saturates_never_wraps():
    x = np.array([[[-3.0, 0.4, 254.6, 300.0]]], dtype=np.float32)
    assert F.cast(x, "uint8", False).tolist() == [[[0, 0, 255, 255]]]
    big = np.array([[[0, 40000, 65535]]], dtype=np.uint16)
    assert F.cast(big, "int16", False).tolist() == [[[0, 32767, 32767]]]
    assert F.cast(big, "uint8", True).tolist() == [[[0, 156, 255]]]


def test_invert_integer_saturates():
    x = np.array([[[0, 4095, 5000]]], dtype=np.uint16)
    assert F.invert(x, 4095).tolist() == [[[4095, 0, 0]]]


def test_clahe_output_is_float32_unit_and_constant_safe():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4096, (64, 64, 1)).astype(np.uint16)
    out = F.clahe(x, 0.01)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1 and out.max() > 0.9
    assert not F.clahe(np.full((32, 32, 1), 7, np.uint16), 0.01).any()


def test_window_maps_hounsfield_to_unit():
    x = np.array([[[-1000, -160, 40, 240, 3000]]], dtype=np.int16)
    stage = registered_stages()["window"]({"center": 40, "width": 400})
    assert np.allclose(stage.apply_alone(x), [[[0, 0, 0.5, 1, 1]]])


def test_normalize_channel_count_mismatch_is_config_error(write_config):
    from preproc import ConfigError, Pipeline

    path = write_config("""\
        version: 1
        source: {expect: {dtype: uint8}}
        stages:
          - rescale: {factor: 1/255}
          - normalize: {mean: [0.5, 0.5], std: [0.2, 0.2]}
        batches: {color_mode: rgb}
        """)
    with pytest.raises(ConfigError, match="2 mean/std values but the images have 3 channels") as info:
        Pipeline.from_config(load_config(path))
    assert info.value.line == 5


def test_featurewise_fit_at_stage_position(write_config):
    from preproc import Pipeline

    path = write_config("""\
        version: 1
        source: {expect: {dtype: uint8}}
        stages:
          - rescale: {factor: 1/255}
          - normalize: {mode: featurewise}
        batches: {color_mode: grayscale}
        """)
    pipe = Pipeline.from_config(load_config(path))
    assert pipe.needs_fit and pipe.specs[-1].interval.bounded is False
    images = [np.full((4, 4, 1), v, np.uint8) for v in (0, 255)]
    pipe.fit(iter(images))
    norm = pipe.stages[1]
    # statistics in the units after the rescale: mean 0.5, std 0.5 (not 127.5)
    assert norm.mean == pytest.approx([0.5]) and norm.std == pytest.approx([0.5])
    assert pipe.specs[-1].interval.lo == pytest.approx(-1) and pipe.specs[-1].interval.hi == pytest.approx(1)
    out = pipe.apply(images[1], guard=True)
    assert np.allclose(out, 1.0)


def test_featurewise_stats_file_from_audit(write_config, tmp_path):
    import json

    from preproc import check

    (tmp_path / "stats.json").write_text(json.dumps({
        "format": "preproc-stats", "version": 1, "space": "raw", "dtype": "uint16",
        "channels": 1, "mean": [812.4], "std": [301.9]}))
    raw = write_config("""\
        version: 1
        source: {expect: {dtype: uint16, bit_depth: 12}}
        stages:
          - normalize: {mode: featurewise, stats: stats.json}
        batches: {color_mode: grayscale}
        """, name="raw.yaml")
    report = check(load_config(raw), sample=0)
    assert report.codes == set()
    assert report.trace[-1]["spec"]["range"] == [pytest.approx(-812.4 / 301.9, rel=1e-5),
                                                 pytest.approx((4095 - 812.4) / 301.9, rel=1e-5)]
    scaled = write_config("""\
        version: 1
        source: {expect: {dtype: uint16, bit_depth: 12}}
        stages:
          - rescale: {factor: 1/4095}
          - normalize: {mode: featurewise, stats: stats.json}
        batches: {color_mode: grayscale}
        """, name="scaled.yaml")
    assert check(load_config(scaled), sample=0).codes == {"normalize-units"}
