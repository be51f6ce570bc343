"""What the audit proposes: a ``source.expect`` block that matches the data, and a stats file.

The stats file (``preproc audit --stats FILE``) holds per-channel statistics of the raw decoded
values, for ``normalize: {mode: featurewise, stats: FILE}``. Format, version 1::

    {
      "format": "preproc-stats",
      "version": 1,
      "space": "raw",            # values as decoded from the files, before any stage
      "units": "HU",             # DICOM only: what the values are in (as source.dicom decodes)
      "dtype": "uint16",         # dtype of the values measured (as decoded)
      "channels": 1,
      "bit_depth": 12,           # largest effective bit depth seen (integers), else null
      "files": 1980,             # files measured: readable files of this dtype and channel count
      "excluded_files": 20,      # readable files of other dtypes or channel counts, left out
      "pixels": 129761280,       # values per channel
      "mean": [812.4],           # per channel
      "std": [301.9],            # per channel, population (ddof=0)
      "min": [0.0], "max": [4095.0]
    }

``mean`` and ``std`` are in the units of the files. A featurewise normalize placed after a stage
that changes the scale (rescale, CLAHE, ...) must map them through that stage or refuse them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .. import dtypes
from ..spec import format_interval

if TYPE_CHECKING:
    from .aggregate import GroupStats
    from .collect import Collector, UnitsSeen

__all__ = ["STATS_FORMAT", "STATS_VERSION", "expect_yaml", "stats_document", "suggest_expect"]

STATS_FORMAT = "preproc-stats"
STATS_VERSION = 1


def _dominant(collector: Collector) -> tuple[str, int] | None:
    """The most common ``(dtype, channels)`` among files whose header was read."""
    counts: Counter[tuple[str, int]] = Counter()
    for (dtype, _bits, channels), bucket in collector.tally.kinds.items():
        if dtype is not None and channels is not None:  # a kind is a header that was read
            counts[(dtype, channels)] += bucket.count
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], str(k)))


def suggest_expect(collector: Collector) -> dict[str, Any] | None:
    """``source.expect`` matching the dominant kind of file, with a note per key.

    Returns:
        ``{"expect": {...}, "notes": {key: text}, "others": n}`` or ``None`` when no file was
        read. ``others`` counts readable files the block does not describe.
    """
    top = _dominant(collector)
    if top is None:
        return None
    dtype, channels = top
    expect: dict[str, Any] = {"dtype": dtype}
    notes: dict[str, str] = {}
    group = collector.value_group(top)
    seen = collector.units.get(top)
    if seen is not None and seen.name != "stored" and seen.allowed is not None:
        _units_block(seen, seen.allowed, expect, notes)
    elif dtypes.is_integer(dtype):
        _integer_block(collector, dtype, group, expect, notes)
    elif group is not None and group.min:
        lo, hi = min(group.min), max(group.max)
        expect["range"] = [lo, hi]
        notes["range"] = "observed extremes; widen it if new data may exceed them"
    expect["channels"] = channels
    kinds = collector.tally.kinds
    others = sum(b.count for (d, _, c), b in kinds.items() if (d, c) != top)
    return {"expect": expect, "notes": notes, "others": others}


def _integer_block(collector: Collector, dtype: str, group: GroupStats | None,
                   expect: dict[str, Any], notes: dict[str, str]) -> None:
    """Bit depth: what headers declare, raised to what the values need (8-bit stays 8)."""
    container = dtypes.container_bits(dtype)
    header = max((bits for (d, bits, _), _b in collector.tally.kinds.items()
                  if d == dtype and bits), default=container)
    effective = max(collector.tally.effective.get(dtype) or [0]) or None
    bits = header
    if effective is not None and container > 8:
        bits = effective if header >= container else max(header, effective)
    parts = [f"headers declare {header}"] if header < container else []
    if effective is not None:
        parts.append(f"values need at most {effective}")
    note = "; ".join(parts) or "from headers; a full audit also measures values"
    observed = (f"observed {format_interval(min(group.min), max(group.max))}"
                if group is not None and group.min else "")
    if bits != header and dtype in collector.declared:
        # a bit_depth below what the headers declare (DICOM BitsStored 16 holding 13-bit
        # values) would contradict every file; the range alone says what the values need
        note = f"headers declare {header}; values need at most {effective}"
        observed = "; ".join(p for p in (note, observed) if p)
    else:
        expect["bit_depth"] = bits
        notes["bit_depth"] = note
    expect["range"] = [int(v) for v in dtypes.levels_range(bits, dtypes.is_signed(dtype))]
    if observed:
        notes["range"] = observed


def _units_block(seen: UnitsSeen, allowed: list[float], expect: dict[str, Any],
                 notes: dict[str, str]) -> None:
    """DICOM decoded into modality units or a VOI window: ``range`` in those units, as the
    pipeline and ``source.expect.range`` see them. No ``bit_depth``: it would name stored
    levels, not these values."""
    lo, hi = (_plain(v) for v in allowed)
    expect["range"] = [lo, hi]
    if seen.name == "voi":
        text = "voi: the VOI window's output"
    else:
        text = (f"{seen.name}: the stored bits through each file's modality LUT "
                "(RescaleSlope/RescaleIntercept)")
    if seen.observed is not None:
        text += f"; observed {format_interval(*seen.observed)}"
    notes["range"] = text


def _plain(value: float) -> float | int:
    """An integral float as an int (``-1024`` rather than ``-1024.0``)."""
    return int(value) if float(value).is_integer() else float(value)


def expect_yaml(suggestion: dict[str, Any]) -> str:
    """The suggestion as a YAML ``source:`` block with comments."""
    lines = ["source:", "  expect:"]
    for key, value in suggestion["expect"].items():
        text = format_interval(*value) if isinstance(value, list) else str(value)
        note = suggestion["notes"].get(key)
        entry = f"    {key}: {text}"
        lines.append(f"{entry:<28}# {note}" if note else entry)
    if suggestion["others"]:
        lines.append(f"  # {suggestion['others']} other file(s) have another dtype or channel "
                     "count and do not fit this block (see mixed-bit-depth)")
    return "\n".join(lines) + "\n"


def stats_document(collector: Collector) -> dict[str, Any] | None:
    """The stats file content (format in the module docstring), or ``None`` without values."""
    top = _dominant(collector)
    group = collector.value_group(top) if top else None
    if group is None or not group.pixels:
        return None
    seen = collector.units.get(top) if top else None
    bits = None
    if dtypes.is_integer(group.dtype) and (seen is None or seen.name == "stored"):
        bits = max(collector.tally.effective.get(group.dtype) or [0]) or None
    measured = sum(g.files for g in collector.groups.values())
    return {
        "format": STATS_FORMAT, "version": STATS_VERSION, "space": "raw",
        **({"units": seen.name} if seen is not None else {}),
        "dtype": group.dtype, "channels": group.channels, "bit_depth": bits,
        "files": group.files, "excluded_files": measured - group.files,
        "pixels": group.pixels, "mean": group.mean, "std": group.std,
        "min": group.min, "max": group.max,
    }
