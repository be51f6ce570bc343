"""Per-file work of an audit: read one file, measure its pixels, return a :class:`FileRecord`.

This is the code that runs in worker processes (local pool or Dask workers), so everything here
is picklable and imports only numpy and :mod:`preproc.io`. A worker never raises for a bad file:
every failure becomes a record with ``error`` set, so one corrupt file cannot stop an audit.

Per-channel statistics come from :mod:`.pixelstats`.

Decisions:
    * Grayscale DICOM images of 16-bit values (a 512x512 CT, in HU or stored units) take their
      *display* statistics from a fixed subsample (every :data:`SAMPLE_STEP`-th pixel of
      every :data:`SAMPLE_STEP`-th row), each sampled pixel counting for its block: mean, std,
      the 0.5/99.5 percentiles, the shares of pixels at the extremes and the histogram merged
      into the dataset's group (its counts still sum to the pixel count). Those feed
      files.csv, report.json and the HTML histogram; no finding depends on them, and counting
      every pixel of a 16-bit image (``np.bincount`` widens each value to a 64-bit index) cost
      as much as pydicom's whole pixel decode. Everything a finding or the suggested block
      depends on stays exact, from every pixel: ``min``, ``max`` (so ``out-of-declared-range``
      and a constant image), ``effective_bits`` (the stored extremes), ``pixels`` and the
      content hash (duplicates). Images whose sides are not multiples of the step,
      images under :data:`SAMPLE_MIN_PIXELS`, multi-frame and colour images, and every other
      format are counted pixel by pixel.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from .. import dtypes
from ..dataset.records import FileRecord, fill_header, fill_units, guarded, read_header
from ..types import Array
from .pixelstats import (band_counts, direct_stats, effective_bits, exact_histogram,
                         integer_stats, single_channel_16)

if TYPE_CHECKING:
    from PIL import Image

    from ..dataset.dicom_tally import DicomOptions
    from ..io.info import ImageInfo

#: Decoded pixels: an array, or an 8-bit image Pillow holds (``read(..., "pillow-or-array")``).
Pixels: TypeAlias = "Array | Image.Image"

__all__ = ["SAMPLE_STEP", "Task", "measure", "process_chunk", "process_file"]

#: Grid step of the subsample the display statistics of 16-bit DICOM come from (module notes).
SAMPLE_STEP = 4
#: Smaller images are counted pixel by pixel (cheap, and a sample of them would be small).
SAMPLE_MIN_PIXELS = 1 << 16

#: One unit of work: dataset root, ``[(relative path, class), ...]``, quick flag and, as an
#: optional fourth item, the config's DICOM options (``DicomOptions.decoding()``, or ``None``).
Task = tuple[Any, ...]


def process_chunk(task: Task) -> list[FileRecord]:
    """Process every file of a chunk, in order. Runs in a worker; never raises for bad files.

    Each file is decoded and measured alone, down to its small working image; the image
    measures of the whole chunk are then taken together (:func:`_measure_together`).
    """
    _keep_freed_memory()
    root, items, quick = task[:3]
    dicom = task[3] if len(task) > 3 else None
    if quick:
        return [read_header(root, rel, cls, dicom)[0] for rel, cls in items]
    done = [_read_and_measure(root, rel, cls, dicom) for rel, cls in items]
    _measure_together(done)
    return [rec for rec, _ in done]


#: Freed memory a worker's allocator keeps for the next file (see :func:`_keep_freed_memory`).
KEEP_FREED = 32 << 20
_tuned = False


def _keep_freed_memory() -> None:
    """In a pool worker on glibc, keep up to :data:`KEEP_FREED` bytes of freed memory.

    Every file allocates the same few full-size arrays (the file's bytes, the pixels, their
    units) and frees them. glibc gives such blocks back to the system as soon as they are
    freed (``mmap`` above 128 KiB, heap trimming), so the next file faults every page in
    again: a fifth of the per-file time of a 512x512 DICOM. Raising the mmap and trim
    thresholds keeps those pages for reuse. Only worker processes are tuned (their memory is
    returned when the pool ends); the parent and other platforms are left as they are.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    import multiprocessing
    import sys

    if not sys.platform.startswith("linux") or multiprocessing.parent_process() is None:
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    for param in (-3, -1):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        mallopt(ctypes.c_int(param), ctypes.c_int(KEEP_FREED))


def process_file(root: str, rel: str, cls: str | None, quick: bool,
                 dicom: DicomOptions | None = None) -> FileRecord:
    """Read one file (headers only when ``quick``) and return its record.

    ``dicom`` (the config's ``source.dicom``) decodes grayscale DICOM files as the pipeline
    receives them (modality LUT, VOI, MONOCHROME1 inversion, every frame with ``frames: all``):
    their values, histograms and image measures are in those units (``rec.units``).
    """
    return process_chunk((root, [(rel, cls)], quick, dicom))[0]


def _read_and_measure(root: str, rel: str, cls: str | None,
                      dicom: DicomOptions | None) -> tuple[FileRecord, Array | None]:
    """``(record, working image or None)``: the file decoded, its header and value fields
    filled, and the working image its image measures are taken on (:func:`_prepare`)."""
    rec = FileRecord(path=rel, cls=cls)
    path = os.path.join(root, rel)

    def full() -> Array | None:
        pixels, info = _decode(path, dicom)
        fill_header(rec, info, dicom)
        _fill_values(rec, pixels, info, dicom)
        return _prepare(rec, pixels)

    return rec, guarded(rec, full, path)


def _measure_together(done: list[tuple[FileRecord, Array | None]]) -> None:
    """Fill the image measures of every record that has a working image, all at once
    (:func:`~preproc.auditing.quality.measures_of`); should that fail, image by image, so a
    failure costs only the record it belongs to."""
    from .quality import measures_of

    have = [(rec, work) for rec, work in done if work is not None]
    try:
        found = measures_of([work for _, work in have])
    except Exception:  # noqa: BLE001 - retried one by one below, each guarded
        for rec, work in have:
            guarded(rec, partial(_measure_alone, rec, work))
        return
    for (rec, _), measures in zip(have, found):
        _set(rec, measures)


def _measure_alone(rec: FileRecord, work: Array) -> None:
    from .quality import measures_of

    _set(rec, measures_of([work])[0])


def _set(rec: FileRecord, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(rec, name, value)


def _decode(path: str, dicom: DicomOptions | None) -> tuple[Pixels, ImageInfo]:
    """``read`` once; a multi-frame DICOM file under ``frames: all`` again, whole."""
    from ..io import read

    pixels, info = read(path, "pillow-or-array", dicom=dicom)  # 8-bit stays in Pillow: no copy
    if (dicom is not None and dicom.frames == "all" and info.format == "dicom"
            and info.frames > 1):
        pixels, info = read(path, "array", dicom=dicom, frame="all")
    return pixels, info


def _prepare(rec: FileRecord, pixels: Pixels) -> Array | None:
    """Set the image measures that need the pixels (:func:`~preproc.auditing.quality.prepare`)
    and return the working image the others are taken on, or ``None``.

    Values in DICOM units are shown to the measures as ``[0, 1]`` over the interval the header
    allows them (``units_range``), as a stored integer image is over its declared levels.
    """
    from .quality import prepare

    target: Pixels = pixels
    units = None
    if rec.units not in (None, "stored") and rec.units_range and isinstance(pixels, np.ndarray):
        units = (float(rec.units_range[0]), float(rec.units_range[1]))
        target = _unit_interval(pixels, *units)
    prepared = prepare(target, rec, None if units is None else (0.0, 1.0))
    if prepared is None:
        return None
    work, fields = prepared
    if units is not None:
        fields["level_lo"], fields["level_hi"] = units
    _set(rec, fields)
    return work


def _unit_interval(pixels: Array, lo: float, hi: float) -> Array:
    """The first frame mapped linearly from ``[lo, hi]`` onto ``[0, 1]``, float32, box-reduced
    as the quality measures would reduce it (:func:`box_reduced`)."""
    out = box_reduced(pixels[0] if pixels.ndim == 4 else pixels)
    if (lo, hi) != (0.0, 1.0):
        out -= np.float32(lo)
        out *= np.float32(1.0 / (hi - lo) if hi > lo else 1.0)
    return out


def box_reduced(x: Array) -> Array:
    """``(H, W, C)`` as float32, reduced to the quality measures' working size by exact block
    means when an integer factor gets there (a 512x512 CT: 4x4 blocks to 128x128), else as is.

    The measures reduce their working image with a box filter anyway, and a box filter at an
    integer factor is this block mean; averaging first and normalising after is the same
    affine arithmetic in the other order, on a sixteenth of the pixels.
    """
    from .quality import WORK_SIDE

    h, w = x.shape[:2]
    k = max(h, w) // WORK_SIDE
    if max(h, w) % WORK_SIDE or k < 2 or h % k or w % k:
        return x.astype(np.float32)  # always a fresh array: callers scale it in place
    # rows summed straight from the stored integers, each converted while it is added (one
    # reduction over the k rows of every block), so no full-size float copy is made
    rows = np.add.reduce(x.reshape(h // k, k, *x.shape[1:]), axis=1, dtype=np.float32)
    out: Array = rows[:, 0::k].copy()
    for i in range(1, k):
        out += rows[:, i::k]
    out *= np.float32(1.0 / (k * k))
    return out


def _fill_values(rec: FileRecord, pixels: Pixels, info: ImageInfo,
                 dicom: DicomOptions | None) -> None:
    """Value fields; for DICOM in units, the effective bits come from the stored values and
    narrow the header's interval (:func:`~preproc.dataset.records.fill_units`)."""
    sample = SAMPLE_STEP if info.format == "dicom" else 1
    stats = measure(pixels, sample=sample)
    for name, value in stats.items():
        setattr(rec, name, value)
    if rec.units is None:
        return
    stored = (info.extra or {}).get("stored_range")
    rec.effective_bits = effective_bits(*stored, signed=bool(rec.signed)) if stored else None
    if rec.effective_bits is not None:
        fill_units(rec, info, dicom, rec.effective_bits)


def as_channels(array: Array) -> Array:
    """View an ``HxW``, ``HxWxC`` or ``FxHxWxC`` array as ``(pixels, C)``."""
    if array.ndim <= 2:
        return array.reshape(-1, 1)
    return array.reshape(-1, array.shape[-1])


def content_hash(array: Array) -> str:
    """Hash of dtype name, shape and native-order pixel bytes; equal pixels, equal hash.

    XXH3 with 128 bits (the ``xxhash`` package): about 30 times faster than SHA-256, which
    made hashing a third of the per-file cost of auditing small 8-bit images. It is not a
    cryptographic hash: a crafted collision could hide a duplicate, but 128 bits keep
    accidental collisions out of reach for any dataset.
    """
    native = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    return _hash(dtypes.normalize_dtype(native.dtype), native.shape, native.data.cast("B"))


def _hash(dtype_name: str, shape: tuple[int, ...], data: bytes | memoryview) -> str:
    import xxhash

    digest = xxhash.xxh3_128(f"{dtype_name}{tuple(shape)}".encode())
    digest.update(data)
    return digest.hexdigest()


def measure(pixels: Pixels, sample: int = 1) -> dict[str, Any]:
    """Per-channel statistics of one decoded image.

    Args:
        pixels: an ``HxW``, ``HxWxC`` (or with a leading frame axis) array in its container
            dtype, or a loaded ``PIL.Image`` of 8-bit samples (mode ``L``, ``LA``, ``RGB`` or
            ``RGBA``, as :func:`preproc.io.read` gives for ``"pillow-or-array"``), measured as the
            ``(H, W, C)`` ``uint8`` array it holds.
        sample: a grid step above 1 takes mean, std, percentiles and the histogram of a
            single-channel 16-bit ``(H, W, 1)`` image of at least :data:`SAMPLE_MIN_PIXELS`
            from every ``sample``-th pixel of every ``sample``-th row (each standing for its
            block; see the module notes) when both sides are multiples of it; ``min``,
            ``max``, ``effective_bits``, ``pixels`` and ``hash`` stay exact.

    Returns:
        Field values for :class:`FileRecord`: ``pixels``, ``min``, ``max``, ``mean``, ``std``
        (population), ``p_low``/``p_high`` (0.5 and 99.5 percentiles), ``frac_min``/``frac_max``,
        ``effective_bits`` (integers), ``nonfinite`` (floats), ``hash`` and ``hist`` (the payload
        :mod:`preproc.auditing.aggregate` merges).
    """
    if not isinstance(pixels, np.ndarray):
        return _measure_image(pixels)
    from .aggregate import float_payload

    if sample > 1 and _samplable(pixels, sample):
        out = _sampled_stats(pixels, sample)
        out["hash"] = content_hash(pixels)
        return out
    flat = as_channels(pixels)
    if flat.dtype.kind == "b":
        flat = flat.view(np.uint8)
    if flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2:
        out = integer_stats(*exact_histogram(flat), dtypes.normalize_dtype(flat.dtype))
    else:
        out = direct_stats(flat)
        out["hist"] = float_payload(flat)
        if flat.dtype.kind in "ui" and out["pixels"]:
            out["effective_bits"] = effective_bits(min(out["min"]), max(out["max"]),
                                                   signed=flat.dtype.kind == "i")
    out["hash"] = content_hash(pixels)
    return out


def _samplable(pixels: Array, step: int) -> bool:
    """A single-channel 16-bit ``(H, W, 1)`` image of at least :data:`SAMPLE_MIN_PIXELS`
    whose sides are multiples of ``step``."""
    return (pixels.ndim == 3 and pixels.shape[2] == 1 and pixels.dtype.kind in "ui"
            and pixels.dtype.itemsize == 2 and pixels.size >= SAMPLE_MIN_PIXELS
            and pixels.shape[0] % step == 0 and pixels.shape[1] % step == 0)


def _sampled_stats(pixels: Array, step: int) -> dict[str, Any]:
    """:func:`measure`'s statistics with display values from a ``step`` grid subsample.

    Each sampled pixel counts ``step**2`` times, so the histogram sums to the pixel count;
    ``min``/``max`` and the effective bits are then replaced by the exact values of every
    pixel (``np.min``/``np.max``, a fraction of a full-size histogram's cost), and
    ``frac_min``/``frac_max`` are the sampled shares of those exact extremes.
    """
    middle = step // 2  # the pixel nearest each block's centre: no half-block shift
    values = pixels[middle::step, middle::step, 0]
    counts, offset = single_channel_16(values.ravel(), np.dtype(f"uint{8 * pixels.dtype.itemsize}"))
    counts *= step * step
    out = integer_stats(counts, offset, dtypes.normalize_dtype(pixels.dtype))
    lo, hi = int(pixels.min()), int(pixels.max())
    out["min"], out["max"] = [float(lo)], [float(hi)]
    # estimated like the other display values: the sampled share of the exact extremes
    out["frac_min"], out["frac_max"] = ([float(counts[0, v - offset]) / pixels.size
                                         if v - offset < counts.shape[1] and v >= offset
                                         else 0.0] for v in (lo, hi))
    out["effective_bits"] = effective_bits(lo, hi, signed=pixels.dtype.kind == "i")
    return out


def _measure_image(image: Image.Image) -> dict[str, Any]:
    """:func:`measure` of an 8-bit Pillow image: Pillow's C histogram, no copy to NumPy."""
    bands = len(image.getbands())
    out = integer_stats(band_counts(image, bands), 0, "uint8")
    width, height = image.size
    out["hash"] = _hash("uint8", (height, width, bands), image.tobytes())
    return out
