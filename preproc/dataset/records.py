"""What one file's header says, as a :class:`FileRecord`, and how a failed read is named.

Runs in worker processes (the audit's local pool or Dask workers), so everything here is
picklable and imports only numpy and :mod:`preproc.io`. Reading never raises for a bad file:
every failure becomes a record with ``error`` set, so one corrupt file cannot stop an audit or a
header sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from ..io.info import ImageInfo, os_error_reason

if TYPE_CHECKING:
    from ..io.dicom import DicomDecoding

T = TypeVar("T")

__all__ = [
    "FileRecord", "fill_header", "fill_units", "guarded", "read_header", "stored_bits_declared",
]

#: Formats whose stored-bits value is always a header field (not just the container size).
_DECLARING_FORMATS = ("dicom", "tiff", "ppm")


#: Transport fields left out of reports (a histogram; a thumbnail and crop-window hashes the
#: parent compares).
_UNSHOWN = ("hist", "tiny", "crops")


@dataclass
class FileRecord:
    """What an audit learned about one file.

    Header fields are ``None`` when the header could not be read. Value fields (``min`` ...
    ``hash``) are ``None`` in a quick audit and for unreadable files. Per-channel values are
    lists with one entry per channel.

    Attributes:
        path: path relative to the dataset root, with ``/`` separators.
        cls: class folder name, or ``None`` for files in the root of a bare directory.
        error: reason the file could not be read losslessly (see ``preproc.io.DECODE_REASONS``),
            ``''`` when it was read.
        error_code: ``'unreadable-file'`` or ``'lossy-decode'`` when ``error`` is set.
        detail: human-readable detail of the error.
        stored_bits_declared: ``stored_bits`` comes from a header field (PNG sBIT, TIFF
            BitsPerSample, DICOM BitsStored, netpbm maxval) rather than the container size.
        effective_bits: bits needed for the observed values (integers only).
        phash, phash_center, tiny, crops, blur, brightness, entropy, grayscale, level_lo,
            level_hi: image measures of :mod:`preproc.auditing.quality`, on the image normalised by
            ``[level_lo, level_hi]`` (its declared or effective range).
        modality ... patient_id: DICOM header facts (``None`` for other formats); ``lossy``
            is LossyImageCompression 01 or a lossy transfer syntax; ``photometric`` is the
            header's value. ``patient_id`` is the raw PatientID: reports hash it.
        units: what the value fields (``min`` ... ``frac_max``, the histogram) of a grayscale
            DICOM file are in, decoded with the config's ``source.dicom`` as the pipeline
            receives them: ``'HU'``, ``'modality'``, ``'voi'`` or ``'stored'``; ``None`` for
            other files, whose values are the stored ones. ``dtype``, ``stored_bits``,
            ``signed`` and ``effective_bits`` stay facts of the stored values.
        value_dtype: dtype of the decoded values when it differs from ``dtype`` (``int16``
            HU of ``uint16`` stored values), else ``None``.
        units_range: the interval the header allows the values in ``units`` (see
            :func:`preproc.dataset.dicom_units.header_units`).
        hist: transport-only histogram payload consumed by the aggregator; never stored.
    """

    path: str
    cls: str | None
    format: str | None = None
    dtype: str | None = None
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    stored_bits: int | None = None
    stored_bits_declared: bool = False
    photometric: str | None = None
    signed: bool | None = None
    modality: str | None = None
    manufacturer: str | None = None
    transfer_syntax: str | None = None
    lossy: bool | None = None
    slope: float | None = None
    intercept: float | None = None
    window_center: float | None = None
    window_width: float | None = None
    pixel_spacing: list[float] | None = None
    patient_id: str | None = None
    units: str | None = None
    value_dtype: str | None = None
    units_range: list[float] | None = None
    effective_bits: int | None = None
    pixels: int | None = None
    min: list[float] | None = None
    max: list[float] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    p_low: list[float] | None = None
    p_high: list[float] | None = None
    frac_min: list[float] | None = None
    frac_max: list[float] | None = None
    nonfinite: int = 0
    hash: str | None = None
    phash: str | None = None
    phash_center: str | None = None
    tiny: str | None = field(default=None, repr=False)
    crops: str | None = field(default=None, repr=False)
    blur: float | None = None
    brightness: float | None = None
    entropy: float | None = None
    grayscale: bool | None = None
    level_lo: float | None = None
    level_hi: float | None = None
    error: str = ""
    error_code: str | None = None
    detail: str = ""
    hist: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """The file was read (headers in a quick audit, pixels in a full one)."""
        return not self.error

    @property
    def signature(self) -> tuple[str | None, int | None, int | None]:
        """``(dtype, stored_bits, channels)``: what must agree across a dataset."""
        return (self.dtype, self.stored_bits, self.channels)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly dict of every field except the transport histogram."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _UNSHOWN}
        out["class"] = out.pop("cls")
        return out


def read_header(root: str, rel: str, cls: str | None,
                options: DicomDecoding | None = None) -> tuple[FileRecord, ImageInfo | None]:
    """Probe one file's header: ``(record, ImageInfo or None)``; never raises for bad files.

    ``options`` (``source.dicom``) name the units a DICOM file's values would be in.
    """
    from ..io import read

    rec = FileRecord(path=rel, cls=cls)
    path = os.path.join(root, rel)
    info = guarded(rec, lambda: read(path, "header"))
    if info is not None:
        fill_header(rec, info, options)
    return rec, info


def guarded(rec: FileRecord, work: Callable[[], T], path: str | None = None) -> T | None:
    """Run ``work()``; turn any failure into ``rec.error`` and return ``None``.

    With ``path``, a file whose pixels need a decoder that is not installed still gets its
    header columns.
    """
    from ..errors import DecodeError, MissingDependencyError

    try:
        return work()
    except DecodeError as exc:
        _fail(rec, exc.code, exc.reason, exc.detail)
        if path is not None and exc.reason == "compressed-unsupported":
            _probe_quietly(rec, path)  # a missing decoder: the header still tells what it is
    except MissingDependencyError as exc:
        _fail(rec, "unreadable-file", "missing-dependency", str(exc))
    except OSError as exc:
        _fail(rec, "unreadable-file", os_error_reason(exc), str(exc))
    except MemoryError:
        _fail(rec, "unreadable-file", "out-of-memory", "decoding exhausted memory")
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the audit
        _fail(rec, "unreadable-file", "decoder-error", f"{type(exc).__name__}: {exc}")
    return None


def _probe_quietly(rec: FileRecord, path: str) -> None:
    from ..io import read

    try:
        fill_header(rec, read(path, "header"))
    except Exception:  # noqa: BLE001, S110 - the decode error already describes the file
        pass


def _fail(rec: FileRecord, code: str, reason: str, detail: str) -> None:
    rec.error_code, rec.error, rec.detail = code, reason or "unreadable", detail


def fill_header(rec: FileRecord, info: ImageInfo,
                options: DicomDecoding | None = None) -> None:
    """Header fields of ``rec`` from ``info`` (probed, or decoded with ``options``)."""
    rec.format, rec.dtype, rec.channels = info.format, info.dtype, info.channels
    rec.height, rec.width, rec.frames = info.height, info.width, info.frames
    rec.stored_bits, rec.photometric, rec.signed = info.stored_bits, info.photometric, info.signed
    rec.stored_bits_declared = stored_bits_declared(info)
    if info.format == "dicom":
        _fill_dicom(rec, info.extra or {})
        fill_units(rec, info, options)


def fill_units(rec: FileRecord, info: ImageInfo, options: DicomDecoding | None,
               effective_bits: int | None = None) -> None:
    """``units``, ``value_dtype``, ``units_range`` of a DICOM record (see :class:`FileRecord`);
    ``dtype`` becomes the stored container dtype again after a decode that changed it."""
    from .dicom_units import header_units

    stored = (info.extra or {}).get("stored_dtype") or info.dtype
    rec.dtype = stored
    rec.value_dtype = info.dtype if info.dtype != stored else None
    rec.units, rec.units_range = header_units(info, options, effective_bits)


def _fill_dicom(rec: FileRecord, extra: dict[str, Any]) -> None:
    """DICOM header columns; ``photometric`` stays the header's value after a colour decode."""
    rec.photometric = extra.get("stored_photometric") or rec.photometric
    rec.modality, rec.manufacturer = extra.get("modality"), extra.get("manufacturer")
    rec.transfer_syntax, rec.lossy = extra.get("transfer_syntax"), extra.get("lossy")
    rec.slope, rec.intercept = extra.get("rescale_slope"), extra.get("rescale_intercept")
    rec.window_center, rec.window_width = extra.get("window_center"), extra.get("window_width")
    rec.pixel_spacing, rec.patient_id = extra.get("pixel_spacing"), extra.get("patient_id")


def stored_bits_declared(info: ImageInfo) -> bool:
    """Whether ``info.stored_bits`` is a header's claim rather than the container size.

    PNG declares meaningful bits only through sBIT (``extra['sbit']``); JPEG, BMP and GIF have
    no such field. DICOM BitsStored and netpbm maxval always declare. TIFF BitsPerSample
    declares only when it is narrower than the container (12-bit samples unpacked to uint16):
    16 in a uint16 file says nothing about how many of those bits carry content, as a 16-bit
    PNG without sBIT says nothing.
    """
    if info.format == "png":
        return "sbit" in (info.extra or {})
    if info.format == "tiff":
        from ..dtypes import container_bits

        return info.stored_bits is not None and info.stored_bits < container_bits(info.dtype)
    return info.format in _DECLARING_FORMATS
