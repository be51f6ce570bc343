"""DICOM pixel arithmetic as pure functions: modality LUT, VOI LUT, MONOCHROME1 inversion.

Nothing here reads files or imports pydicom: :class:`PixelFacts` holds the header values the
arithmetic needs, :func:`facts_from_dataset` fills it from any mapping-like dataset, and every
transform is a function of an array and those facts.

Decisions:
    * The modality LUT (PS3.3 C.11.1) is the Modality LUT Sequence when present, else
      RescaleSlope/RescaleIntercept, else identity. Rescaling is computed in float64; when the
      slope and the intercept are integers the result is stored in the smallest integer dtype
      that holds the whole mapped stored range (exact), otherwise in float32. A LUT's output is
      unsigned in its table's bit depth.
    * The interval a file can produce is known from its header alone: the stored range
      (``[0, 2**BitsStored - 1]``, two's complement when signed) through the modality LUT
      (:func:`modality_range`), so ``preproc check`` states it without decoding a pixel.
    * VOI (PS3.3 C.11.2.1.2) is the first item of the VOI LUT Sequence when present, else the
      first WindowCenter/WindowWidth with VOILUTFunction LINEAR (the ``c - 0.5`` / ``w - 1``
      formula), LINEAR_EXACT or SIGMOID. Its output is mapped to float32 [0, 1]: the window's
      output range is [0, 1] itself, a VOI LUT's entries are divided by ``2**bits - 1``.
      A file without any of them has no window: :class:`NoWindowError`, never a guess.
    * MONOCHROME1 is inverted after the modality LUT and VOI, over the representable range of
      what they produce: ``lo + hi - y`` over the modality range (computed on the stored values,
      ``smin + smax - s``, before an affine rescale, so the map stays exact), ``1 - y`` after
      VOI. The result is an order-reversing affine map of the stored values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import dtypes

__all__ = [
    "Lut",
    "NoWindowError",
    "PixelFacts",
    "Window",
    "apply_modality",
    "apply_voi",
    "facts_from_dataset",
    "invert_stored",
    "lut_lookup",
    "modality_dtype",
    "modality_range",
    "render",
    "smallest_int_dtype",
    "stored_range",
    "window_linear",
    "window_linear_exact",
    "window_sigmoid",
]

_INT_ORDER = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


class NoWindowError(ValueError):
    """VOI was asked for, and the file has no usable window or VOI LUT."""


@dataclass(frozen=True)
class Lut:
    """A lookup table (Modality or VOI LUT Sequence item).

    Attributes:
        first: the first input value mapped (LUTDescriptor[1]).
        table: the entries, an integer array.
        bits: bits per entry (LUTDescriptor[2]).
    """

    first: int
    table: np.ndarray
    bits: int

    @property
    def top(self) -> float:
        return dtypes.levels_range(self.bits)[1]


@dataclass(frozen=True)
class Window:
    """A VOI window: center, width and VOILUTFunction."""

    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True)
class PixelFacts:
    """The header values the pixel arithmetic of one DICOM image needs.

    Attributes:
        bits_stored: BitsStored.
        signed: PixelRepresentation is 1.
        photometric: PhotometricInterpretation.
        slope, intercept: RescaleSlope and RescaleIntercept (1 and 0 when absent).
        modality_lut: the Modality LUT Sequence's first item, or ``None``.
        modality_lut_bits: its bits per entry (known from headers without the table).
        window: the first window, or ``None``.
        voi_lut: the VOI LUT Sequence's first item, or ``None``.
        has_voi_lut: a VOI LUT Sequence is present (known from headers without the table).
        is_float: the pixels are FloatPixelData/DoubleFloatPixelData (no modality LUT applies).
    """

    bits_stored: int
    signed: bool = False
    photometric: str = "MONOCHROME2"
    slope: float = 1.0
    intercept: float = 0.0
    modality_lut: Lut | None = None
    modality_lut_bits: int | None = None
    window: Window | None = None
    voi_lut: Lut | None = None
    has_voi_lut: bool = False
    is_float: bool = False

    @property
    def lut_bits(self) -> int | None:
        return self.modality_lut.bits if self.modality_lut is not None else self.modality_lut_bits

    @property
    def identity(self) -> bool:
        """No modality transform: the stored values are the modality values."""
        if self.is_float:
            return True
        return self.lut_bits is None and self.slope == 1 and self.intercept == 0

    @property
    def integral(self) -> bool:
        """Slope and intercept are integers: the rescale is exact in an integer dtype."""
        return float(self.slope).is_integer() and float(self.intercept).is_integer()


def stored_range(bits: int, signed: bool) -> tuple[int, int]:
    """The values ``bits`` stored bits can hold (two's complement when ``signed``)."""
    lo, hi = dtypes.levels_range(bits, signed=signed)
    return int(lo), int(hi)


def modality_range(facts: PixelFacts) -> tuple[float, float]:
    """The interval the modality LUT can produce from any stored value (headers only).

    Returns:
        ``(lo, hi)``: the stored range through slope and intercept (ordered), the LUT's
        ``[0, 2**bits - 1]``, or the stored range itself for identity.
    """
    if facts.lut_bits is not None and not facts.is_float:
        return dtypes.levels_range(facts.lut_bits)
    lo, hi = stored_range(facts.bits_stored, facts.signed)
    if facts.identity:
        return float(lo), float(hi)
    ends = sorted((lo * facts.slope + facts.intercept, hi * facts.slope + facts.intercept))
    return ends[0], ends[1]


def smallest_int_dtype(lo: float, hi: float) -> str | None:
    """The smallest integer dtype holding ``[lo, hi]`` (unsigned preferred), or ``None``."""
    for name in _INT_ORDER:
        dlo, dhi = dtypes.dtype_range(name)
        if dlo <= lo and hi <= dhi:
            return name
    return None


def modality_dtype(facts: PixelFacts, container: str) -> str:
    """The dtype of the modality LUT's output for a file whose stored pixels are ``container``.

    Identity keeps the container; a LUT gives ``uint8``/``uint16``; an integer rescale the
    smallest integer dtype holding :func:`modality_range`; any other rescale ``float32``.
    """
    if facts.identity:
        return container
    lo, hi = modality_range(facts)
    if facts.lut_bits is not None or facts.integral:
        return smallest_int_dtype(lo, hi) or "float64"
    return "float32"


def lut_lookup(x: np.ndarray, first: int, table: np.ndarray) -> np.ndarray:
    """Look ``x`` up in ``table`` whose entry 0 maps ``first``; values outside clamp to the ends.

    Input: any real array (floats are floored). Output: ``table``'s dtype, ``x``'s shape.
    """
    table = np.asarray(table)
    offset = np.floor(np.asarray(x, dtype=np.float64)) - first
    index = np.clip(offset, 0, len(table) - 1).astype(np.intp)
    out: np.ndarray = table[index]
    return out


def apply_modality(stored: np.ndarray, facts: PixelFacts, container: str | None = None) -> np.ndarray:
    """Stored values to modality units (HU for CT), exactly (see the module notes).

    Input: the stored integer array. Output: :func:`modality_dtype`; identity returns ``stored``.
    """
    container = container or stored.dtype.name
    if facts.identity:
        return stored
    out_dtype = modality_dtype(facts, container)
    if facts.modality_lut is not None:
        lut = facts.modality_lut
        return lut_lookup(stored, lut.first, lut.table).astype(out_dtype)
    if facts.lut_bits is not None:
        raise ValueError("the Modality LUT Sequence's table is needed to apply it")
    if facts.integral and np.dtype(out_dtype).kind in "ui" and stored.dtype.kind in "ui":
        return _affine_integer(stored, int(facts.slope), int(facts.intercept), out_dtype)
    y = stored.astype(np.float64) * facts.slope + facts.intercept
    return y.astype(out_dtype)


def _affine_integer(stored: np.ndarray, slope: int, intercept: int, out_dtype: str) -> np.ndarray:
    """``stored * slope + intercept`` in ``out_dtype`` without a float round trip.

    Computed modulo ``2**bits`` of the output (unsigned wrap-around): modular arithmetic
    respects products and sums, so whenever the true result fits ``out_dtype`` (which
    :func:`modality_dtype` guarantees for every stored value) the wrapped result is exact,
    even where ``stored * slope`` alone would not fit.
    """
    out = np.dtype(out_dtype)
    unsigned = np.dtype(f"u{out.itemsize}")
    modulus = 1 << (8 * out.itemsize)
    y = stored.astype(unsigned)  # two's complement wrap of negative stored values
    if slope != 1:
        y *= unsigned.type(slope % modulus)
    if intercept:
        y += unsigned.type(intercept % modulus)
    return y.view(out)


def invert_stored(stored: np.ndarray, facts: PixelFacts) -> np.ndarray:
    """``smin + smax - s`` over the stored range, in ``stored``'s dtype (exact)."""
    lo, hi = stored_range(facts.bits_stored, facts.signed)
    if stored.dtype.kind not in "ui":
        return (lo + hi - stored.astype(np.int64)).astype(stored.dtype)
    # modulo 2**bits of the container, as the widening subtraction and the cast back would be
    unsigned = np.dtype(f"u{stored.dtype.itemsize}")
    top = unsigned.type((lo + hi) % (1 << (8 * stored.dtype.itemsize)))
    out: np.ndarray = (top - stored.view(unsigned)).view(stored.dtype)
    return out


def window_linear(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """VOI LUT Function LINEAR (PS3.3 C.11.2.1.2.1) onto [0, 1], float64.

    ``x <= c - 0.5 - (w-1)/2`` gives 0, ``x > c - 0.5 + (w-1)/2`` gives 1, else
    ``((x - (c - 0.5)) / (w - 1) + 0.5)``. Needs ``width >= 1``.
    """
    if not width >= 1:
        raise NoWindowError(f"LINEAR window width {width:g} is below 1")
    c, w = center - 0.5, width - 1
    x = np.asarray(x, dtype=np.float64)
    below, above = x <= c - w / 2, x > c + w / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = (x - c) / w + 0.5 if w > 0 else np.zeros_like(x)
    return np.where(below, 0.0, np.where(above, 1.0, mid))


def window_linear_exact(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """VOI LUT Function LINEAR_EXACT (PS3.3 C.11.2.1.3.2) onto [0, 1], float64 (width > 0)."""
    if not width > 0:
        raise NoWindowError(f"LINEAR_EXACT window width {width:g} is not positive")
    x = np.asarray(x, dtype=np.float64)
    below, above = x <= center - width / 2, x > center + width / 2
    return np.where(below, 0.0, np.where(above, 1.0, (x - center) / width + 0.5))


def window_sigmoid(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """VOI LUT Function SIGMOID (PS3.3 C.11.2.1.3.1) onto (0, 1), float64 (width > 0)."""
    if not width > 0:
        raise NoWindowError(f"SIGMOID window width {width:g} is not positive")
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))


_WINDOWS = {"LINEAR": window_linear, "LINEAR_EXACT": window_linear_exact,
            "SIGMOID": window_sigmoid}


def apply_voi(x: np.ndarray, facts: PixelFacts) -> np.ndarray:
    """The file's VOI on modality values, in float64 [0, 1] (cast by the caller).

    Raises:
        NoWindowError: no VOI LUT and no (valid) window in the header.
    """
    if facts.voi_lut is not None:
        lut = facts.voi_lut
        return lut_lookup(x, lut.first, lut.table).astype(np.float64) / lut.top
    if facts.window is None:
        raise NoWindowError("the header has no WindowCenter/WindowWidth and no VOI LUT Sequence")
    fn = _WINDOWS.get(facts.window.function)
    if fn is None:
        raise NoWindowError(f"VOILUTFunction {facts.window.function!r} is not one of "
                            f"{', '.join(VOI_FUNCTIONS)}")
    return fn(x, facts.window.center, facts.window.width)


def render(stored: np.ndarray, facts: PixelFacts, *, modality_lut: bool = True,
           voi: str = "none", invert: bool = False) -> np.ndarray:
    """Stored grayscale values to what the options ask for: modality LUT, VOI, inversion.

    Args:
        stored: the stored array of one frame.
        facts: its header facts.
        modality_lut: apply the modality LUT first.
        voi: ``'none'`` or ``'header'`` (float32 [0, 1] through the file's VOI).
        invert: MONOCHROME1 inversion over the representable range (see the module notes).

    Returns:
        The array; dtype from :func:`modality_dtype`, the stored dtype without the modality
        LUT, or float32 with VOI.

    Raises:
        NoWindowError: ``voi='header'`` and the file has no window.
    """
    if voi == "header":
        x = apply_modality(stored, facts) if modality_lut else stored
        y = apply_voi(x, facts)
        return (1.0 - y if invert else y).astype(np.float32)
    if not invert:
        return apply_modality(stored, facts) if modality_lut else stored
    if not modality_lut or facts.identity or facts.lut_bits is None:
        # affine (or no) rescale: invert the stored values, then map them
        flipped = invert_stored(stored, facts)
        return apply_modality(flipped, facts) if modality_lut else flipped
    y = apply_modality(stored, facts)
    assert facts.modality_lut is not None  # lut_bits is set only with a table here
    return (facts.modality_lut.top - y.astype(np.int64)).astype(y.dtype)


# ---------------------------------------------------------------------- header reading


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "__len__") and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _lut(item: Any, little_endian: bool | None) -> Lut | None:
    """A LUT from a Modality/VOI LUT Sequence item (LUTDescriptor and LUTData)."""
    descriptor = item.get("LUTDescriptor")
    data = item.get("LUTData")
    if descriptor is None or data is None or len(descriptor) < 3:
        return None
    entries = int(descriptor[0]) or 2**16
    first, bits = int(descriptor[1]), int(descriptor[2])
    if isinstance(data, bytes | bytearray):
        order = "<" if little_endian is not False else ">"
        table = np.frombuffer(bytes(data), dtype=f"{order}u2", count=entries)
    else:
        table = np.asarray(list(data) if not isinstance(data, int) else [data], dtype=np.int64)
    return Lut(first, table[:entries].astype(np.int64), bits)


def facts_from_dataset(ds: Any, *, little_endian: bool | None = True) -> PixelFacts:
    """:class:`PixelFacts` of a pydicom dataset (or any object with ``get`` and ``in``).

    Args:
        ds: the dataset.
        little_endian: byte order of OW LUT data.
    """
    allocated = int(ds.get("BitsAllocated") or 8)
    slope, intercept = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
    if slope is None or intercept is None:  # PS3.3 C.11.1: both or neither
        slope, intercept = 1.0, 0.0
    modality = ds.get("ModalityLUTSequence")
    modality_lut = _lut(modality[0], little_endian) if modality else None
    voi_seq = ds.get("VOILUTSequence")
    voi_lut = _lut(voi_seq[0], little_endian) if voi_seq else None
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
    window = Window(center, width, function) if center is not None and width is not None else None
    return PixelFacts(
        bits_stored=int(ds.get("BitsStored") or allocated),
        signed=int(ds.get("PixelRepresentation") or 0) == 1,
        photometric=str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip(),
        slope=slope,
        intercept=intercept,
        modality_lut=modality_lut,
        modality_lut_bits=modality_lut.bits if modality_lut is not None else None,
        window=window,
        voi_lut=voi_lut,
        has_voi_lut=voi_lut is not None,
        is_float="FloatPixelData" in ds or "DoubleFloatPixelData" in ds,
    )


def facts_from_extra(extra: dict[str, Any], *, bits_stored: int, signed: bool, photometric: str,
                     dtype: str) -> PixelFacts:
    """:class:`PixelFacts` (without tables) from the ``extra`` of a probed ``ImageInfo``."""
    slope, intercept = extra.get("rescale_slope"), extra.get("rescale_intercept")
    if slope is None or intercept is None:
        slope, intercept = 1.0, 0.0
    center, width = extra.get("window_center"), extra.get("window_width")
    function = extra.get("voi_function") or "LINEAR"
    window = Window(center, width, function) if center is not None and width is not None else None
    return PixelFacts(
        bits_stored=bits_stored,
        signed=signed,
        photometric=photometric,
        slope=float(slope),
        intercept=float(intercept),
        modality_lut_bits=extra.get("modality_lut_bits"),
        window=window,
        has_voi_lut=bool(extra.get("voi_lut")),
        is_float=dtypes.is_float(dtype),
    )
