"""The value model's printed and serialised forms, pinned whole (mutation survivors of spec.py).

Equivalent mutants left alive, with the reason:
- ``format_number``: ``x < 0`` -> ``x <= 0`` or ``x < 1`` on the infinity branch: that line only
  ever sees +inf or -inf, for which both comparisons agree.
- ``Interval.clamp``: ``self.hi < other.lo`` -> ``<=``: the line is reached only for disjoint
  intervals, so ``self.hi == other.lo`` cannot occur there.
"""

from __future__ import annotations

import math

from preproc.spec import Interval, ValueSpec, format_interval, format_number


def test_numbers_print_as_messages_show_them():
    assert format_number(math.nan) == "nan"
    assert format_number(-math.inf) == "-inf" and format_number(math.inf) == "inf"
    assert format_number(255.0) == "255" and format_number(1 / 255) == "0.00392157"


def test_missing_bounds_print_as_unbounded():
    assert format_interval(None, None) == "[-inf, inf]"
    assert format_interval(None, 1.0) == "[-inf, 1]"
    assert format_interval(-1024.0, None) == "[-1024, inf]"
    assert str(Interval(0.0, 1.0)) == "[0, 1]"


def test_units_reach_the_trace_and_the_json():
    hu = ValueSpec.for_dtype("int16").with_(interval=Interval(-1024.0, 3071.0), units="HU")
    assert hu.to_json()["units"] == "HU"
    assert str(hu).endswith(" (HU)") and str(hu).startswith("int16 [-1024, 3071]")
    plain = ValueSpec.for_dtype("uint8")
    assert "units" not in plain.to_json() and "(" not in str(plain)
