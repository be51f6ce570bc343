"""Reusable types: pydantic constraint types for configs and stage parameters, and ``Array``."""

from __future__ import annotations

import math
import os
import re
from typing import Annotated, Any, TypeAlias

import numpy.typing as npt

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema

from . import dtypes

__all__ = [
    "STRICT",
    "Array",
    "DType",
    "Integer",
    "Number",
    "PositiveNumber",
    "Range",
    "StrPath",
    "parse_number",
]

#: A NumPy array of any dtype and shape: pixels, intervals, histograms. The dtype is a run-time
#: fact here (uint8, uint16, float32 all flow through one stage), so it is not a static parameter.
Array: TypeAlias = npt.NDArray[Any]

#: A file name as callers give it: text or a path object (``pathlib.Path``, ``os.DirEntry``).
StrPath: TypeAlias = "str | os.PathLike[str]"

#: Model config shared by every config model: unknown keys are errors, models are immutable.
STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FRACTION = re.compile(rf"^\s*({_NUM})\s*/\s*({_NUM})\s*$")
_PLAIN = re.compile(rf"^\s*{_NUM}\s*$")


def parse_number(value: Any) -> Any:
    """Accept numbers and fractions of two numbers written as text (``"1/255"``, ``"1./65535"``).

    Nothing else is evaluated. Booleans are refused (YAML's ``yes`` is not a number). Other
    values pass through for pydantic to reject with its own message.
    """
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if not isinstance(value, str):
        return value
    if _PLAIN.match(value):
        return float(value)
    match = _FRACTION.match(value)
    if match is None:
        if value.count("/") > 1:
            raise ValueError(f"{value!r} is not a number: a fraction takes exactly two numbers, like 1/255")
        raise ValueError(f"{value!r} is not a number (write 0.5, 1e-3 or a fraction like 1/255)")
    num, den = float(match.group(1)), float(match.group(2))
    if den == 0:
        raise ValueError(f"{value!r} divides by zero")
    return num / den


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    return value


#: An integer, strictly: ``true``, ``1.0`` and ``"1"`` are errors, not 1.
Integer = Annotated[int, BeforeValidator(_no_bool), Strict()]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_NUMBER_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _FRACTION.pattern}]}

Number = Annotated[
    float,
    BeforeValidator(parse_number),
    AfterValidator(_finite),
    WithJsonSchema(_NUMBER_SCHEMA),
]
PositiveNumber = Annotated[Number, Field(gt=0)]


def _range(value: tuple[float, float]) -> tuple[float, float]:
    lo, hi = value
    if lo >= hi:
        raise ValueError(f"range must be [low, high] with low < high, got [{lo}, {hi}]")
    return (lo, hi)


Range = Annotated[tuple[Number, Number], AfterValidator(_range)]


def _dtype(value: str) -> str:
    try:
        return dtypes.normalize_dtype(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"unknown dtype {value!r}; use one of {', '.join(dtypes.DTYPE_NAMES)}"
        ) from None


DType = Annotated[
    str,
    AfterValidator(_dtype),
    WithJsonSchema({"type": "string", "enum": list(dtypes.DTYPE_NAMES)}),
]
