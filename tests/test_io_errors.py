"""Bad files: every failure is a DecodeError that names the file and says why."""

from __future__ import annotations

import builtins
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import write_png, write_tiff

from preproc.errors import DecodeError
from preproc.io import DECODE_REASONS, decode, probe

BOTH = pytest.mark.parametrize("call", [probe, decode], ids=["probe", "decode"])


def reason_of(call, path) -> str:
    with pytest.raises(DecodeError) as caught:
        call(path)
    assert str(path) in str(caught.value)  # the message names the file
    assert caught.value.reason in DECODE_REASONS
    return caught.value.reason


@BOTH
def test_empty_file(tmp_path, call):
    (tmp_path / "e.png").write_bytes(b"")
    assert reason_of(call, tmp_path / "e.png") == "empty"


@BOTH
def test_missing_file_and_dangling_link(tmp_path, call):
    assert reason_of(call, tmp_path / "none.png") == "not-found"
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    assert reason_of(call, tmp_path / "dangling.png") == "not-found"


@BOTH
def test_directory(tmp_path, call):
    (tmp_path / "dir.png").mkdir()
    assert reason_of(call, tmp_path / "dir.png") == "not-a-file"


@BOTH
def test_fifo_is_refused_without_blocking(tmp_path, call):
    os.mkfifo(tmp_path / "pipe.png")
    assert reason_of(call, tmp_path / "pipe.png") == "not-a-file"


@BOTH
def test_symlink_loop(tmp_path, call):
    os.symlink(tmp_path / "b.png", tmp_path / "a.png")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    assert reason_of(call, tmp_path / "a.png") == "symlink-loop"


@BOTH
def test_permission_denied_simulated(tmp_path, call, monkeypatch):
    path = write_png(tmp_path / "p.png", np.zeros((2, 2), np.uint8))
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert reason_of(call, path) == "permission-denied"


def test_permission_denied_chmod(tmp_path):
    path = write_png(tmp_path / "p.png", np.zeros((2, 2), np.uint8))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that ignore file modes")
        assert reason_of(decode, path) == "permission-denied"
    finally:
        path.chmod(0o644)


@BOTH
@pytest.mark.parametrize("name", ["notes.png", "notes.tif", "notes.dcm", "notes.jpg"])
def test_text_file_with_image_extension(tmp_path, call, name):
    if name.endswith(".dcm"):  # no magic: the extension routes it to the DICOM reader
        pytest.importorskip("pydicom", reason="reading a .dcm file needs pydicom")
    (tmp_path / name).write_text("this is not an image\n" * 20)
    assert reason_of(call, tmp_path / name) in ("unsupported", "corrupt")


@BOTH
@pytest.mark.parametrize(
    "magic",
    [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*", b"BM", b"GIF89a", b"P5\n"],
)
def test_magic_followed_by_garbage(tmp_path, call, magic):
    path = tmp_path / "g.img"
    path.write_bytes(magic + bytes(range(256)) * 3)
    assert reason_of(call, path) in ("corrupt", "truncated", "unsupported")


def test_sources_are_never_modified(tmp_path, monkeypatch):
    import builtins
    import io
    import os

    paths = [
        write_png(tmp_path / "a.png", np.arange(48, dtype=np.uint16).reshape(4, 4, 3)),
        write_tiff(tmp_path / "b.tif", np.arange(16, dtype=np.float32).reshape(4, 4)),
    ]
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}
    watched = {str(p.resolve()) for p in paths}
    opened: list[tuple[str, str]] = []  # (path, "read" | "write") of every open of a source

    def note(file, writing):
        if isinstance(file, (str, bytes, os.PathLike)) and \
                os.path.realpath(os.fsdecode(file)) in watched:
            opened.append((os.path.basename(os.fsdecode(file)), "write" if writing else "read"))

    def wrap_open(original):
        def call(file, mode="r", *args, **kwargs):
            note(file, any(c in mode for c in "wax+"))
            return original(file, mode, *args, **kwargs)
        return call

    real_os_open = os.open

    def os_open(file, flags, *args, **kwargs):
        note(file, flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_CREAT))
        return real_os_open(file, flags, *args, **kwargs)

    # root ignores a read-only mode bit, so watch the opens themselves instead
    monkeypatch.setattr(builtins, "open", wrap_open(builtins.open))
    monkeypatch.setattr(io, "open", wrap_open(io.open))
    monkeypatch.setattr(os, "open", os_open)
    for p in paths:
        probe(p)
        decode(p)
    monkeypatch.undo()
    assert {name for name, _ in opened} == {"a.png", "b.tif"}  # the watch saw the reads
    assert [o for o in opened if o[1] == "write"] == []
    assert before == {
        p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths
    }


def test_import_is_light():
    code = (
        "import sys, preproc.io; "
        "print(','.join(m for m in ('tifffile', 'pydicom', 'skimage', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_skimage_sample_images():
    skimage = pytest.importorskip("skimage")
    folder = Path(skimage.__file__).parent / "data"
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".gif", ".tif")
    )
    if not files:
        pytest.skip("scikit-image sample images not installed")
    from PIL import Image

    for path in files:
        array, info = decode(path)
        assert array.shape == (info.height, info.width, info.channels)
        assert probe(path) == info
        if info.format == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                expected = page.asarray()
                if page.axes == "SYX":  # multipage_rgb.tif is planar: samples first
                    expected = np.moveaxis(expected, 0, -1)
            np.testing.assert_array_equal(array.reshape(expected.shape), expected)
            continue
        with Image.open(path) as image:
            assert image.size == (info.width, info.height)
            if image.mode not in ("L", "RGB", "RGBA", "LA"):
                continue
            expected = np.asarray(image)
        if info.dtype == "uint16":
            # chessboard_RGB.png is 16-bit RGB: Pillow keeps the high byte of each sample
            assert path.name == "chessboard_RGB.png"
            array = array >> 8
        np.testing.assert_array_equal(array.reshape(expected.shape), expected)
