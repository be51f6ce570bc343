"""Facts several layers print or look up, each defined once: numbers, intervals, OS errors,
colour modes."""

from __future__ import annotations

import errno
import math

import pytest

from preproc.io import (
    CHANNELS_BY_COLOR_MODE,
    EIGHT_BIT_MODES,
    PILLOW_MODE_BY_CHANNELS,
    os_error_reason,
)
from preproc.spec import Interval, format_interval, format_number


@pytest.mark.parametrize("value,text", [
    (255, "255"), (255.0, "255"), (-3.0, "-3"), (1 / 255, "0.00392157"), (1e20, "1e+20"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"), (0.5, "0.5"),
])
def test_numbers_print_one_way(value, text):
    assert format_number(value) == text


def test_intervals_print_one_way_and_none_is_unbounded():
    assert format_interval(0, 4095.0) == "[0, 4095]"
    assert format_interval(None, 1 / 255) == "[-inf, 0.00392157]"
    assert format_interval(-1, None) == "[-1, inf]"
    assert str(Interval(0.0, math.inf)) == format_interval(0, None) == "[0, inf]"


@pytest.mark.parametrize("exc,reason", [
    (PermissionError(errno.EACCES, "denied"), "permission-denied"),
    (FileNotFoundError(errno.ENOENT, "gone"), "not-found"),
    (IsADirectoryError(errno.EISDIR, "dir"), "not-a-file"),
    (OSError(errno.ELOOP, "loop"), "symlink-loop"),
    (OSError(errno.EIO, "io"), "os-error"),
])
def test_os_errors_have_one_reason_table(exc, reason):
    assert os_error_reason(exc) == reason
    if reason == "os-error":
        assert os_error_reason(exc, default="cannot-list") == "cannot-list"


def test_colour_modes_and_pillow_modes_agree():
    assert set(CHANNELS_BY_COLOR_MODE.values()) <= set(PILLOW_MODE_BY_CHANNELS)
    assert EIGHT_BIT_MODES == ("L", "LA", "RGB", "RGBA")
