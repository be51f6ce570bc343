"""Mutated and truncated files: the only outcomes are a decoded image or a DecodeError.

Each case is bounded in time and may not open anything for writing. CI runs 50 examples per
test; a longer run is ``PREPROC_FUZZ_EXAMPLES=5000 python -m pytest tests/test_io_fuzz.py``.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import signal
import struct
import zlib

import numpy as np
import pytest
from builders import PNG_SIGNATURE, png_bytes, write_dicom, write_netpbm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from preproc.errors import DecodeError
from preproc.io import decode, probe

RNG = np.random.default_rng(5)
EXAMPLES = int(os.environ.get("PREPROC_FUZZ_EXAMPLES", "50"))
CASE_SECONDS = 20  # generous for a loaded 2-core machine; a hang never ends
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@contextlib.contextmanager
def bounded_and_read_only(seconds: int = CASE_SECONDS):
    """Fail a case that runs longer than ``seconds`` or opens any file for writing."""
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            raise AssertionError(f"decoder opened {file!r} for writing ({mode})")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS:
            raise AssertionError(f"decoder opened {path!r} for writing")
        return real_os_open(path, flags, *args, **kwargs)

    def on_alarm(signum, frame):
        raise TimeoutError(f"decoding took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    builtins.open, os.open = guarded_open, guarded_os_open
    try:
        yield
    finally:
        builtins.open, os.open = real_open, real_os_open
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _pillow_bytes(array, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _tiff_bytes(array, **options) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _dicom_bytes(tmp_dir) -> bytes:
    return write_dicom(
        tmp_dir / "seed.dcm", RNG.integers(0, 4096, (8, 8)).astype(np.uint16), bits_stored=12
    ).read_bytes()


def refix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC so that mutations reach the inflater and the unfilter."""
    out = bytearray(data[:8])
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        end = pos + 12 + length
        if end > len(data):
            out += data[pos:]
            break
        kind_and_body = data[pos + 4 : pos + 8 + length]
        out += data[pos : pos + 8 + length] + struct.pack(">I", zlib.crc32(kind_and_body))
        pos = end
    return bytes(out)


SEEDS = {
    "png16rgb": png_bytes(RNG.integers(0, 65536, (8, 9, 3)).astype(np.uint16)),
    "png4gray-adam7": png_bytes(
        RNG.integers(0, 16, (9, 9)).astype(np.uint8), bit_depth=4, interlace=True
    ),
    "png8rgba": png_bytes(RNG.integers(0, 256, (6, 7, 4)).astype(np.uint8)),
    "jpeg": _pillow_bytes(RNG.integers(0, 256, (16, 16, 3)).astype(np.uint8), "JPEG"),
    "bmp": _pillow_bytes(RNG.integers(0, 256, (5, 6, 3)).astype(np.uint8), "BMP"),
    "gif": _pillow_bytes(RNG.integers(0, 256, (5, 6)).astype(np.uint8), "GIF"),
    "tiff16": _tiff_bytes(RNG.integers(0, 65536, (8, 8, 3)).astype(np.uint16), photometric="rgb"),
    "tiff-float-zlib": _tiff_bytes(
        RNG.standard_normal((8, 8)).astype(np.float32), compression="zlib"
    ),
}

mutations = st.lists(
    st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6
)


def mutate(data: bytes, edits, cut) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        buffer[position % len(buffer)] = value
    return bytes(buffer[: max(1, int(len(buffer) * cut))])


def check(path) -> None:
    """Either a consistent result or DecodeError; anything else fails the test."""
    for call in (probe, decode):
        try:
            with bounded_and_read_only():
                result = call(path)
        except DecodeError as exc:
            assert exc.reason
            continue
        if call is decode:
            array, info = result
            assert isinstance(array, np.ndarray)
            assert array.shape == (info.height, info.width, info.channels)


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(edits=mutations, cut=st.sampled_from([1.0, 1.0, 0.97, 0.75, 0.5, 0.1]))
def test_mutated_files(tmp_path, name, edits, cut):
    path = tmp_path / "fuzz"
    path.write_bytes(mutate(SEEDS[name], edits, cut))
    check(path)


@FUZZ
@given(edits=mutations, seed=st.sampled_from(["png16rgb", "png4gray-adam7", "png8rgba"]))
def test_mutated_png_with_valid_crcs_reaches_the_decoder(tmp_path, edits, seed):
    data = SEEDS[seed]
    body = bytearray(data)
    for position, value in edits:  # keep the signature so the PNG path is taken
        body[len(PNG_SIGNATURE) + position % (len(body) - len(PNG_SIGNATURE))] = value
    path = tmp_path / "fuzz.png"
    path.write_bytes(refix_png_crcs(bytes(body)))
    check(path)


@FUZZ
@given(edits=mutations, cut=st.sampled_from([1.0, 0.9, 0.5]))
def test_mutated_netpbm(tmp_path, edits, cut):
    netpbm = write_netpbm(
        tmp_path / "seed.ppm", RNG.integers(0, 4096, (4, 4, 3)), 4095
    ).read_bytes()
    path = tmp_path / "fuzz.ppm"
    path.write_bytes(mutate(netpbm, edits, cut))
    check(path)


@FUZZ
@given(edits=mutations, cut=st.sampled_from([1.0, 0.9, 0.5]))
def test_mutated_dicom(tmp_path, edits, cut):
    dicom = _dicom_bytes(tmp_path)  # skips the test without pydicom
    path = tmp_path / "fuzz.dcm"
    path.write_bytes(mutate(dicom, edits, cut))
    check(path)


def test_guard_catches_writes_and_hangs(tmp_path):
    with pytest.raises(AssertionError, match="for writing"):
        with bounded_and_read_only():
            open(tmp_path / "x", "w")
    with pytest.raises(TimeoutError):
        with bounded_and_read_only(1):
            while True:
                pass
