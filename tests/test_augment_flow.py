"""Augmentation in batches: training only, seeded per file, identical for any worker count or shard."""

from __future__ import annotations

import numpy as np
import pytest
from builders import flow_config, rgb_dataset

from preproc.batches.flow import flow

AUGMENT = [
    {"random_affine": {"rotation": 30, "width_shift": 0.1, "zoom": 0.2}},
    {"flip": {"horizontal": True, "vertical": True}},
    {"brightness": {"range": [0.7, 1.3], "clip": [0, 255]}},
    {"rescale": {"factor": "1/255"}},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return rgb_dataset(tmp_path_factory.mktemp("aug"), per_class=5, size=(20, 24))


def _cfg(tmp_path, data, stages=AUGMENT, **batches):
    opts = {"target_size": [20, 24], "batch_size": 4, "seed": 5, **batches}
    return flow_config(tmp_path, data, stages=stages, expect={"dtype": "uint8", "channels": 3},
                        **opts)


def _epoch(it):
    return [it[i][0] for i in range(len(it))]


def test_training_is_augmented_and_validation_is_not(tmp_path, data):
    cfg = _cfg(tmp_path, data, validation_split=0.4)
    plain = _cfg(tmp_path, data, stages=[{"rescale": {"factor": "1/255"}}], validation_split=0.4,
                 name="plain.yaml")
    with flow(cfg, "validation", workers=0) as val, flow(plain, "validation", workers=0) as ref:
        assert [s.name for s in val.pipeline.stages] == ["rescale"]
        for a, b in zip(_epoch(val), _epoch(ref)):
            np.testing.assert_array_equal(a, b)
    with flow(cfg, "training", workers=0) as tr, flow(plain, "training", workers=0) as ref:
        assert not all(np.array_equal(a, b) for a, b in zip(_epoch(tr), _epoch(ref)))


def test_apply_to_opts_in_and_random_crop_becomes_center_crop(tmp_path, data):
    stages = [{"flip": {"apply_to": ["training", "validation"]}}, {"random_crop": {"size": [8, 8]}}]
    cfg = _cfg(tmp_path, data, stages=stages, validation_split=0.4)
    with flow(cfg, "validation", workers=0) as val:
        assert [s.name for s in val.pipeline.stages] == ["flip", "center_crop"]
        assert val[0][0].shape[1:] == (8, 8, 3)


def test_batches_identical_for_any_worker_count(tmp_path, data):
    cfg = _cfg(tmp_path, data)
    with flow(cfg, workers=0) as a, flow(cfg, workers=2) as b:
        for x, y in zip(_epoch(a), _epoch(b)):
            np.testing.assert_array_equal(x, y)
        a.on_epoch_end(), b.on_epoch_end()
        first_again = _epoch(a)
        for x, y in zip(first_again, _epoch(b)):
            np.testing.assert_array_equal(x, y)


def test_augmentation_changes_with_epoch_not_with_order(tmp_path, data):
    cfg = _cfg(tmp_path, data, shuffle=False)
    with flow(cfg, workers=0) as it:
        e0 = _epoch(it)
        it.set_epoch(1)
        e1 = _epoch(it)
        it.set_epoch(0)
        again = _epoch(it)
    assert not np.array_equal(e0[0], e1[0])
    for x, y in zip(e0, again):
        np.testing.assert_array_equal(x, y)


def test_shards_see_the_same_augmentation_as_one_process(tmp_path, data):
    cfg = _cfg(tmp_path, data, batch_size=1)
    with flow(cfg, workers=0) as whole:
        by_file = {int(whole.batch_with_indices(i)[2][0]): whole[i][0] for i in range(len(whole))}
    for rank in range(2):
        with flow(cfg, shard=(rank, 2), workers=0) as part:
            for i in range(len(part)):
                x, _, idx = part.batch_with_indices(i)
                np.testing.assert_array_equal(x, by_file[int(idx[0])])


def test_null_seed_is_drawn_once_and_reported(tmp_path, data):
    cfg = _cfg(tmp_path, data, seed=None, shuffle=False)
    with flow(cfg, workers=0) as it:
        seed = it.seed
        first = _epoch(it)
    assert isinstance(seed, int)
    replay = _cfg(tmp_path, data, seed=seed, shuffle=False, name="replay.yaml")
    with flow(replay, workers=0) as it:
        for x, y in zip(first, _epoch(it)):
            np.testing.assert_array_equal(x, y)


def test_guard_accepts_augmented_batches(tmp_path, data):
    cfg = _cfg(tmp_path, data, stages=AUGMENT + [{"clip": {"min": 0, "max": 1.3}}])
    with flow(cfg, workers=0, guard="raise") as it:
        _epoch(it)
        assert it.findings == []


def test_preview_matches_the_batches_and_the_plain_pipeline(tmp_path, data):
    cfg = _cfg(tmp_path, data, shuffle=False, batch_size=6)
    plain_cfg = _cfg(tmp_path, data, stages=[{"rescale": {"factor": "1/255"}}], shuffle=False,
                     batch_size=6, name="plain.yaml")
    with flow(cfg, workers=0) as it, flow(plain_cfg, workers=0) as ref:
        augmented, plain = it.preview(4)
        np.testing.assert_array_equal(augmented, it[0][0][:4])
        np.testing.assert_array_equal(plain, ref[0][0][:4])


def test_preview_command_writes_a_contact_sheet(tmp_path, data):
    from PIL import Image

    from preproc.commands import main

    cfg = _cfg(tmp_path, data)
    out = tmp_path / "sheet" / "grid.png"
    assert main(["preview", str(cfg.path), "--out", str(out), "-n", "3"]) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * (20 + 2) + 2, 3 * (24 + 2) + 2, 3)
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temporary left
