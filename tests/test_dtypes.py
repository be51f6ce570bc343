"""The dtype table: every fact checked against a value written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from preproc import dtypes


def test_names_are_canonical_in_any_spelling_and_byte_order():
    assert dtypes.normalize_dtype(">u2") == "uint16"
    assert dtypes.normalize_dtype(np.float32) == "float32"
    assert dtypes.normalize_dtype(np.dtype("<i4")) == "int32"
    assert dtypes.normalize_dtype("bool") == "bool"
    with pytest.raises(ValueError, match=r"^unsupported dtype 'complex64'; supported: bool, "
                                         r"uint8, uint16, uint32, uint64, int8, int16, int32, "
                                         r"int64, float16, float32, float64$"):
        dtypes.normalize_dtype("complex64")


@pytest.mark.parametrize(("dtype", "kind", "integer", "signed", "floating", "bits"), [
    ("bool", "bool", False, False, False, 1),
    ("uint8", "uint", True, False, False, 8),
    ("uint16", "uint", True, False, False, 16),
    ("int16", "int", True, True, False, 16),
    ("int64", "int", True, True, False, 64),
    ("float16", "float", False, True, True, 16),
    ("float32", "float", False, True, True, 32),
])
def test_kind_table(dtype, kind, integer, signed, floating, bits):
    assert dtypes.kind(dtype) == kind
    assert dtypes.is_integer(dtype) is integer
    assert dtypes.is_signed(dtype) is signed
    assert dtypes.is_float(dtype) is floating
    assert dtypes.container_bits(dtype) == bits


@pytest.mark.parametrize(("dtype", "rng", "exact", "full"), [
    ("bool", (0.0, 1.0), (0, 1), (0.0, 1.0)),
    ("uint8", (0.0, 255.0), (0, 255), (0.0, 255.0)),
    ("uint16", (0.0, 65535.0), (0, 65535), (0.0, 65535.0)),
    ("int8", (-128.0, 127.0), (-128, 127), (-128.0, 127.0)),
    ("uint64", (0.0, float(2**64 - 1)), (0, 2**64 - 1), (0.0, float(2**64 - 1))),
    ("float32", (-math.inf, math.inf), None, (0.0, 1.0)),
])
def test_ranges(dtype, rng, exact, full):
    assert dtypes.dtype_range(dtype) == rng
    assert dtypes.full_scale(dtype) == full
    if exact is not None:
        assert dtypes.int_range(dtype) == exact
        assert all(type(v) is int for v in dtypes.int_range(dtype))


def test_levels_range():
    assert dtypes.levels_range(1) == (0.0, 1.0)
    assert dtypes.levels_range(12) == (0.0, 4095.0)
    assert dtypes.levels_range(12, signed=True) == (-2048.0, 2047.0)
    assert dtypes.levels_range(1, signed=True) == (-1.0, 0.0)
    with pytest.raises(ValueError, match="^bit depth must be at least 1$"):
        dtypes.levels_range(0)


@pytest.mark.parametrize(("value", "bits"), [
    (0, 1), (1, 1), (1.5, 1), (2, 2), (3, 2), (4, 3), (255, 8), (256, 9), (4095, 12), (4096, 13),
    (65535, 16),
])
def test_bits_needed(value, bits):
    assert dtypes.bits_needed(value) == bits


@pytest.mark.parametrize(("factor", "bits"), [
    (1 / 255, 8), (1 / 4095, 12), (1 / 65535, 16), (1 / 3, 2), (1 / (2**32 - 1), 32),
    (1 / 255 * (1 + 0.9e-6), 8), (1 / 255 * (1 - 0.9e-6), 8),
    (1 / 255 * (1 + 2e-6), None), (1.0, None), (0.0, None), (-1 / 255, None), (1 / 256, None),
    (1 / (2**33 - 1), None),
])
def test_unit_factor_bits(factor, bits):
    assert dtypes.unit_factor_bits(factor) == bits


def test_unit_factor_bits_options():
    assert dtypes.unit_factor_bits(1 / 255 * 1.01, rel_tol=0.02) == 8
    assert dtypes.unit_factor_bits(1 / 4095, max_bits=11) is None
    assert dtypes.unit_factor_bits(1 / 4095, max_bits=12) == 12


@pytest.mark.parametrize(("dtype", "bits", "alpha"), [
    ("uint8", None, 255.0), ("uint16", None, 65535.0), ("uint16", 12, 4095.0),
    ("int16", 12, 2047.0), ("float32", None, 1.0), ("float32", 12, 1.0),
])
def test_opaque_alpha(dtype, bits, alpha):
    assert dtypes.opaque_alpha(dtype, bits) == alpha
