"""Builders for hostile inputs and a runner that turns a hang into a test failure.

Every scenario that could hang on broken code runs in a child Python process with a time limit,
so a regression shows up as a failed test (``hung``) instead of a stuck test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def env() -> dict:
    """The environment of a child: this tree first on the import path."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), out.get("PYTHONPATH", "")])
    return out


def run_python(code: str, *, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (own process group); a run past ``timeout`` fails the
    calling test as a hang after killing the whole group."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"hung for more than {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def last_json(stdout: str):
    """The last line of ``stdout`` parsed as JSON."""
    return json.loads(stdout.strip().splitlines()[-1])


def preproc_cli(*args: str, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m preproc ARGS`` with a time limit."""
    proc = subprocess.run([sys.executable, "-m", "preproc", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    return proc


def dataset(root: Path, per_class: int = 8, size=(24, 24), classes=("a", "b")) -> Path:
    """A small 8-bit RGB PNG dataset."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
                root / name / f"{i:03d}.png")
    return root


def config(path: Path, data: Path, stages=None, **batches) -> Path:
    """Write a config for dataset ``data``; returns its path."""
    doc = {"version": 1, "source": {"directory": str(data)},
           "stages": stages if stages is not None else [{"rescale": {"factor": "1/255"}}],
           "batches": {"target_size": [16, 16], **batches}}
    path.write_text(yaml.safe_dump(doc))
    return path


# ----------------------------------------------------------------------------- bombs
def zeros_zlib(n: int, chunk: int = 1 << 20) -> bytes:
    """A valid zlib stream of ``n`` zero bytes, built in milliseconds: after a full flush a
    deflate compressor forgets its history, so one compressed chunk can be repeated."""
    import zlib

    c = zlib.compressobj(9)
    head = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)  # zlib header + chunk
    body = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, chunk)
    parts = [head] + [body] * (full - 1) if full else [head[:2]]
    if rest:
        parts.append(c.compress(bytes(rest)) + c.flush(zlib.Z_FULL_FLUSH))
    adler = ((n % 65521) << 16) | 1  # adler32 of n zeros
    parts.append(b"\x03\x00" + adler.to_bytes(4, "big"))  # final empty block, checksum
    return b"".join(parts)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, width: int = 9000, height: int = 9000, bit_depth: int = 16,
             color_type: int = 6) -> Path:
    """A tiny PNG of zeros whose pixels decode to ``height x width x channels x bytes``."""
    import struct

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row = 1 + width * channels * bit_depth // 8
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zeros_zlib(row * height)) + _png_chunk(b"IEND", b""))
    return path


def tiff_bomb(path: Path, width: int = 9000, height: int = 9000, samples: int = 4,
              bits: int = 64, sample_format: int = 3, tile: int = 256) -> Path:
    """A tiled deflate TIFF of zeros (float64 RGBA by default) in which every tile points at the
    same compressed bytes: kilobytes on disk, gigabytes decoded."""
    import struct

    across, down = -(-width // tile), -(-height // tile)
    n = across * down
    blob = zeros_zlib(tile * tile * samples * bits // 8)
    entries = []  # (tag, type, count, value-or-bytes)
    arrays = b""
    base = 8
    photometric = 2 if samples >= 3 else 1
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, samples, [bits] * samples),
            (259, 3, 1, 8), (262, 3, 1, photometric), (277, 3, 1, samples), (284, 3, 1, 1),
            (322, 3, 1, tile), (323, 3, 1, tile), (324, 4, n, None), (325, 4, n, [len(blob)] * n)]
    if samples in (2, 4):
        tags.append((338, 3, 1, 2))
    tags.append((339, 3, samples, [sample_format] * samples))
    ifd_size = 2 + 12 * len(tags) + 4
    data_at = base + ifd_size
    blob_at = data_at
    extra = blob
    for tag, typ, count, value in tags:
        if tag == 324:
            value = [blob_at] * n
        if count == 1:
            entries.append(struct.pack("<HHI", tag, typ, count)
                           + (struct.pack("<H", value) + b"\0\0" if typ == 3 else struct.pack("<I", value)))
            continue
        fmt = "<%d%s" % (count, "H" if typ == 3 else "I")
        packed = struct.pack(fmt, *value)
        if len(packed) <= 4:
            entries.append(struct.pack("<HHI", tag, typ, count) + packed.ljust(4, b"\0"))
            continue
        offset = data_at + len(extra) + len(arrays)
        arrays += packed + (b"\0" if len(packed) % 2 else b"")
        entries.append(struct.pack("<HHII", tag, typ, count, offset))
    ifd = struct.pack("<H", len(tags)) + b"".join(entries) + b"\0\0\0\0"
    path.write_bytes(b"II*\x00" + struct.pack("<I", base) + ifd + extra + arrays)
    return path


def dicom_bomb(path: Path, rows: int = 9000, columns: int = 9000, samples: int = 3,
               bits: int = 32) -> Path:
    """A DICOM header claiming ``rows x columns x samples`` samples of ``bits`` over a few bytes
    of pixel data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(16)
    ds.save_as(path, enforce_file_format=True)
    return path


def netpbm_bomb(path: Path, width: int = 20000, height: int = 20000, maxval: int = 65535) -> Path:
    """A PPM header claiming a huge 16-bit raster over a few bytes."""
    path.write_bytes(b"P6\n%d %d\n%d\n" % (width, height, maxval) + bytes(64))
    return path


def sparse_corrupt_png(path: Path, size: int = 6 << 30) -> Path:
    """A sparse file of ``size`` bytes that starts like a PNG whose IHDR checksum is wrong."""
    good = png_bomb(path, 64, 64, 8, 0).read_bytes()
    bad = bytearray(good[:33])
    bad[29] ^= 0xFF  # IHDR CRC
    with open(path, "wb") as handle:
        handle.write(bytes(bad))
        handle.truncate(size)
    return path


def gif_bomb(path: Path, width: int = 9000, height: int = 9000) -> Path:
    """A small GIF whose frame is ``width x height`` (decoded by Pillow)."""
    from PIL import Image

    Image.new("P", (width, height), 0).save(path)
    return path


PEAK_RSS = """
    import json, resource, subprocess, sys
    proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    peak_kib = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 0)
    print(json.dumps({{"rc": proc.returncode, "out": proc.stdout[-4000:], "err": proc.stderr[-4000:],
                      "peak_mib": peak_kib / 1024}}))
"""


def peak_rss(args: list[str], timeout: float = 300) -> dict:
    """Run ``args`` as a grandchild and return its exit code, output and peak RSS (MiB,
    largest process of its tree)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(PEAK_RSS.format()), *args],
                          env=env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return last_json(proc.stdout)


def small_image(path: Path, fmt: str, height: int, width: int, channels: int, dtype: str) -> Path:
    """A valid image of zeros in ``fmt`` (``png``, ``tiff``, ``ppm``, ``bmp``, ``dicom``)."""
    arr = np.zeros((height, width, channels), dtype)
    if fmt == "png":
        if dtype == "uint16":
            return png_bomb(path, width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels])
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        Image.fromarray(arr if channels > 1 else arr[:, :, 0], mode).save(path)
    elif fmt == "tiff":
        import tifffile

        tifffile.imwrite(path, arr if channels > 1 else arr[:, :, 0],
                         photometric="rgb" if channels >= 3 else "minisblack",
                         extrasamples=["unassalpha"] if channels == 4 else None)
    elif fmt == "ppm":
        magic = b"P6" if channels == 3 else b"P5"
        maxval = 65535 if dtype == "uint16" else 255
        path.write_bytes(b"%s\n%d %d\n%d\n" % (magic, width, height, maxval) + arr.astype(
            ">u2" if dtype == "uint16" else "u1").tobytes())
    elif fmt == "bmp":
        Image.fromarray(arr if channels > 1 else arr[:, :, 0]).save(path, format="BMP")
    elif fmt == "dicom":
        dicom_bomb(path, height, width, channels, np.dtype(dtype).itemsize * 8)
        from pydicom import dcmread

        ds = dcmread(path)
        ds.PixelData = arr.tobytes()
        ds.save_as(path)
    return path
