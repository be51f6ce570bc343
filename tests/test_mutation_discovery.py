"""Discovery's promises that mutation testing found unpinned: the empty-class warning (its
words with several classes and extensions, and the line it points at), the refusal of a
source directory that cannot be listed, and an entry whose type cannot be read."""

from __future__ import annotations

import dis
import errno
import inspect
import os

import pytest

from preproc.dataset import discovery
from preproc.dataset.discovery import list_files
from preproc.errors import PreprocError


def _assert_points_at_caller(record, public, line):
    """The warning names the line that called ``public`` (``stacklevel=2``).

    Mutation testing wraps ``public`` in two frames of its own (an outer wrapper, whose code is
    ``public.__code__``, and an inner trampoline in the same file that calls the body); the
    body's caller is then that trampoline: a line of the wrapper's file outside the wrapper.
    """
    code = public.__code__
    if code.co_filename == discovery.__file__:
        assert (record.filename, record.lineno) == (__file__, line)
    else:
        wrapper_lines = {n for _, n in dis.findlinestarts(code)}
        assert record.filename == code.co_filename and record.lineno not in wrapper_lines


def test_empty_classes_warning_names_each_class_and_extension_and_points_at_the_caller(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"")
    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(UserWarning) as caught:
        found = list_files(tmp_path, extensions=["PNG", ".tif"])
    assert len(caught) == 1
    record = caught[0]
    assert str(record.message) == (
        f"{tmp_path}: class folder(s) with no image (a, c); extensions searched: png, tif")
    # stacklevel: the warning names the line that called list_files, not discovery itself
    _assert_points_at_caller(record, list_files, line)
    assert found.empty_classes == ("a", "c")
    assert found.filenames == [os.path.join("b", "x.png")]


def test_a_source_directory_that_cannot_be_listed_is_refused_with_the_reason(tmp_path,
                                                                            monkeypatch):
    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(discovery.os, "listdir", refuse)
    with pytest.raises(PreprocError) as info:
        list_files(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot list the source directory: Permission denied"
    assert isinstance(info.value.__cause__, PermissionError)


class _Unreadable:
    """A directory entry whose type cannot be read (``is_dir`` raises, as on a stale NFS
    handle)."""

    def __init__(self, entry):
        self._entry = entry
        self.name = entry.name
        self.path = entry.path

    def is_dir(self):
        raise OSError(errno.ESTALE, "Stale file handle")

    def is_symlink(self):
        return self._entry.is_symlink()


def test_an_entry_whose_type_cannot_be_read_counts_as_a_file(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "odd.png").write_bytes(b"")
    (tmp_path / "a" / "ok.png").write_bytes(b"")
    real = os.scandir

    class Scan:
        def __init__(self, path):
            self._it = real(path)

        def __enter__(self):
            return [_Unreadable(e) if e.name == "odd.png" else e for e in self._it]

        def __exit__(self, *exc):
            self._it.close()

    monkeypatch.setattr(discovery.os, "scandir", Scan)
    found = list_files(tmp_path)
    assert found.filenames == [os.path.join("a", "odd.png"), os.path.join("a", "ok.png")]
    assert found.classes.tolist() == [0, 0]
