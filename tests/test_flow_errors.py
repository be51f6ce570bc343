"""Bad input: every unreadable file is named with its batch, or skipped on request."""

from __future__ import annotations

import os

import numpy as np
import pytest
from builders import flow_config, rgb_dataset
from PIL import Image

from preproc.errors import DecodeError
from preproc.batches.flow import DecodeSkipWarning, flow


def _with_bad_files(tmp_path):
    root = rgb_dataset(tmp_path / "d", per_class=3)
    good = (root / "a/000.png").read_bytes()
    (root / "a/zz_corrupt.png").write_bytes(good[:40] + b"\x00garbage" * 30)
    (root / "a/zz_empty.png").write_bytes(b"")
    (root / "b/zz_text.png").write_text("I am not an image\n")
    (root / "b/zz_truncated.png").write_bytes(good[: len(good) // 2])
    return root


BAD = {"zz_corrupt.png", "zz_empty.png", "zz_text.png", "zz_truncated.png"}


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_file_raises_naming_file_and_batch(tmp_path, workers):
    root = _with_bad_files(tmp_path)
    cfg = flow_config(tmp_path, root, target_size=[8, 8], batch_size=2, shuffle=False)
    with flow(cfg, workers=workers, check=False) as it, pytest.raises(DecodeError) as info:
        list(it)
    err = info.value
    assert os.path.basename(err.path) == "zz_corrupt.png"  # first bad file in order
    assert err.batch == 1 and "[batch 1 of epoch 0]" in str(err)
    assert err.reason in ("corrupt", "truncated", "unsupported")


def test_skip_drops_bad_files_warns_once_and_lists_them(tmp_path):
    root = _with_bad_files(tmp_path)
    cfg = flow_config(tmp_path, root, target_size=[8, 8], batch_size=4, shuffle=False,
                       on_error="skip")
    with flow(cfg, workers=2) as it, pytest.warns(DecodeSkipWarning) as caught:
        batches = list(it)
    assert len([w for w in caught if w.category is DecodeSkipWarning]) == 1
    assert {os.path.basename(p) for p in it.skipped} == BAD
    assert it.skipped[str(root / "a/zz_empty.png")] == "empty"
    assert sum(len(x) for x, _ in batches) == it.samples - len(BAD) == 6
    assert all(len(x) == len(y) for x, y in batches)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    root = rgb_dataset(tmp_path / "d", per_class=1, size=(8, 8))
    Image.fromarray(np.zeros((300, 300), np.uint8)).save(root / "b/zz_big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200 * 200)
    cfg = flow_config(tmp_path, root, target_size=[8, 8], batch_size=8, shuffle=False)
    with pytest.raises(DecodeError, match="zz_big.png") as info:
        flow(cfg, workers=0, check=False)[0]
    assert info.value.reason == "decompression-bomb"


def test_permission_denied_and_symlink_loop(tmp_path, monkeypatch):
    root = rgb_dataset(tmp_path / "d", per_class=1, size=(8, 8))
    locked = root / "b/zz_locked.png"
    locked.write_bytes((root / "b/000.png").read_bytes())
    if os.geteuid() == 0:  # root reads anything: simulate the refusal where the file is opened
        import builtins

        from preproc.io import _files

        def fake_open(path, *args, **kwargs):
            if str(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return builtins.open(path, *args, **kwargs)

        monkeypatch.setattr(_files, "open", fake_open, raising=False)
    else:
        locked.chmod(0)
    cfg = flow_config(tmp_path, root, target_size=[8, 8], batch_size=8, shuffle=False)
    with pytest.raises(DecodeError, match="zz_locked.png") as info:
        flow(cfg, workers=0, check=False)[0]
    assert info.value.reason == "permission-denied"
    locked.unlink()
    os.symlink(root / "b/zz_loop.png", root / "b/zz_loop.png")
    with pytest.raises(DecodeError, match="zz_loop.png") as info:
        flow(cfg, workers=0, check=False)[0]
    assert info.value.reason == "symlink-loop"
