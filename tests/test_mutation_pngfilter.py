"""PNG reconstruction on bytes worked out by hand from the PNG specification."""

from __future__ import annotations

import numpy as np
import pytest

from preproc.io import pngfilter as P


def _block(rows):
    return np.array(rows, np.uint8)


# filter type, raw bytes -> reconstructed bytes (bpp 1), each row on top of the previous one
HAND_ROWS = [
    (1, [10, 5, 250], [10, 15, 9]),      # Sub, wrapping modulo 256
    (2, [1, 2, 3], [11, 17, 12]),        # Up
    (3, [4, 4, 4], [9, 17, 18]),         # Average: x + (left + up) // 2
    (4, [1, 1, 1], [10, 18, 19]),        # Paeth: b, b, then a on a tie of a and b
    (0, [7, 8, 9], [7, 8, 9]),           # None
]


def test_every_filter_on_hand_worked_rows():
    block = _block([[f] + raw for f, raw, _ in HAND_ROWS])
    expected = _block([out for *_, out in HAND_ROWS])
    np.testing.assert_array_equal(P.unfilter(block, 1), expected)


def test_row_filters_alone_take_the_fast_path_with_the_same_result():
    block = _block([[f] + raw for f, raw, _ in HAND_ROWS[:2]] + [[0, 7, 8, 9], [2, 1, 1, 1]])
    np.testing.assert_array_equal(P.unfilter(block, 1),
                                  _block([[10, 15, 9], [11, 17, 12], [7, 8, 9], [8, 9, 10]]))


def test_sub_and_average_use_the_pixel_one_bpp_to_the_left():
    # bpp 2: each byte adds the byte two to its left
    block = _block([[1, 1, 2, 3, 4, 5, 6], [3, 2, 2, 2, 2, 2, 2]])
    first = [1, 2, 4, 6, 9, 12]
    second = [2 + first[0] // 2, 2 + first[1] // 2]
    second += [2 + (second[0] + first[2]) // 2, 2 + (second[1] + first[3]) // 2]
    second += [2 + (second[2] + first[4]) // 2, 2 + (second[3] + first[5]) // 2]
    np.testing.assert_array_equal(P.unfilter(block, 2), _block([first, second]))
    np.testing.assert_array_equal(P.unfilter(block[:1], 2), _block([first]))


@pytest.mark.parametrize("a, b, c, chosen", [
    (10, 20, 15, 15),   # p = 15: c is nearest
    (10, 20, 10, 20),   # p = 20: b is nearest
    (20, 10, 10, 20),   # p = 20: a is nearest
    (10, 10, 10, 10),   # all tie: a
    (12, 20, 16, 16),   # p = 16: a and b tie at 4, c is at 0
    (0, 30, 10, 30),    # p = 20: b and c tie at 10, a is at 20: b
    (30, 0, 10, 30),    # p = 20: a and c tie at 10, b is at 20: a
    (140, 160, 150, 150),  # p = 150: c; 2c = 300 needs more than 8 bits
])
def test_paeth_picks_the_nearest_of_left_up_and_upper_left(a, b, c, chosen):
    # row 0 = [c, b] (None); row 1 (Paeth) reconstructs to [a, chosen + 0]
    block = _block([[0, c, b], [4, (a - c) % 256, 0]])  # first byte: up = c is the predictor
    out = P.unfilter(block, 1)
    assert out[1, 0] == a
    assert out[1, 1] == chosen


def test_average_rounds_down_in_nine_bits():
    block = _block([[0, 255, 255], [3, 0, 0]])
    # (0 + 255) // 2 = 127 for the first byte, (127 + 255) // 2 = 191 for the second
    np.testing.assert_array_equal(P.unfilter(block, 1)[1], [127, 191])


def test_bad_filter_types_and_ragged_rows_are_refused():
    with pytest.raises(P.FilterError, match="invalid filter type 5"):
        P.unfilter(_block([[0, 1], [5, 1], [2, 1]]), 1)
    with pytest.raises(P.FilterError) as caught:
        P.unfilter(_block([[0, 1, 2, 3]]), 2)
    assert str(caught.value) == "row length is not a whole number of pixels"
    assert P.unfilter(np.zeros((0, 3), np.uint8), 1).shape == (0, 2)


def test_sub_byte_and_sixteen_bit_samples_unpack_msb_first():
    rows = _block([[0b11100100, 0b01000000]])
    np.testing.assert_array_equal(P._to_samples(rows, 5, 1, 2).ravel(), [3, 2, 1, 0, 1])
    np.testing.assert_array_equal(P._to_samples(_block([[0xAB, 0xC0]]), 3, 1, 4).ravel(),
                                  [10, 11, 12])
    np.testing.assert_array_equal(P._to_samples(_block([[0b10110000]]), 4, 1, 1).ravel(),
                                  [1, 0, 1, 1])
    wide = P._to_samples(_block([[1, 2, 255, 254]]), 1, 2, 16)
    assert wide.dtype == np.uint16
    np.testing.assert_array_equal(wide.ravel(), [258, 65534])
    np.testing.assert_array_equal(P._to_samples(_block([[1, 2, 3, 4]]), 2, 2, 8),
                                  [[[1, 2], [3, 4]]])


@pytest.mark.parametrize("args, size", [
    ((1, 1, 8, 0, True), 2),
    ((8, 8, 1, 0, True), 30),
    ((2, 3, 16, 2, False), 38),
    ((1, 5, 2, 0, False), 3),
    ((3, 3, 8, 0, True), 15),
    ((2, 2, 8, 6, False), 18),
    ((2, 2, 8, 4, False), 10),
    ((1, 9, 4, 3, False), 6),
])
def test_data_size_of_hand_counted_images(args, size):
    assert P.data_size(*args) == size


def test_passes_of_a_small_interlaced_image():
    assert list(P._passes(3, 3, True)) == [
        (0, 0, 8, 8, 1, 1), (2, 0, 4, 4, 1, 1), (0, 2, 2, 4, 1, 2), (1, 0, 2, 2, 2, 1),
        (0, 1, 1, 2, 1, 3)]
    assert list(P._passes(3, 3, False)) == [(0, 0, 1, 1, 3, 3)]
    assert list(P._passes(5, 1, True)) == [
        (0, 0, 8, 8, 1, 1), (0, 4, 4, 8, 1, 1), (0, 2, 2, 4, 1, 1), (0, 1, 1, 2, 2, 1)]


def test_interlaced_pixels_land_where_adam7_puts_them():
    raw = bytes([0, 1, 0, 2, 0, 3, 4, 0, 5, 0, 6, 0, 7, 8, 9])
    out = P.reconstruct(raw, height=3, width=3, bit_depth=8, color_type=0, interlaced=True)
    assert out.dtype == np.uint8 and out.shape == (3, 3, 1)
    np.testing.assert_array_equal(out[:, :, 0], [[1, 5, 2], [7, 8, 9], [3, 6, 4]])


def test_interlaced_sixteen_bit_and_sub_byte():
    raw = bytes([0, 1, 0, 0, 2, 0, 0, 3, 4, 0, 6])  # one pixel, one pixel, a row of two
    assert list(P._passes(2, 2, True)) == [(0, 0, 8, 8, 1, 1), (1, 0, 2, 2, 1, 1),
                                           (0, 1, 1, 2, 1, 2)]
    out = P.reconstruct(raw, height=2, width=2, bit_depth=16, color_type=0, interlaced=True)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[:, :, 0], [[256, 512], [772, 6]])
    raw = bytes([0, 0b11000000, 0, 0b01000000, 0, 0b10110000])
    out = P.reconstruct(raw, height=2, width=2, bit_depth=2, color_type=0, interlaced=True)
    np.testing.assert_array_equal(out[:, :, 0], [[3, 1], [2, 3]])


def test_non_interlaced_rgb_and_the_size_check():
    raw = bytes([0, 1, 2, 3, 4, 5, 6, 1, 1, 1, 1, 1, 1, 1])
    out = P.reconstruct(raw, height=2, width=2, bit_depth=8, color_type=2, interlaced=False)
    np.testing.assert_array_equal(out, [[[1, 2, 3], [4, 5, 6]], [[1, 1, 1], [2, 2, 2]]])
    with pytest.raises(P.FilterError, match="image data holds 13 bytes, the header implies 14"):
        P.reconstruct(raw[:-1], height=2, width=2, bit_depth=8, color_type=2,
                      interlaced=False)
    with pytest.raises(P.FilterError, match="holds 14 bytes, the header implies 15"):
        P.reconstruct(raw, height=2, width=2, bit_depth=8, color_type=2, interlaced=True)
