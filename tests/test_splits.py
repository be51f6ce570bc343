"""Group-level validation splits: every patient in one subset, deterministic, sizes close."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from preproc import flow, load_config
from preproc.dataset.splits import _closest_subset, assign_validation, group_keys, select_subset
from preproc.errors import ConfigError, PreprocError


@given(st.lists(st.integers(0, 12), min_size=1, max_size=60),
       st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_every_group_lands_on_one_side_and_the_size_is_the_closest_reachable(labels, split, seed):
    groups = [f"p{g}" for g in labels]
    validation = assign_validation(groups, split, seed)
    for g in set(groups):
        sides = {bool(v) for v, h in zip(validation, groups) if h == g}
        assert len(sides) == 1
    sizes = sorted(Counter(groups).values())
    reachable = {0}
    for size in sizes:
        reachable |= {r + size for r in reachable}
    target = split * len(groups)
    best = min(abs(r - target) for r in reachable)
    assert abs(int(validation.sum()) - target) == pytest.approx(best)


def test_deterministic_by_seed_and_independent_of_file_order():
    groups = [f"p{i % 17}" for i in range(170)]
    one = assign_validation(groups, 0.3, seed=5)
    assert np.array_equal(one, assign_validation(groups, 0.3, seed=5))
    chosen = {g for g, v in zip(groups, one) if v}
    reordered = groups[::-1]
    again = assign_validation(reordered, 0.3, seed=5)
    assert chosen == {g for g, v in zip(reordered, again) if v}
    others = [{g for g, v in zip(groups, assign_validation(groups, 0.3, seed=s)) if v}
              for s in range(6)]
    assert len({frozenset(c) for c in others}) > 1  # the seed chooses which patients
    unseeded = assign_validation(groups, 0.3, None)
    assert np.array_equal(unseeded, assign_validation(groups, 0.3, 0))


def test_no_split_and_oversized_groups():
    assert not assign_validation(["a", "b"], 0.0).any()
    assert not assign_validation(["a"] * 10, 0.2).any()  # one group of 10: 0 is closer than 10
    assert _closest_subset([3, 5, 9], 8.0) in ([1, 0], [0, 1])


def test_pattern_keys_and_errors():
    names = ["a/pat_01/x.png", "b/pat_01/y.png", "a/pat_02/z.png"]
    split_by = type("S", (), {"pattern": r"(?P<group>pat_\d+)/", "dicom": None})()
    keys = group_keys("/nowhere", names, split_by)
    assert keys[0] == keys[1] != keys[2]
    with pytest.raises(PreprocError, match="does not match 'a/other.png'"):
        group_keys("/nowhere", ["a/other.png"], split_by)


def _write_dataset(root: Path, patients: int = 10, slices: int = 3) -> Path:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        pytest.skip("pydicom's CT_small.dcm is not installed")
    for p in range(patients):
        for s in range(slices):
            ds = pydicom.dcmread(source)
            ds.PatientID = f"P{p:02d}"
            cls = "a" if p % 2 else "b"
            (root / cls).mkdir(parents=True, exist_ok=True)
            ds.save_as(root / cls / f"p{p:02d}_s{s}.dcm")
    return root


def _config(write_config, split_by: str, split: float = 0.3, seed: int = 7) -> Path:
    return write_config(f"""\
        version: 1
        source: {{directory: data, extensions: [dcm]}}
        batches:
          validation_split: {split}
          seed: {seed}
          batch_size: 4
          target_size: [8, 8]
          color_mode: grayscale
          workers: 0
          {split_by}
        """)


def _patients(it, root: Path) -> set[str]:
    import pydicom

    return {pydicom.dcmread(root / f, stop_before_pixels=True).PatientID for f in it.filenames}


@pytest.mark.parametrize("split_by", ["split_by: {dicom: PatientID}",
                                      "split_by: {pattern: '(?P<group>p[0-9]+)_s'}"])
def test_flow_keeps_each_patient_in_one_subset(tmp_path, write_config, split_by):
    root = _write_dataset(tmp_path / "data")
    cfg = load_config(_config(write_config, split_by))
    train, val = flow(cfg, "training"), flow(cfg, "validation")
    assert len(train.filenames) + len(val.filenames) == 30
    assert len(val.filenames) == 9  # 30 * 0.3, three slices per patient
    assert not _patients(train, root) & _patients(val, root)
    everything = flow(cfg, None).filenames
    assert [f for f in everything if f in set(val.filenames)] == val.filenames


def test_without_split_by_the_keras_slice_stays_and_flow_warns(tmp_path, write_config):
    from preproc import CheckWarning

    _write_dataset(tmp_path / "data")
    cfg = load_config(_config(write_config, ""))
    with pytest.warns(CheckWarning, match="split-leakage"):
        val = flow(cfg, "validation").filenames
    # Keras: the first int(0.3 * 15) = 4 files of each class
    assert val == [f"a/p{p:02d}_s{s}.dcm" for p in (1, 3) for s in range(3)][:4] + \
        [f"b/p{p:02d}_s{s}.dcm" for p in (0, 2) for s in range(3)][:4]


def test_split_by_config_validation(write_config):
    base = "version: 1\nbatches:\n  split_by: {}\n"
    with pytest.raises(ConfigError, match="exactly one"):
        load_config(write_config(base.format("{dicom: PatientID, pattern: 'x'}")))
    with pytest.raises(ConfigError, match="named group"):
        load_config(write_config(base.format("{pattern: 'p[0-9]+'}")))
    with pytest.raises(ConfigError, match="not a DICOM keyword"):
        load_config(write_config(base.format("{dicom: 'Patient ID'}")))


def test_unknown_keyword_suggests_the_right_one(tmp_path):
    pytest.importorskip("pydicom")
    split_by = type("S", (), {"pattern": None, "dicom": "PatientId"})()
    with pytest.raises(PreprocError, match="did you mean `PatientID`"):
        group_keys(str(tmp_path), ["a/x.dcm"], split_by)


def test_select_subset_refuses_unknown_subsets(tmp_path):
    from preproc.dataset.discovery import Discovered

    listing = Discovered(str(tmp_path), ["a/x.png"], np.zeros(1, np.int32), {"a": 0})
    split_by = type("S", (), {"pattern": r"(?P<group>x)", "dicom": None})()
    assert select_subset(listing, split_by, 0.5, None, 0) is listing
    with pytest.raises(PreprocError, match="unknown subset"):
        select_subset(listing, split_by, 0.5, "test", 0)


def test_greedy_fallback_keeps_groups_whole(monkeypatch):
    from preproc.dataset import splits

    monkeypatch.setattr(splits, "EXACT_LIMIT", 0)
    groups = [f"p{i % 23}" for i in range(230)]
    validation = assign_validation(groups, 0.2, seed=3)
    assert abs(int(validation.sum()) - 46) <= 10  # within one group of the target
    for g in set(groups):
        assert len({bool(v) for v, h in zip(validation, groups) if h == g}) == 1
    assert np.array_equal(validation, assign_validation(groups, 0.2, seed=3))


def test_dicom_keys_read_the_element_and_fall_back_to_the_file(tmp_path):
    root = _write_dataset(tmp_path / "data", patients=2, slices=2)
    (root / "a" / "note.dcm").write_bytes(b"not dicom at all")
    split_by = type("S", (), {"pattern": None, "dicom": "PatientID"})()
    keys = group_keys(str(root), ["a/p01_s0.dcm", "a/p01_s1.dcm", "b/p00_s0.dcm", "a/note.dcm"],
                      split_by)
    assert keys == ["dicom:P01", "dicom:P01", "dicom:P00", "file:a/note.dcm"]


def test_an_element_no_file_holds_is_an_error(tmp_path):
    root = _write_dataset(tmp_path / "data", patients=1, slices=2)
    split_by = type("S", (), {"pattern": None, "dicom": "StudyComments"})()
    with pytest.raises(PreprocError, match="no file holds StudyComments"):
        group_keys(str(root), ["b/p00_s0.dcm", "b/p00_s1.dcm"], split_by)
