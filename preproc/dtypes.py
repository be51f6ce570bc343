"""The one table of dtype and bit-depth facts.

No other module writes 255 or 65535: ask this one. Integer ranges are the full container
ranges; floats have the conventional [0, 1] (unsigned) "image" range that scikit-image uses for
``img_as_float``, while their representable range is unbounded for our purposes.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "DTYPE_NAMES",
    "bits_needed",
    "container_bits",
    "dtype_range",
    "full_scale",
    "int_range",
    "is_exact_in_float32",
    "is_float",
    "is_integer",
    "is_signed",
    "kind",
    "levels_range",
    "normalize_dtype",
    "opaque_alpha",
    "unit_factor_bits",
]

#: dtypes preproc accepts in configs and carries between stages.
DTYPE_NAMES = (
    "bool",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
)


def normalize_dtype(dtype: npt.DTypeLike) -> str:
    """Return the canonical name of ``dtype`` (``np.dtype``, type or string, any byte order)."""
    dt = np.dtype(dtype)
    name: str = dt.newbyteorder("=").name  # numpy's stubs lose the type of this chain
    if name not in DTYPE_NAMES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPE_NAMES)}")
    return name


def kind(dtype: npt.DTypeLike) -> str:
    """``'bool'``, ``'uint'``, ``'int'`` or ``'float'``."""
    dt = np.dtype(dtype)
    return {"b": "bool", "u": "uint", "i": "int", "f": "float"}[dt.kind]


def is_integer(dtype: npt.DTypeLike) -> bool:
    return np.dtype(dtype).kind in "ui"


def is_signed(dtype: npt.DTypeLike) -> bool:
    return np.dtype(dtype).kind in "if"


def is_exact_in_float32(dtype: npt.DTypeLike) -> bool:
    """Whether float32 holds every value of ``dtype`` exactly (up to 16-bit ints, float32)."""
    dt = np.dtype(dtype)
    return (dt.kind in "uib" and dt.itemsize <= 2) or dt in (np.float32, np.float16)


def is_float(dtype: npt.DTypeLike) -> bool:
    return np.dtype(dtype).kind == "f"


def container_bits(dtype: npt.DTypeLike) -> int:
    """Number of bits of the container: 8 for uint8, 16 for int16, 32 for float32."""
    return 1 if np.dtype(dtype).kind == "b" else np.dtype(dtype).itemsize * 8


def dtype_range(dtype: npt.DTypeLike) -> tuple[float, float]:
    """Full value range of an integer dtype; ``(0, 1)`` for bool; ``(-inf, inf)`` for floats."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return (0.0, 1.0)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return (float(info.min), float(info.max))
    return (-math.inf, math.inf)


def int_range(dtype: npt.DTypeLike) -> tuple[int, int]:
    """Exact integer limits of an integer or bool dtype (no float rounding for 64-bit types)."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return (0, 1)
    info = np.iinfo(dt)
    return (int(info.min), int(info.max))


def full_scale(dtype: npt.DTypeLike) -> tuple[float, float]:
    """The range a dtype means "full scale": integer range, or [0, 1] for floats.

    This is the convention of ``to_dtype(scale=True)`` and scikit-image's ``img_as_*``.
    """
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (0.0, 1.0)
    return dtype_range(dt)


def levels_range(bits: int, signed: bool = False) -> tuple[float, float]:
    """Range of values ``bits`` stored bits can hold: [0, 2**bits - 1] or two's complement."""
    if bits < 1:
        raise ValueError("bit depth must be at least 1")
    if signed:
        return (float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1))
    return (0.0, float(2**bits - 1))


def bits_needed(max_value: float) -> int:
    """Bits needed to store non-negative integer ``max_value`` (0 and 1 need 1 bit)."""
    if max_value <= 1:
        return 1
    return int(math.floor(math.log2(max_value))) + 1


def unit_factor_bits(factor: float, rel_tol: float = 1e-6, max_bits: int = 32) -> int | None:
    """Return ``n >= 2`` when ``factor`` equals ``1 / (2**n - 1)`` within ``rel_tol``, else ``None``.

    ``rescale: 1/255`` gives 8, ``1/4095`` gives 12, ``1/65535`` gives 16.
    """
    if factor <= 0:
        return None
    for n in range(2, max_bits + 1):  # n = 1 would read factor 1 as "expects [0, 1]"
        target = 1.0 / (2**n - 1)
        if abs(factor - target) <= rel_tol * target:
            return n
    return None


def opaque_alpha(dtype: npt.DTypeLike, bits: int | None = None) -> float:
    """The alpha value of a fully opaque pixel: the top of the stored bits, 1.0 for floats."""
    if is_float(dtype):
        return full_scale(dtype)[1]
    return levels_range(bits or container_bits(dtype), signed=is_signed(dtype))[1]
