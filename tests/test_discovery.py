"""File discovery follows Keras' flow_from_directory rules and fails loudly where Keras hangs."""

from __future__ import annotations

import os

import numpy as np
import pytest

from preproc.dataset import discovery
from preproc.errors import PreprocError


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_walk_order_sorts_full_folder_paths_then_names(tmp_path):
    _touch(tmp_path, "a/z.png", "a/b.png", "a/sub/deeper/d.png", "a/sub-2/c.png", "a/sub/e.png")
    listing = discovery.list_files(tmp_path)
    assert listing.filenames == [
        "a/b.png", "a/z.png", "a/sub/e.png", "a/sub-2/c.png", "a/sub/deeper/d.png"
    ]


def test_classes_sorted_case_sensitively_and_explicit_order_kept(tmp_path):
    _touch(tmp_path, "b/1.png", "B/1.png", "a/1.png", "loose.png")
    auto = discovery.list_files(tmp_path)
    assert auto.class_indices == {"B": 0, "a": 1, "b": 2}
    explicit = discovery.list_files(tmp_path, classes=["b", "a"])
    assert explicit.class_indices == {"b": 0, "a": 1}
    assert explicit.filenames == ["b/1.png", "a/1.png"]
    np.testing.assert_array_equal(explicit.classes, [0, 1])


def test_extension_is_a_case_insensitive_suffix_test(tmp_path):
    _touch(tmp_path, "c/x.PNG", "c/y.Jpeg", "c/notes.txt", "c/weirdpng", "c/z.dcm", "c/w.gif")
    assert discovery.list_files(tmp_path).filenames == ["c/weirdpng", "c/x.PNG", "c/y.Jpeg"]
    widened = discovery.list_files(tmp_path, extensions=["png", "dcm", "gif"])
    assert widened.filenames == ["c/w.gif", "c/weirdpng", "c/x.PNG", "c/z.dcm"]


def test_validation_split_takes_the_first_files_of_each_class(tmp_path):
    _touch(tmp_path, *[f"a/{i}.png" for i in range(5)], *[f"b/{i}.png" for i in range(3)])
    val = discovery.list_files(tmp_path, validation_split=0.4, subset="validation")
    train = discovery.list_files(tmp_path, validation_split=0.4, subset="training")
    assert val.filenames == ["a/0.png", "a/1.png", "b/0.png"]  # int(0.4*5)=2, int(0.4*3)=1
    assert train.filenames == ["a/2.png", "a/3.png", "a/4.png", "b/1.png", "b/2.png"]
    np.testing.assert_array_equal(train.classes, [0, 0, 0, 1, 1])


def test_follow_links(tmp_path):
    _touch(tmp_path, "data/a/1.png", "elsewhere/2.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "data/a/linked")
    root = tmp_path / "data"
    assert discovery.list_files(root).filenames == ["a/1.png"]
    assert discovery.list_files(root, follow_links=True).filenames == ["a/1.png", "a/linked/2.png"]


def test_symlink_loop_raises_instead_of_hanging(tmp_path):
    _touch(tmp_path, "a/sub/1.png")
    os.symlink(tmp_path / "a", tmp_path / "a/sub/back")
    assert discovery.list_files(tmp_path).filenames == ["a/sub/1.png"]
    with pytest.raises(PreprocError, match="symbolic-link loop"):
        discovery.list_files(tmp_path, follow_links=True)


def test_unlistable_folder_is_an_error_not_silence(tmp_path, monkeypatch):
    _touch(tmp_path, "a/1.png", "a/locked/2.png")
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    with pytest.raises(PreprocError, match="locked: cannot list folder: Permission denied"):
        discovery.list_files(tmp_path)


def test_empty_class_folder_warns_and_keeps_its_index(tmp_path):
    _touch(tmp_path, "a/1.png", "b/readme.txt", "c/1.png")
    with pytest.warns(UserWarning, match=r"no image \(b\)"):
        listing = discovery.list_files(tmp_path)
    assert listing.class_indices == {"a": 0, "b": 1, "c": 2}
    assert listing.empty_classes == ("b",)
    np.testing.assert_array_equal(listing.classes, [0, 2])


def test_missing_directory_and_class(tmp_path):
    with pytest.raises(PreprocError, match="does not exist"):
        discovery.list_files(tmp_path / "nope")
    _touch(tmp_path, "a/1.png")
    with pytest.raises(PreprocError, match="class folder listed in `classes` does not exist"):
        discovery.list_files(tmp_path, classes=["a", "zebra"])


def test_matches_keras_listing(tmp_path):
    keras_image = pytest.importorskip("keras.src.legacy.preprocessing.image",
                                      reason="keras not installed")
    _touch(tmp_path, "b/x.png", "b/s/y.jpg", "b/s-1/z.TIF", "a/q.bmp", "a/r.txt", "a/deep/er/t.ppm")
    for subset in (None, "training", "validation"):
        it = keras_image.DirectoryIterator(
            str(tmp_path), keras_image.ImageDataGenerator(validation_split=0.5), subset=subset)
        mine = discovery.list_files(tmp_path, validation_split=0.5, subset=subset)
        assert mine.filenames == it.filenames
        np.testing.assert_array_equal(mine.classes, it.classes)


class _SortedScandir:
    """``os.scandir`` in name order, so which folder is walked after which is fixed."""

    def __init__(self, real, fail=()):
        self.real, self.fail = real, {str(f) for f in fail}

    def __call__(self, folder):
        if str(folder) in self.fail:
            raise PermissionError(13, "Permission denied")
        with self.real(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        return _Entries(entries)


class _Entries(list):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_problems_are_reported_and_the_walk_goes_on(tmp_path, monkeypatch):
    from preproc.dataset.discovery import list_files

    cls = tmp_path / "c"
    for sub in "abcde":
        (cls / sub).mkdir(parents=True)
        (cls / sub / f"{sub}.png").write_bytes(b"x")
    (cls / "c" / "b_loop").symlink_to(cls, target_is_directory=True)
    for name in ("c1.png", "c2.png"):
        (cls / "c" / name).write_bytes(b"x")
    monkeypatch.setattr(os, "scandir", _SortedScandir(os.scandir, fail=[cls / "d"]))
    problems = []
    found = list_files(tmp_path, follow_links=True,
                       on_problem=lambda *args: problems.append(args))
    assert sorted(found.filenames) == [os.path.join("c", p) for p in
                                       ("a/a.png", "b/b.png", "c/c.png", "c/c1.png", "c/c2.png",
                                        "e/e.png")]
    loop, unlistable = sorted(problems, key=lambda p: p[1])
    assert loop == (str(cls / "c" / "b_loop"), "symlink-loop",
                    f"{cls / 'c' / 'b_loop'}: symbolic-link loop (it leads back to an enclosing "
                    "folder); remove the link or set batches.follow_links: false")
    assert unlistable == (str(cls / "d"), "unlistable-folder",
                          f"{cls / 'd'}: cannot list folder: Permission denied")


def test_split_bounds_extensions_and_the_result(tmp_path, recwarn):
    from preproc.dataset.discovery import list_files

    for cls, n in (("a", 4), ("b", 2)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            (tmp_path / cls / f"{i}.PNG").write_bytes(b"x")
    (tmp_path / "e").mkdir()
    whole = list_files(tmp_path, extensions=[".Png"])
    assert whole.directory == str(tmp_path) and whole.classes.dtype == np.int32
    assert whole.classes.tolist() == [0, 0, 0, 0, 1, 1]
    assert str(recwarn.pop(UserWarning).message) == (
        f"{tmp_path}: class folder(s) with no image (e); extensions searched: png")
    assert len(list_files(tmp_path, subset="training").filenames) == 6  # default split 0
    assert list_files(tmp_path, subset="validation").filenames == []
    half = list_files(tmp_path, validation_split=0.5, subset="training")
    assert half.filenames == [os.path.join("a", "2.PNG"), os.path.join("a", "3.PNG"),
                              os.path.join("b", "1.PNG")]
    with pytest.raises(PreprocError, match=r"^validation_split must be in \[0, 1\), got 1.0$"):
        list_files(tmp_path, validation_split=1.0, subset="training")
    with pytest.raises(PreprocError, match="^unknown subset 'test'; expected 'training' or "
                                           "'validation'$"):
        list_files(tmp_path, subset="test")
