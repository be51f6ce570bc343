"""DICOM through pydicom (optional, imported lazily): header probe and first-frame decoding.

Decisions:
    * ``dtype`` is what pydicom decodes to from BitsAllocated and PixelRepresentation
      (``uint8`` for 1- and 8-bit, ``uint16``/``int16``, ``uint32``/``int32``, ``float32`` for
      FloatPixelData, ``float64`` for DoubleFloatPixelData); ``stored_bits`` is BitsStored.
    * MONOCHROME1 is reported in ``photometric`` and not inverted, unless ``options`` (the
      config's ``source.dicom``) ask for it; then the pixel arithmetic is
      :mod:`preproc.io.dicom_lut` (modality LUT, VOI, inversion, in that order).
    * Colour data is handed over as pydicom converts it by default: YBR_FULL(_422) becomes RGB,
      and ``photometric`` names what the array holds (the header's value is kept in
      ``extra['stored_photometric']``; :func:`probe_dicom` reports the header's value).
      PALETTE COLOR expands through its lookup table to RGB in the table's bit depth.
    * ``modality_lut=True`` applies pydicom's ``apply_modality_lut`` to grayscale images: the
      result is ``float64`` when RescaleSlope/RescaleIntercept are present, the LUT's integer
      type for a Modality LUT Sequence, and the stored array unchanged otherwise.
    * Multi-frame files decode their first frame unless ``frame`` names another; ``frames``
      is NumberOfFrames.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeAlias

import numpy as np

from ..errors import DecodeError, MissingDependencyError
from ..types import Array
from ._files import check_info_budget, check_pixel_limit
from .info import ImageInfo

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: A file name as the readers take it.
Source: TypeAlias = "str | os.PathLike[str]"


class DicomDecoding(Protocol):
    """What decoding reads of the config's ``source.dicom`` (any object with these)."""

    @property
    def modality_lut(self) -> bool: ...

    @property
    def voi(self) -> str: ...

    @property
    def monochrome1(self) -> str: ...


__all__ = [
    "LOSSY_SYNTAXES", "decode_dicom", "install_hint", "lossy_source", "probe_dicom", "units_of",
]

_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _pydicom() -> ModuleType:
    try:
        import pydicom
        import pydicom.pixels
    except ImportError as exc:
        raise MissingDependencyError("pydicom", "dicom", "reading DICOM files") from exc
    return pydicom


def _read_error(path: Source, exc: Exception) -> DecodeError:
    text = f"{type(exc).__name__}: {exc}"
    lowered = str(exc).lower()
    short = ("end of file", "truncat", "less than expected")
    if isinstance(exc, EOFError) or any(word in lowered for word in short):
        return DecodeError(os.fspath(path), "truncated", text)
    return DecodeError(os.fspath(path), "corrupt", text)


#: Text elements only the header facts use, read from their raw bytes (see :func:`_texts`).
_TEXT_TAGS = {
    "Modality": 0x00080060, "Manufacturer": 0x00080070, "PatientID": 0x00100020,
    "ImagerPixelSpacing": 0x00181164, "PixelSpacing": 0x00280030,
    "WindowCenter": 0x00281050, "WindowWidth": 0x00281051, "RescaleIntercept": 0x00281052,
    "RescaleSlope": 0x00281053, "VOILUTFunction": 0x00281056,
    "LossyImageCompression": 0x00282110, "PhotometricInterpretation": 0x00280004,
    "NumberOfFrames": 0x00280008,
}
#: Unsigned short (US) elements of the image pixel module, read from their raw bytes (see
#: :func:`_ushort`).
_USHORT_TAGS = {
    "Rows": 0x00280010, "Columns": 0x00280011, "BitsAllocated": 0x00280100,
    "BitsStored": 0x00280101, "PixelRepresentation": 0x00280103, "SamplesPerPixel": 0x00280002,
}
#: Tags whose presence is tested before pydicom converts the element (a cheap membership test).
_MODALITY_LUT_SEQUENCE, _VOI_LUT_SEQUENCE = 0x00283000, 0x00283010
_TEXT_VRS = frozenset({"AE", "CS", "DS", "IS", "LO", "SH", None})


def _texts(ds: Dataset, keyword: str) -> list[str]:
    """The values of a short text element (CS, DS, IS, LO, SH) as stripped strings.

    Read from the element's raw bytes when pydicom has not converted it yet: pydicom's
    conversion of a value costs about as much as decoding a small image's pixels, and these
    elements are only ever read here. Values that are not plain ASCII (a PatientID in another
    character set), or other VRs, go through pydicom's conversion.
    """
    elem = ds.get_item(_TEXT_TAGS[keyword])
    if elem is None:
        return []
    if getattr(elem, "is_raw", False) and elem.VR in _TEXT_VRS and isinstance(elem.value, bytes):
        try:
            text = elem.value.decode("ascii")
        except UnicodeDecodeError:
            pass
        else:
            return [v.strip(" \x00") for v in text.split("\\") if v.strip(" \x00")]
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return [str(value).strip()]
    return [str(v).strip() for v in value]


def _ushort(ds: Dataset, keyword: str) -> int | None:
    """The value of a US element of :data:`_USHORT_TAGS`, or ``None`` when absent or empty.

    Read from the element's two raw bytes when pydicom has not converted it yet (a conversion
    costs several microseconds, and a header read asks for six of these); anything unusual
    (another length, a converted element) goes through pydicom; several values raise
    ``ValueError``, which the readers report as a corrupt file.
    """
    elem = ds.get_item(_USHORT_TAGS[keyword])
    if elem is None:
        return None
    value = elem.value
    if (getattr(elem, "is_raw", False) and elem.VR in ("US", None)
            and isinstance(value, bytes) and len(value) == 2):
        little = getattr(elem, "is_little_endian", True)  # a RawDataElement field
        return int.from_bytes(value, "little" if little else "big")
    converted = ds.get(keyword)
    if converted is None or converted == "":
        return None
    if hasattr(converted, "__len__"):  # these elements hold one value
        raise ValueError(f"{keyword} holds {len(converted)} values")
    return int(converted)


def _text(ds: Dataset, keyword: str) -> str | None:
    """The first value of a short text element, or ``None``."""
    values = _texts(ds, keyword)
    return values[0] if values else None


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "__len__") and not isinstance(value, str):  # multi-valued: first value
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


#: Transfer syntaxes whose encoding may discard information: JPEG baseline and extended, JPEG-LS
#: near-lossless, JPEG 2000 and HTJ2K without the lossless-only restriction, MPEG video, JPEG XL.
LOSSY_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.203",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
    "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112",
})


def lossy_source(transfer_syntax: str | None, lossy_compression: str | None) -> bool:
    """Whether a file's pixels went through lossy compression, from its header alone.

    LossyImageCompression ``01`` says so for this image or any ancestor it was derived from,
    whatever the file's current encoding; otherwise a lossy transfer syntax says so.
    """
    if (lossy_compression or "").strip() == "01":
        return True
    return (transfer_syntax or "") in LOSSY_SYNTAXES


def install_hint(transfer_syntax: str | None) -> str:
    """The pip command that installs a decoder for a compressed transfer syntax."""
    uid = str(transfer_syntax or "")
    if uid.startswith(("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20")):
        return "pip install pylibjpeg pylibjpeg-openjpeg (or: pip install python-gdcm)"
    if uid in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81") or uid.startswith(
            ("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.7")):
        return "pip install pylibjpeg pylibjpeg-libjpeg (or: pip install python-gdcm)"
    if uid == "1.2.840.10008.1.2.5":
        return "pip install pylibjpeg pylibjpeg-rle (or: pip install python-gdcm)"
    return "pip install python-gdcm"


def _spacing(ds: Dataset) -> list[float] | None:
    """PixelSpacing (or ImagerPixelSpacing for projection images) in mm, row then column."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _texts(ds, keyword)
        if value:
            try:
                return [float(v) for v in value][:2]
            except (TypeError, ValueError):
                return None
    return None


def _dtype(path: Source, ds: Dataset, bits_allocated: int, signed: bool) -> str:
    if 0x7FE00008 in ds:  # FloatPixelData
        return "float32"
    if 0x7FE00009 in ds:  # DoubleFloatPixelData
        return "float64"
    if bits_allocated <= 8:
        return "int8" if signed and bits_allocated == 8 else "uint8"
    size = {16: 16, 32: 32, 64: 64}.get(bits_allocated)
    if size is None:
        raise DecodeError(os.fspath(path), "unsupported", f"BitsAllocated {bits_allocated}")
    return f"{'int' if signed else 'uint'}{size}"


def _transfer_syntax(ds: Dataset) -> Any:
    """The dataset's Transfer Syntax UID; for files without one, the encoding pydicom read."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return uid
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is None:
        return None
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _info(path: Source, ds: Dataset, *, has_pixels: bool) -> ImageInfo:
    if _USHORT_TAGS["Rows"] not in ds or _USHORT_TAGS["Columns"] not in ds or not has_pixels:
        raise DecodeError(os.fspath(path), "no-pixel-data", "the dataset holds no image (no PixelData)")
    rows, columns = _ushort(ds, "Rows"), _ushort(ds, "Columns")
    if rows is None or columns is None:
        raise DecodeError(os.fspath(path), "corrupt", "Rows or Columns is empty")
    check_pixel_limit(path, rows, columns)
    allocated = _ushort(ds, "BitsAllocated") or 8
    stored = _ushort(ds, "BitsStored") or allocated
    signed = (_ushort(ds, "PixelRepresentation") or 0) == 1
    photometric = _text(ds, "PhotometricInterpretation") or "MONOCHROME2"
    samples = _ushort(ds, "SamplesPerPixel") or 1
    dtype = _dtype(path, ds, allocated, signed)
    syntax = _transfer_syntax(ds)
    extra: dict[str, Any] = {
        "transfer_syntax": str(syntax) if syntax else None,
        "transfer_syntax_name": getattr(syntax, "name", None),
        "bits_allocated": allocated,
        "stored_photometric": photometric,
        "modality": _text(ds, "Modality"),
        "rescale_slope": _number(_text(ds, "RescaleSlope")),
        "rescale_intercept": _number(_text(ds, "RescaleIntercept")),
        "window_center": _number(_text(ds, "WindowCenter")),
        "window_width": _number(_text(ds, "WindowWidth")),
        "voi_function": (_text(ds, "VOILUTFunction") or "LINEAR").upper(),
        "voi_lut": _VOI_LUT_SEQUENCE in ds and bool(ds.get("VOILUTSequence")),
        "modality_lut_bits": _lut_bits(ds.get("ModalityLUTSequence")
                                       if _MODALITY_LUT_SEQUENCE in ds else None),
        "manufacturer": _text(ds, "Manufacturer"),
        "lossy_compression": _text(ds, "LossyImageCompression"),
        "pixel_spacing": _spacing(ds),
        "patient_id": _text(ds, "PatientID"),
    }
    extra["lossy"] = lossy_source(extra["transfer_syntax"], extra["lossy_compression"])
    if photometric == "PALETTE COLOR":
        descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
        lut_bits = int(descriptor[2]) if descriptor is not None and len(descriptor) > 2 else 16
        samples, dtype, stored, signed = 3, "uint8" if lut_bits <= 8 else "uint16", lut_bits, False
    extra["stored_dtype"] = dtype
    info = ImageInfo(
        path=str(path),
        format="dicom",
        dtype=dtype,
        channels=samples,
        height=rows,
        width=columns,
        stored_bits=stored,
        photometric=photometric,
        signed=signed,
        frames=max(1, int(_number(_text(ds, "NumberOfFrames")) or 1)),
        extra=extra,
    )
    check_info_budget(info)
    return info


def _lut_bits(sequence: Any) -> int | None:
    """Bits per entry of a Modality LUT Sequence's first item (LUTDescriptor[2])."""
    if not sequence:
        return None
    descriptor = sequence[0].get("LUTDescriptor")
    return int(descriptor[2]) if descriptor is not None and len(descriptor) > 2 else None


def _check_plausible(path: Source, ds: Dataset, has_marker: bool) -> None:
    """Without the ``DICM`` marker, ``force=True`` parses any bytes; demand real DICOM groups."""
    if has_marker:
        return
    groups = {tag.group for tag in ds.keys()}  # noqa: SIM118 - iterating yields elements
    if not groups & {0x0008, 0x0028}:
        raise DecodeError(os.fspath(path), "unsupported", "no DICM marker and no DICOM identifying elements")


def _pixel_tag_follows(handle: BinaryIO) -> bool:
    """After ``stop_before_pixels``, whether the next element is a pixel data element."""
    head = handle.read(4)
    if len(head) < 4:
        return False
    little = struct.unpack("<HH", head)
    big = struct.unpack(">HH", head)
    return any((g << 16 | e) in _PIXEL_TAGS for g, e in (little, big))


def probe_dicom(path: Source, handle: BinaryIO) -> ImageInfo:
    """Header facts of a DICOM file; reads the header only (``stop_before_pixels``).

    Raises:
        DecodeError: ``no-pixel-data``, ``corrupt``, ``truncated``, ``decompression-bomb``.
        MissingDependencyError: pydicom is not installed.
    """
    pydicom = _pydicom()
    try:
        with warnings.catch_warnings(record=True):
            has_marker = handle.read(132)[128:] == b"DICM"
            handle.seek(0)
            ds = pydicom.dcmread(handle, stop_before_pixels=True, force=True)
            _check_plausible(path, ds, has_marker)
            syntax = _transfer_syntax(ds)
            # a deflated dataset cannot be peeked at; trust its image module there
            deflated = syntax is not None and "Deflate" in str(getattr(syntax, "name", ""))
            return _info(path, ds, has_pixels=deflated or _pixel_tag_follows(handle))
    except DecodeError:
        raise
    except Exception as exc:
        raise _read_error(path, exc) from exc


#: The elements decoding with options reads (:func:`_info`, :func:`_render`, the PixelData
#: shortcut): parsing only these (``specific_tags``: the others are skipped, not converted)
#: costs a tenth less than the whole dataset. Files the shortcut does not decode are parsed
#: again, whole, for pydicom's decoders.
_DECODE_TAGS: list[int] = sorted({
    *_TEXT_TAGS.values(),
    0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011,  # image pixel
    0x00280100, 0x00280101, 0x00280102, 0x00280103, 0x00281101,
    0x00283000, 0x00283010,  # Modality and VOI LUT Sequences
    *_PIXEL_TAGS,
})

#: Uncompressed little-endian transfer syntaxes: PixelData is the frames, one after another.
_NATIVE_LITTLE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_gray(ds: Dataset, info: ImageInfo, index: int | None) -> Array | None:
    """Uncompressed little-endian grayscale pixels straight from PixelData's bytes, exactly as
    pydicom's decoder gives them; ``None`` for any other file (the decoder handles it).

    pydicom's decoder costs about as much as parsing the dataset for such files (option
    handling, validation, a copy, a shift pair); what it computes for them is this: the frame
    (``index``; every frame for ``None``) as ``(H, W)`` or ``(F, H, W)`` in the stored dtype,
    the bits above BitsStored cleared (unsigned) or filled with the sign (signed). Pixel data
    of any length but the expected one (or one padding byte more) goes to the decoder, which
    raises or warns about it.
    """
    allocated = (info.extra or {}).get("bits_allocated")
    stored = info.stored_bits or 0
    if (str(_transfer_syntax(ds) or "") not in _NATIVE_LITTLE or info.channels != 1
            or info.photometric not in ("MONOCHROME1", "MONOCHROME2")
            or allocated not in (8, 16, 32) or not 0 < stored <= allocated):
        return None
    elem = ds.get_item(0x7FE00010)
    data = getattr(elem, "value", None)
    frame = info.height * info.width
    itemsize = allocated // 8
    expected = frame * info.frames * itemsize
    if not isinstance(data, bytes) or not frame or len(data) not in (expected, expected + 1):
        return None
    dtype = np.dtype(f"<{'i' if info.signed else 'u'}{itemsize}")
    count = frame * (info.frames if index is None else 1)
    flat = np.frombuffer(data, dtype, count=count, offset=(index or 0) * frame * itemsize)
    shape = (info.height, info.width) if count == frame else (info.frames, info.height, info.width)
    shift = allocated - stored
    out: Array
    if not shift:
        out = flat.copy()
    elif dtype.kind == "u":  # shifting left and back right clears the unused high bits
        out = np.bitwise_and(flat, dtype.type((1 << stored) - 1))
    else:
        out = np.left_shift(flat, shift)
        np.right_shift(out, shift, out=out)  # arithmetic: the sign bit of BitsStored spreads
    return out.reshape(shape)


def _decode_frame(path: Source, ds: Dataset, info: ImageInfo,
                  index: int | None = 0) -> tuple[Array, dict[str, Any]]:
    from pydicom.pixels.decoders.base import get_decoder

    native = _native_gray(ds, info, index)
    if native is not None:
        return native, {}
    syntax = _transfer_syntax(ds)
    if syntax is None:
        raise DecodeError(os.fspath(path), "unsupported", "no Transfer Syntax UID in the file meta")
    name = getattr(syntax, "name", str(syntax))
    if getattr(ds, "file_meta", None) is None:  # files without a file meta group
        from pydicom.dataset import FileMetaDataset

        ds.file_meta = FileMetaDataset()
    if not ds.file_meta.get("TransferSyntaxUID"):
        ds.file_meta.TransferSyntaxUID = syntax
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise DecodeError(os.fspath(path), "compressed-unsupported", f"{name} ({syntax}): no decoder; "
                          f"install one with: {install_hint(syntax)}") from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise DecodeError(
            os.fspath(path), "compressed-unsupported", f"{name} ({syntax}) needs one of: {missing}; "
            f"install one with: {install_hint(syntax)}"
        )
    try:
        return decoder.as_array(ds, index=index)
    except Exception as exc:
        text = str(exc)
        if "decompression bomb" in text:
            raise DecodeError(os.fspath(path), "decompression-bomb", f"{name} ({syntax}): {text}") from exc
        if "does not support" in text or "Unable to decode" in text or "plugin" in text:
            # the installed codecs could not decode it; another codec (gdcm, pylibjpeg) may succeed
            raise DecodeError(os.fspath(path), "compressed-unsupported", f"{name} ({syntax}): {text}; "
                              f"install another decoder with: {install_hint(syntax)}") from exc
        raise _read_error(path, exc) from exc


def decode_dicom(path: Source, data: bytes, *, modality_lut: bool = False,
                 options: DicomDecoding | None = None,
                 frame: int | str | None = None) -> tuple[Array, ImageInfo]:
    """Decode one frame of a DICOM file held in ``data``.

    Args:
        path: the file (for messages).
        data: its bytes.
        modality_lut: without ``options``: apply pydicom's ``apply_modality_lut`` to grayscale
            images (float64 for a rescale).
        options: what grayscale pixels should mean, an object with the attributes of
            ``source.dicom`` (``modality_lut``, ``voi``, ``monochrome1``): the arithmetic of
            :mod:`preproc.io.dicom_lut` (modality units in float32 or the smallest exact
            integer dtype; VOI to float32 [0, 1]; MONOCHROME1 inverted or refused).
        frame: 0-based frame index (default: the first frame), or ``'all'`` for every frame
            at once as ``(F, H, W, C)`` (``extra['all_frames']`` is then true).

    Returns:
        ``(H, W, C)`` array in pydicom's dtype for the file (see the module notes), or what
        ``options`` ask for, and its info. With ``options``, grayscale files also give
        ``extra['units']`` (:func:`units_of`) and ``extra['stored_range']``, the smallest and
        largest stored value (the bits the file uses, measured before any LUT).

    Raises:
        DecodeError: ``no-pixel-data``, ``compressed-unsupported``, ``corrupt``, ``truncated``,
            ``decompression-bomb``, ``unsupported``, ``no-frame``; with ``options``,
            ``no-voi-window`` and ``monochrome1-refused``.
        MissingDependencyError: pydicom is not installed.
    """
    pydicom = _pydicom()
    from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

    every = frame == "all"
    index = 0 if every or frame is None else int(frame)
    with warnings.catch_warnings(record=True) as caught:
        try:
            # with options, only the elements this module reads are kept (see _DECODE_TAGS)
            tags = _DECODE_TAGS if options is not None else None
            ds = pydicom.dcmread(io.BytesIO(data), force=True, specific_tags=tags)
            _check_plausible(path, ds, data[128:132] == b"DICM")
            info = _info(path, ds, has_pixels=any(k in ds for k in _PIXEL_KEYWORDS))
            if not 0 <= index < info.frames:
                raise DecodeError(os.fspath(path), "no-frame",
                                  f"frame {index} asked for; the file has {info.frames}")
            native = _native_gray(ds, info, None if every else index) if tags else None
            meta: dict[str, Any]
            if native is not None:
                array, meta = native, {}
            else:  # pydicom's decoders and colour conversions read the whole dataset
                if tags:
                    ds = pydicom.dcmread(io.BytesIO(data), force=True)
                array, meta = _decode_frame(path, ds, info, None if every else index)
            extra = dict(info.extra)
            if every:
                array, extra["all_frames"] = _frames_first(array, info), True
            photometric = str(meta.get("photometric_interpretation", info.photometric))
            if info.photometric == "PALETTE COLOR":
                array, photometric = apply_color_lut(array, ds), "RGB"
            grayscale = photometric in ("MONOCHROME1", "MONOCHROME2")
            if options is not None and grayscale:
                array, photometric = _render(path, ds, array, options, extra, info)
            elif modality_lut and grayscale:
                array = apply_modality_lut(array, ds)
                extra["modality_lut_applied"] = True
        except DecodeError:
            raise
        except Exception as exc:
            raise _read_error(path, exc) from exc
    if frame is not None:
        extra["frame"] = "all" if every else index
    if caught:
        extra["warnings"] = sorted({str(w.message) for w in caught})
    return _finish(path, array, info, photometric, extra)


def _frames_first(array: Array, info: ImageInfo) -> Array:
    """Every frame as ``(F, H, W, C)``; pydicom drops the frame axis of single-frame files."""
    if info.frames == 1:
        array = array[None]
    return array[..., None] if array.ndim == 3 else array


def _finish(path: Source, array: Array, info: ImageInfo, photometric: str,
            extra: dict[str, Any]) -> tuple[Array, ImageInfo]:
    """Native byte order, a channel axis and the shape checked against Rows/Columns."""
    if array.ndim == 2:
        array = array[:, :, None]
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    frame_shape = array.shape[1:3] if extra.get("all_frames") else array.shape[:2]
    if frame_shape != (info.height, info.width):
        raise DecodeError(
            os.fspath(path), "corrupt", f"decoded shape {array.shape} does not match Rows/Columns"
        )
    info = info.with_changes(
        dtype=array.dtype.name, channels=array.shape[-1], photometric=photometric, extra=extra
    )
    return np.ascontiguousarray(array), info


def units_of(options: DicomDecoding, modality: str | None) -> str:
    """What grayscale values decoded with ``options`` (``source.dicom``) are in: ``'voi'``
    (the window's [0, 1]), ``'stored'``, ``'HU'`` (CT modality values) or ``'modality'``."""
    if options.voi == "header":
        return "voi"
    if not options.modality_lut:
        return "stored"
    return "HU" if (modality or "").strip().upper() == "CT" else "modality"


def _render(path: Source, ds: Dataset, array: Array, options: DicomDecoding,
            extra: dict[str, Any], info: ImageInfo) -> tuple[Array, str]:
    """Grayscale stored values to what ``options`` ask for; ``(array, photometric)``."""
    from . import dicom_lut

    if extra.get("voi_lut") or extra.get("modality_lut_bits") is not None:
        meta = getattr(ds, "file_meta", None)
        little = getattr(meta, "_tsyntax_encoding", (None, True))[1] if meta is not None else True
        facts = dicom_lut.facts_from_dataset(ds, little_endian=little)  # the tables are needed
    else:  # the header facts were just read: no second conversion of the same elements
        facts = dicom_lut.facts_from_extra(
            extra, bits_stored=info.stored_bits or 8, signed=bool(info.signed),
            photometric=extra["stored_photometric"], dtype=extra["stored_dtype"])
    photometric = facts.photometric
    if photometric == "MONOCHROME1" and options.monochrome1 == "error":
        raise DecodeError(os.fspath(path), "monochrome1-refused",
                          "MONOCHROME1 (white is low) and source.dicom.monochrome1 is `error`; "
                          "set it to `invert` or `keep`")
    invert = photometric == "MONOCHROME1" and options.monochrome1 == "invert"
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    try:
        out = dicom_lut.render(array, facts, modality_lut=bool(options.modality_lut),
                               voi=options.voi, invert=invert)
    except dicom_lut.NoWindowError as exc:
        raise DecodeError(os.fspath(path), "no-voi-window",
                          f"{exc}; source.dicom.voi is `header` (use `voi: none` and a "
                          "`window` stage instead)") from None
    extra["modality_lut_applied"] = bool(options.modality_lut) and not facts.identity
    extra["voi_applied"] = options.voi == "header"
    extra["inverted"] = invert
    extra["units"] = units_of(options, extra.get("modality"))
    if array.size and array.dtype.kind in "ui":  # the stored extremes: bits the file uses
        extra["stored_range"] = [int(array.min()), int(array.max())]
    return out, "MONOCHROME2" if invert else photometric
