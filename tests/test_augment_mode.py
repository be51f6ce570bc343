"""Evaluation mode: a run without subset (a test folder, inference) can run the deterministic
stages alone, the same way from ``flow``, the CLI, previews, adapters and the cache."""

from __future__ import annotations

import numpy as np
import pytest
from builders import flow_config, rgb_dataset

from preproc.batches.flow import flow
from preproc.commands import main as cli
from preproc.errors import PreprocError

AUGMENT = [
    {"random_affine": {"rotation": 30, "zoom": 0.2}},
    {"flip": {"horizontal": True, "vertical": True}},
    {"random_crop": {"size": [12, 16]}},
    {"brightness": {"range": [0.7, 1.3], "clip": [0, 255]}},
    {"rescale": {"factor": "1/255"}},
]
#: what evaluation must equal: the random stages gone, random_crop's twin in its place
PLAIN = [{"center_crop": {"size": [12, 16]}}, {"rescale": {"factor": "1/255"}}]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return rgb_dataset(tmp_path_factory.mktemp("mode"), per_class=5, size=(20, 24))


def _cfg(tmp_path, data, stages=AUGMENT, name="cfg.yaml", **batches):
    opts = {"target_size": [20, 24], "batch_size": 4, "seed": 5, **batches}
    return flow_config(tmp_path, data, stages=stages, expect={"dtype": "uint8", "channels": 3},
                       name=name, **opts)


def _epoch(it):
    return [it[i][0] for i in range(len(it))]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_config_mode_evaluation_runs_the_deterministic_stages_alone(tmp_path, data):
    cfg = _cfg(tmp_path, data, mode="evaluation")
    plain = _cfg(tmp_path, data, stages=PLAIN, name="plain.yaml")
    with flow(cfg, workers=0) as it, flow(plain, workers=0) as ref:
        assert it.mode == "evaluation"
        assert [s.name for s in it.pipeline.stages] == ["center_crop", "rescale"]
        _same(_epoch(it), _epoch(ref))


def test_default_mode_without_subset_is_training(tmp_path, data):
    plain = _cfg(tmp_path, data, stages=PLAIN, name="plain.yaml")
    with flow(_cfg(tmp_path, data), workers=0) as it, flow(plain, workers=0) as ref:
        assert it.mode == "training"
        assert not all(np.array_equal(a, b) for a, b in zip(_epoch(it), _epoch(ref)))


def test_flow_keyword_overrides_the_config(tmp_path, data):
    plain = _cfg(tmp_path, data, stages=PLAIN, name="plain.yaml")
    with flow(_cfg(tmp_path, data), mode="evaluation", workers=2) as it, \
            flow(plain, workers=0) as ref:
        _same(_epoch(it), _epoch(ref))
    with flow(_cfg(tmp_path, data, mode="evaluation"), mode="training", workers=0) as it:
        assert [s.name for s in it.pipeline.stages][:3] == ["random_affine", "flip", "random_crop"]


def test_training_subset_in_evaluation_mode_and_validation_always_evaluates(tmp_path, data):
    cfg = _cfg(tmp_path, data, validation_split=0.4)
    plain = _cfg(tmp_path, data, stages=PLAIN, name="plain.yaml", validation_split=0.4)
    with flow(cfg, "training", mode="evaluation", workers=0) as it, \
            flow(plain, "training", workers=0) as ref:
        _same(_epoch(it), _epoch(ref))
    with flow(cfg, "validation", workers=0) as it:
        assert it.mode == "evaluation"
    with pytest.raises(PreprocError, match="apply_to"):
        flow(cfg, "validation", mode="training", workers=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        flow(cfg, mode="eval", workers=0)


def test_apply_to_validation_runs_in_evaluation_mode(tmp_path, data):
    stages = [{"flip": {"vertical": True, "p": 1.0, "apply_to": ["training", "validation"]}},
              {"rescale": {"factor": "1/255"}}]
    with flow(_cfg(tmp_path, data, stages=stages, mode="evaluation"), workers=0) as it:
        assert [s.name for s in it.pipeline.stages] == ["flip", "rescale"]


def test_preview_and_adapters_follow_the_mode(tmp_path, data):
    with flow(_cfg(tmp_path, data, mode="evaluation"), workers=0) as it:
        augmented, plain = it.preview(3)
        np.testing.assert_array_equal(augmented, plain)
        np.testing.assert_array_equal(augmented, it[0][0][:3])


def test_cache_serves_both_modes(tmp_path, data):
    from preproc.batches.cache_build import build_cache

    cfg = _cfg(tmp_path, data, mode="evaluation")
    build_cache(cfg, tmp_path / "cache")
    plain = _cfg(tmp_path, data, stages=PLAIN, name="plain.yaml")
    with flow(cfg, workers=0, cache=tmp_path / "cache") as it, flow(plain, workers=0) as ref:
        assert it._cache is not None
        _same(_epoch(it), _epoch(ref))
    with flow(cfg, mode="training", workers=0, cache=tmp_path / "cache") as cached, \
            flow(cfg, mode="training", workers=0) as direct:
        _same(_epoch(cached), _epoch(direct))


def test_cli_mode_flag(tmp_path, data, capsys):
    cfg = _cfg(tmp_path, data)
    assert cli(["run", str(cfg.path), "--mode", "evaluation", "--workers", "0"]) == 0
    assert cli(["preview", str(cfg.path), "--mode", "evaluation", "--out",
                str(tmp_path / "grid.png"), "-n", "2"]) == 0
    split = _cfg(tmp_path, data, name="split.yaml", validation_split=0.4)
    assert cli(["run", str(split.path), "--subset", "validation", "--mode", "training"]) == 2
    assert "apply_to" in capsys.readouterr().err


def test_schema_documents_the_mode(capsys):
    import json

    assert cli(["schema"]) == 0
    batches = json.loads(capsys.readouterr().out)["$defs"]["Batches"]["properties"]
    assert batches["mode"]["enum"] == ["training", "evaluation"]
    assert "deterministic" in batches["mode"]["description"]


def test_cache_fits_and_cuts_alike_for_both_pipelines(tmp_path, data):
    """Fitted statistics follow their stage when a random stage before it is left out, and a
    stage kept out of one pipeline by apply_to is never cached for both."""
    from preproc.batches.cache_build import build_cache

    stages = [{"flip": {}}, {"rescale": {"factor": "1/255"}},
              {"normalize": {"mode": "featurewise"}}]
    cfg = _cfg(tmp_path, data, stages=stages, validation_split=0.4)
    build_cache(cfg, tmp_path / "fit")
    for subset in ("training", "validation"):
        with flow(cfg, subset, workers=0, cache=tmp_path / "fit") as cached, \
                flow(cfg, subset, workers=0) as direct:
            _same(_epoch(cached), _epoch(direct))
    stages = [{"center_crop": {"size": [16, 16], "apply_to": ["training"]}},
              {"to_dtype": {"dtype": "float32"}}, {"rescale": {"factor": "1/255"}}]
    cfg = _cfg(tmp_path, data, stages=stages, name="crop.yaml")
    build_cache(cfg, tmp_path / "crop")
    for mode in ("training", "evaluation"):
        with flow(cfg, mode=mode, workers=0, cache=tmp_path / "crop", check=False) as cached, \
                flow(cfg, mode=mode, workers=0, check=False) as direct:
            _same(_epoch(cached), _epoch(direct))
