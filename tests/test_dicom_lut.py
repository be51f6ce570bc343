"""The DICOM pixel arithmetic alone, against pydicom's own LUT functions on pydicom's test files."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from preproc.io import dicom_lut as L

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing  # noqa: E402


def read_testdata(name: str):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    return pydicom.dcmread(path)


def _pydicom_unit_window(arr, ds):
    """pydicom's windowing rescaled to [0, 1] by the output range pydicom itself uses."""
    out = apply_windowing(arr.copy(), ds)
    ends = apply_windowing(np.array([-1e9, 1e9]), copy.deepcopy(ds))
    return (out - ends[0]) / (ends[1] - ends[0])


def test_ct_small_hounsfield_units_match_pydicom():
    ds = read_testdata("CT_small.dcm")
    stored = ds.pixel_array
    facts = L.facts_from_dataset(ds)
    assert (facts.slope, facts.intercept, facts.bits_stored, facts.signed) == (1, -1024, 16, True)
    hu = L.apply_modality(stored, facts)
    np.testing.assert_array_equal(hu, apply_modality_lut(stored, ds))
    # integer slope and intercept: exact in the smallest integer dtype of the whole stored range
    assert hu.dtype == np.int32 and L.modality_range(facts) == (-33792.0, 31743.0)


def test_twelve_bit_ct_range_is_the_classic_hu_interval():
    facts = L.PixelFacts(bits_stored=12, signed=False, slope=1, intercept=-1024)
    assert L.modality_range(facts) == (-1024.0, 3071.0)
    assert L.modality_dtype(facts, "uint16") == "int16"


def test_identity_keeps_the_stored_array():
    ds = read_testdata("MR_small.dcm")
    facts = L.facts_from_dataset(ds)
    assert facts.identity
    stored = ds.pixel_array
    assert L.apply_modality(stored, facts) is stored
    assert L.modality_dtype(facts, "int16") == "int16"


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("name", ["MR_small.dcm", "examples_overlay.dcm", "693_J2KI.dcm"])
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_windows_match_pydicom(name, function):
    ds = read_testdata(name)
    try:
        stored = ds.pixel_array
    except Exception as exc:  # a codec may be missing for the JPEG 2000 file
        pytest.skip(f"cannot decode {name}: {exc}")
    if "WindowCenter" not in ds:
        pytest.skip("no window")
    ds.VOILUTFunction = function
    facts = L.facts_from_dataset(ds)
    modality = L.apply_modality(stored, facts)
    ours = L.apply_voi(modality, facts)
    theirs = _pydicom_unit_window(apply_modality_lut(stored, ds), ds)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert ours.min() >= 0 and ours.max() <= 1


def test_linear_window_formula_at_its_edges():
    # c=40, w=400: 0 at or below c - 0.5 - 199.5 = -160, 1 above c - 0.5 + 199.5 = 239
    x = np.array([-161, -160, -159.5, 39.5, 239, 239.5, 1000])
    y = L.window_linear(x, 40, 400)
    assert y[0] == y[1] == 0 and y[-1] == y[-2] == 1
    assert y[3] == pytest.approx(0.5)
    assert y[4] == pytest.approx(1.0)
    with pytest.raises(L.NoWindowError):
        L.window_linear(x, 40, 0.5)
    step = L.window_linear(np.array([39.4, 39.5, 39.6]), 40, 1)  # w = 1: a threshold at c - 0.5
    np.testing.assert_array_equal(step, [0, 0, 1])


def _lut_item(first: int, table: list[int], bits: int) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(table), first, bits]
    item.LUTData = table
    return item


def _mr_with(**sequences):
    ds = read_testdata("MR_small.dcm")
    for key, item in sequences.items():
        setattr(ds, key, [item])
    return ds


def test_voi_lut_sequence_matches_pydicom_and_maps_to_unit_range():
    table = list(range(0, 4096, 16))  # 256 entries, 12 bits
    ds = _mr_with(VOILUTSequence=_lut_item(100, table, 12))
    stored = ds.pixel_array
    facts = L.facts_from_dataset(ds)
    assert facts.voi_lut is not None and facts.window is not None  # the LUT wins
    ours = L.apply_voi(stored, facts)
    np.testing.assert_allclose(ours, apply_voi(stored, ds) / 4095.0, atol=0)


def test_modality_lut_sequence_matches_pydicom():
    table = [(i * 7) % 4096 for i in range(512)]
    ds = _mr_with(ModalityLUTSequence=_lut_item(50, table, 16))  # pydicom reads 8 or 16 bits
    stored = ds.pixel_array
    facts = L.facts_from_dataset(ds)
    ours = L.apply_modality(stored, facts)
    np.testing.assert_array_equal(ours, apply_modality_lut(stored, ds))
    assert ours.dtype == np.uint16 and L.modality_range(facts) == (0.0, 65535.0)
    inverted = L.render(stored, facts, invert=True)
    np.testing.assert_array_equal(inverted.astype(int), 65535 - ours.astype(int))


def test_monochrome1_cr_inversion_is_an_exact_reversal_of_stored_values():
    # a CR radiograph as the CR1-CR3 files store it: MONOCHROME1, slope 0.684, intercept 200
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 4096, (6, 7)).astype(np.uint16)
    facts = L.PixelFacts(bits_stored=12, photometric="MONOCHROME1", slope=0.684, intercept=200)
    lo, hi = L.modality_range(facts)
    assert (lo, hi) == pytest.approx((200.0, 4095 * 0.684 + 200))
    plain = L.render(stored, facts)
    flipped = L.render(stored, facts, invert=True)
    assert plain.dtype == flipped.dtype == np.float32
    np.testing.assert_allclose(flipped, lo + hi - (stored * 0.684 + 200), rtol=1e-6)
    np.testing.assert_array_equal(flipped, ((4095 - stored) * 0.684 + 200).astype(np.float32))
    order = np.argsort(stored, axis=None, kind="stable")
    assert np.all(np.diff(flipped.ravel()[order]) <= 0)  # order-reversing
    # without the modality LUT: stored values reversed over the stored range
    np.testing.assert_array_equal(L.render(stored, facts, modality_lut=False, invert=True),
                                  4095 - stored)


def test_monochrome1_after_voi_is_one_minus_the_window():
    stored = np.arange(0, 4096, 97, dtype=np.uint16).reshape(1, -1)
    facts = L.PixelFacts(bits_stored=12, photometric="MONOCHROME1", slope=0.684, intercept=200,
                         window=L.Window(1500, 1000))
    y = L.render(stored, facts, voi="header")
    yi = L.render(stored, facts, voi="header", invert=True)
    np.testing.assert_allclose(yi, 1 - y, atol=1e-7)
    assert yi.dtype == np.float32


def test_no_window_is_an_error_not_a_guess():
    facts = L.PixelFacts(bits_stored=16, signed=True, slope=1, intercept=-1024)
    with pytest.raises(L.NoWindowError, match="no WindowCenter"):
        L.render(np.zeros((2, 2), np.int16), facts, voi="header")
    bad = L.PixelFacts(bits_stored=12, window=L.Window(10, 10, "CURVY"))
    with pytest.raises(L.NoWindowError, match="CURVY"):
        L.apply_voi(np.zeros(3), bad)


def test_smallest_integer_dtype():
    assert L.smallest_int_dtype(0, 255) == "uint8"
    assert L.smallest_int_dtype(-1, 127) == "int8"
    assert L.smallest_int_dtype(-1024, 3071) == "int16"
    assert L.smallest_int_dtype(0, 65535) == "uint16"
    assert L.smallest_int_dtype(-33792, 31743) == "int32"
    assert L.smallest_int_dtype(-1, 2.0**64) is None


def test_lut_lookup_clamps_outside_the_table():
    out = L.lut_lookup(np.array([-5, 10, 11, 12, 99]), 10, np.array([7, 8, 9]))
    np.testing.assert_array_equal(out, [7, 7, 8, 9, 9])


def test_multiframe_frames_are_looked_up_alike():
    ds = read_testdata("rtdose.dcm")  # 15 frames, 32-bit, no rescale (DoseGridScaling is not one)
    facts = L.facts_from_dataset(ds)
    assert facts.identity
    frames = ds.pixel_array
    assert frames.shape[0] == 15
    np.testing.assert_array_equal(L.render(frames[3], facts), frames[3])
