"""Everything the tests build on disk, generated under ``tmp_path``: image files, datasets, configs.

``write_png`` is an independent PNG encoder (any bit depth and colour type, every filter type,
Adam7), so decoding tests do not depend on the encoder they are testing against; its
``PNG_SIGNATURE`` is spelled out here for the same reason. :func:`write_config_file` is the one
config writer: the ``write_config`` fixture of ``conftest.py``, :func:`config_for` and
:func:`flow_config` all write through it.
"""

from __future__ import annotations

import struct
import textwrap
import zlib
from pathlib import Path

import numpy as np
import yaml

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> colour type (non-palette)
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filter_rows(rows: np.ndarray, bpp: int, filters) -> bytes:
    """Apply PNG filter ``filters[r]`` to each row of unfiltered bytes ``rows``."""
    height = rows.shape[0]
    x = rows.astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    predictions = [np.zeros_like(x), a, b, (a + b) >> 1, _paeth(a, b, c)]
    out = bytearray()
    for r in range(height):
        f = int(filters[r])
        out.append(f)
        out += ((x[r] - predictions[f][r]) % 256).astype(np.uint8).tobytes()
    return bytes(out)


def _pack(samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """``(h, w, c)`` samples to bytes rows ``(h, row_bytes)``."""
    height = samples.shape[0]
    flat = samples.reshape(height, -1)
    if bit_depth == 16:
        return flat.astype(">u2").view(np.uint8).reshape(height, -1)
    if bit_depth == 8:
        return flat.astype(np.uint8)
    per_byte = 8 // bit_depth
    pad = (-flat.shape[1]) % per_byte
    flat = np.pad(flat.astype(np.uint8), ((0, 0), (0, pad)))
    groups = flat.reshape(height, -1, per_byte)
    shifts = np.arange(per_byte - 1, -1, -1) * bit_depth
    return (groups.astype(np.uint16) << shifts).sum(axis=2).astype(np.uint8)


def png_bytes(
    array: np.ndarray,
    *,
    bit_depth: int | None = None,
    palette: np.ndarray | None = None,
    trns: bytes | None = None,
    sbit=None,
    interlace: bool = False,
    filters="random",
    seed: int = 0,
    chunks_before_idat: tuple = (),
    idat_pieces: int = 1,
) -> bytes:
    """Encode ``array`` ``(h, w)`` or ``(h, w, c)`` as PNG bytes.

    Args:
        array: samples; with ``palette`` the indices.
        bit_depth: defaults to 16 for uint16 arrays, else 8.
        palette: ``(n, 3)`` uint8 entries: writes a palette (colour type 3) image.
        trns: raw tRNS payload.
        sbit: int or sequence of significant bits per channel.
        interlace: Adam7.
        filters: ``'random'`` (a random filter type 0-4 per row), an int, or a sequence.
        chunks_before_idat: extra ``(kind, data)`` chunks.
        idat_pieces: split the zlib stream over this many IDAT chunks.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    if bit_depth is None:
        bit_depth = 16 if array.dtype == np.uint16 else 8
    color_type = 3 if palette is not None else _COLOR_TYPES[channels]
    rng = np.random.default_rng(seed)
    bpp = max(1, channels * bit_depth // 8)
    raw = bytearray()
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        sub = array[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        rows = _pack(sub, bit_depth)
        if isinstance(filters, str):
            kinds = rng.integers(0, 5, rows.shape[0])
        elif isinstance(filters, int):
            kinds = [filters] * rows.shape[0]
        else:
            kinds = filters
        raw += _filter_rows(rows, bpp, kinds)
    out = PNG_SIGNATURE + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    )
    if sbit is not None:
        values = (
            [sbit] * (3 if color_type == 3 else channels) if isinstance(sbit, int) else list(sbit)
        )
        out += png_chunk(b"sBIT", bytes(values))
    if palette is not None:
        out += png_chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    for kind, data in chunks_before_idat:
        out += png_chunk(kind, data)
    stream = zlib.compress(bytes(raw))
    step = -(-len(stream) // idat_pieces)
    for i in range(0, len(stream), step):
        out += png_chunk(b"IDAT", stream[i : i + step])
    return out + png_chunk(b"IEND", b"")


def write_png(path, array, **options) -> Path:
    """Write ``png_bytes(array, **options)`` to ``path``; return the path."""
    path = Path(path)
    path.write_bytes(png_bytes(array, **options))
    return path


def write_tiff(path, array, **options) -> Path:
    """Write ``array`` with ``tifffile.imwrite(path, array, **options)``."""
    import tifffile

    path = Path(path)
    tifffile.imwrite(path, array, **options)
    return path


def write_netpbm(path, array, maxval: int, *, ascii: bool = False) -> Path:
    """Write a PGM (``(h, w)``/``(h, w, 1)``) or PPM (``(h, w, 3)``) file."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    magic = {(1, False): b"P5", (3, False): b"P6", (1, True): b"P2", (3, True): b"P3"}[
        channels, ascii
    ]
    header = magic + b"\n# written by the test-suite\n%d %d\n%d\n" % (width, height, maxval)
    if ascii:
        body = " ".join(str(int(v)) for v in array.ravel()).encode() + b"\n"
    else:
        body = array.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path = Path(path)
    path.write_bytes(header + body)
    return path


def write_dicom(
    path,
    array,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    frames: int = 1,
    rescale: tuple[float, float] | None = None,
    pixels: bool = True,
    big_endian: bool = False,
    preamble: bool = True,
    tags: dict | None = None,
) -> Path:
    """Write a minimal valid Secondary Capture DICOM file of ``array`` with pydicom.

    Args:
        array: ``(h, w)``, ``(h, w, 3)``, or ``(frames, h, w[, 3])`` when ``frames > 1``;
            uint8/uint16/int16 (BitsAllocated from the dtype).
        bits_stored: BitsStored (default: all bits of the dtype).
        rescale: ``(slope, intercept)``.
        pixels: when false, no PixelData element is written.
        big_endian: Explicit VR Big Endian transfer syntax.
        preamble: write the 128-byte preamble and ``DICM``.
        tags: more attributes by keyword (``Modality``, ``WindowCenter``, ...), set last.

    Skips the calling test when pydicom is not installed.
    """
    import pytest

    pytest.importorskip("pydicom", reason="DICOM fixtures are written with pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, generate_uid

    array = np.asarray(array)
    syntax = ExplicitVRBigEndian if big_endian else ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.PatientName = "Test^Fixture"
    frame_shape = array.shape[1:] if frames > 1 else array.shape
    ds.Rows, ds.Columns = frame_shape[0], frame_shape[1]
    ds.SamplesPerPixel = frame_shape[2] if len(frame_shape) == 3 else 1
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = array.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    if frames > 1:
        ds.NumberOfFrames = frames
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if pixels:
        order = ">" if big_endian else "<"
        ds.PixelData = array.astype(array.dtype.newbyteorder(order)).tobytes()
        ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    for keyword, value in (tags or {}).items():
        setattr(ds, keyword, value)
    path = Path(path)
    ds.save_as(path, enforce_file_format=preamble)
    return path


# --- datasets ----------------------------------------------------------------------------------


def gray12(seed: int, shape=(24, 20)) -> np.ndarray:
    """Random 12-bit content in a uint16 array, always reaching 0 and 4095."""
    arr = np.random.default_rng(seed).integers(0, 4096, shape).astype(np.uint16)
    arr.flat[0], arr.flat[1] = 0, 4095
    return arr


def rgb8(seed: int, shape=(16, 16, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def clean_dataset(root: Path, per_class: int = 4) -> Path:
    """Two classes of 12-bit PNGs with sBIT=12: nothing to report against a 12-bit expect."""
    for cls, base in (("normal", 0), ("pneumonia", 100)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            write_png(root / cls / f"{i:03d}.png", gray12(base + i), sbit=12)
    return root


def messy_dataset(root: Path) -> Path:
    """A 12-bit dataset with one of every problem the audit reports.

    normal/: 4 clean 12-bit PNGs, an 8-bit RGB PNG, a PNG with 16-bit content, a constant image
    and a copy of pneumonia/000.png; pneumonia/: 2 clean PNGs, a truncated and an empty file;
    empty/: no image.
    """
    clean_dataset(root, per_class=4)
    for name in ("002.png", "003.png"):
        (root / "pneumonia" / name).unlink()
    write_png(root / "normal" / "rgb.png", rgb8(7))
    wide = gray12(8)
    wide.flat[2] = 60000
    write_png(root / "normal" / "wide.png", wide)
    write_png(root / "normal" / "flat.png", np.full((8, 8), 1000, np.uint16), sbit=12)
    (root / "normal" / "copy.png").write_bytes((root / "pneumonia" / "000.png").read_bytes())
    good = (root / "pneumonia" / "001.png").read_bytes()
    (root / "pneumonia" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "pneumonia" / "zero.png").write_bytes(b"")
    (root / "empty").mkdir()
    return root


def dicom12(path: Path, seed: int, photometric: str = "MONOCHROME2") -> Path:
    return write_dicom(path, gray12(seed, (16, 16)), bits_stored=12, photometric=photometric)


def rgb_dataset(root, per_class=6, classes=("a", "b"), size=(20, 28), seed=0):
    """Random 8-bit RGB PNGs written by Pillow, ``per_class`` per class folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{i:03d}.png")
    return root


# --- configs -----------------------------------------------------------------------------------


def write_config_file(path, content) -> Path:
    """Write a config to ``path``: YAML text (dedented) or a mapping (dumped as YAML).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    text = textwrap.dedent(content) if isinstance(content, str) else yaml.safe_dump(content)
    path.write_text(text, encoding="utf-8")
    return path


def config_for(root: Path, expect: str = "dtype: uint16\n    bit_depth: 12\n    channels: 1",
               checks: str = "", name: str = "audit.yaml") -> Path:
    """Write a config next to ``root`` pointing at it."""
    text = f"""\
version: 1
source:
  directory: {root.name}
  expect:
    {expect}
"""
    if checks:
        text += "checks:\n" + textwrap.indent(textwrap.dedent(checks), "  ")
    return write_config_file(root.parent / name, text)


def flow_config(tmp_path, root, *, stages=None, expect=None, runtime=1, name="cfg.yaml",
                extensions=None, **batches):
    """Write a config for dataset ``root`` (8-bit rescale by default) and load it."""
    from preproc.config import load_config

    doc = {"version": 1, "source": {"directory": str(root)},
           "stages": stages if stages is not None else [{"rescale": {"factor": "1/255"}}],
           "batches": batches, "checks": {"runtime": {"sample_batches": runtime}}}
    if expect:
        doc["source"]["expect"] = expect
    if extensions:
        doc["source"]["extensions"] = extensions
    return load_config(write_config_file(tmp_path / name, doc))


def pydicom_file(name: str) -> Path:
    """A DICOM test file shipped inside pydicom (never downloaded); skips when pydicom or the
    file is not installed."""
    import pytest

    data = pytest.importorskip("pydicom.data")
    path = data.get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)
