"""What sampled DICOM headers say about units: the source spec and the units findings of check.

The headers of a sample (no pixels) give, per file, the stored range, the modality LUT
(RescaleSlope/RescaleIntercept or a Modality LUT Sequence), the window and the photometric
interpretation. With the config's ``source.dicom`` options they decide:

* the source spec: modality units (HU for CT) over the stored range through the modality LUT,
  float32 [0, 1] with ``voi: header``, the stored values with ``modality_lut: false``;
* ``mixed-rescale``: stored values of files whose slopes or intercepts disagree;
* ``dicom-stored-units``: a stage with absolute parameters (``window``, ``clip``, fixed
  ``normalize``, ...) receiving stored values whose modality LUT is not identity;
* ``unreadable-file``: files the options refuse (no window under ``voi: header``,
  MONOCHROME1 under ``monochrome1: error``);
* ``mixed-bit-depth`` becomes info when the modality LUT is applied and the files differ only in
  BitsStored within one modality: the unit is what matters, and it agrees.

The config and the pipeline are taken duck-typed (this module sits below them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import dtypes
from ..findings import Finding, Location, Severity
from ..io.dicom_lut import (
    PixelFacts,
    facts_from_extra,
    modality_dtype,
    modality_range,
    smallest_int_dtype,
)
from ..spec import Interval, ValueSpec

if TYPE_CHECKING:
    from ..io.dicom import DicomDecoding
    from ..io.info import ImageInfo

#: One sampled file: ``(display path, facts, info)``.
Row = tuple[str, PixelFacts, "ImageInfo"]

__all__ = [
    "DicomSample",
    "adjust_source",
    "header_units",
    "lut_text",
    "sample_findings",
]

_MONO = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class DicomSample:
    """Sampled grayscale DICOM headers: ``(display path, facts, info)`` per file."""

    files: tuple[Row, ...]

    @classmethod
    def from_infos(cls, infos: Iterable[ImageInfo], root: str | os.PathLike[str] | None = None
                   ) -> DicomSample:
        rows = []
        for info in infos:
            if info.format != "dicom" or info.photometric not in _MONO:
                continue
            facts = facts_from_extra(info.extra, bits_stored=info.stored_bits or 8,
                                     signed=info.signed, photometric=info.photometric,
                                     dtype=info.dtype)
            rows.append((_display(info.path, root), facts, info))
        return cls(tuple(rows))

    def __bool__(self) -> bool:
        return bool(self.files)

    @property
    def non_identity(self) -> list[tuple[str, PixelFacts]]:
        return [(p, f) for p, f, _ in self.files if not f.identity]

    def modalities(self) -> set[str]:
        return {i.extra.get("modality") or "?" for _, _, i in self.files}


def header_units(info: ImageInfo, options: DicomDecoding | None,
                 effective_bits: int | None = None) -> tuple[str | None, list[float] | None]:
    """``(units, [lo, hi])``: what one file's grayscale values are in once decoded with
    ``options`` (``source.dicom``), and the interval its header allows them (no pixels).

    The interval is the stored range of BitsStored through the modality LUT (the source
    interval ``check`` derives), ``[0, 1]`` under ``voi: header``, the stored range with
    ``modality_lut: false``. When BitsStored fills the container and ``effective_bits`` (the
    bits the stored values use, counted in the container's signedness) is known, those bits
    replace it, as for any integer file whose header does not narrow its container; not for
    inverted files, whose inversion spans the whole stored range.

    Returns:
        ``(None, None)`` for other formats, colour DICOM files, or without ``options``.
    """
    extra = info.extra or {}
    photometric = extra.get("stored_photometric") or info.photometric
    if info.format != "dicom" or options is None or photometric not in _MONO:
        return None, None
    from ..io.dicom import units_of

    units = units_of(options, extra.get("modality"))
    if units == "voi":
        return units, [0.0, 1.0]
    bits = info.stored_bits or 8
    if (effective_bits is not None and bits >= dtypes.container_bits(extra.get("stored_dtype")
                                                                       or info.dtype)
            and not (photometric == "MONOCHROME1" and options.monochrome1 == "invert")):
        bits = min(bits, effective_bits)
    facts = facts_from_extra(extra, bits_stored=bits, signed=bool(info.signed),
                             photometric=photometric, dtype=extra.get("stored_dtype") or info.dtype)
    if units == "stored":
        lo, hi = dtypes.levels_range(bits, bool(info.signed))
        return units, [float(lo), float(hi)]
    lo, hi = modality_range(facts)
    return units, [float(lo), float(hi)]


def _display(path: str, root: str | os.PathLike[str] | None) -> str:
    if root is None:
        return str(path)
    try:
        return os.path.relpath(path, root).replace(os.sep, "/")
    except ValueError:
        return str(path)


def lut_text(facts: PixelFacts) -> str:
    if facts.lut_bits is not None:
        return f"a Modality LUT Sequence ({facts.lut_bits}-bit)"
    return f"RescaleSlope {facts.slope:g}, RescaleIntercept {facts.intercept:g}"


def adjust_source(src: ValueSpec, sample: DicomSample, options: DicomDecoding | None, *,
                  declared: bool) -> ValueSpec:
    """The source spec once the sampled DICOM headers and ``options`` are known.

    Args:
        src: the spec from ``source.expect`` (``declared``) or from the headers' stored values.
        sample: the sampled grayscale DICOM headers (all sampled files must be such DICOM for
            a spec built from headers to change).
        options: ``source.dicom``.
        declared: ``src`` comes from ``source.expect``: its interval is kept (in modality
            units when the modality LUT is applied), only the units are named.
    """
    if not sample or options is None:
        return src
    if options.voi == "header":  # whatever was stored, the pipeline receives the window's [0, 1]
        return ValueSpec("float32", Interval(0.0, 1.0), channels=src.channels or 1,
                         bits=None, units="voi")
    if not options.modality_lut:
        return src.with_(units="stored")
    from ..io.dicom import units_of  # the rule the decoder labels each file by

    modalities = sample.modalities()
    units = units_of(options, next(iter(modalities)) if len(modalities) == 1 else None)
    if declared or len(sample.files) == 0:
        return src.with_(units=units)
    if all(f.identity for _, f, _ in sample.files):
        return src.with_(units=units)
    lo = min(modality_range(f)[0] for _, f, _ in sample.files)
    hi = max(modality_range(f)[1] for _, f, _ in sample.files)
    kinds = {modality_dtype(f, i.dtype) for _, f, i in sample.files}
    if len(kinds) == 1:
        dtype = kinds.pop()
    elif all(dtypes.is_integer(k) for k in kinds):
        dtype = smallest_int_dtype(lo, hi) or "float64"
    else:
        dtype = "float32"
    return ValueSpec(dtype, Interval(lo, hi), channels=src.channels, bits=None, units=units)


def sample_findings(sample: DicomSample, options: DicomDecoding | None,
                    header_findings: list[Finding],
                    *, scope: str = "") -> list[Finding]:
    """Header findings adjusted and added for DICOM units (no policy applied).

    Returns:
        ``header_findings`` with ``mixed-bit-depth`` demoted to info where the modality LUT makes
        the units agree, plus ``mixed-rescale`` and ``unreadable-file`` for refused files.
    """
    if not sample or options is None:
        return header_findings
    out = [_demote_bit_depth(f, sample, options) for f in header_findings]
    out += _mixed_rescale(sample, options, scope)
    out += _refused(sample, options, scope)
    return out


def _demote_bit_depth(f: Finding, sample: DicomSample, options: DicomDecoding) -> Finding:
    if f.code != "mixed-bit-depth" or not options.modality_lut:
        return f
    infos = [i for _, _, i in sample.files]
    if len(sample.modalities()) != 1 or len({i.channels for i in infos}) != 1:
        return f
    modality = next(iter(sample.modalities()))
    return replace(
        f, severity=Severity.INFO,
        message=f"{f.message}; the modality LUT is applied, so every file is in {modality} "
        "modality units and the stored bit depths differ only in the container",
        hint="nothing to do for the pipeline; set source.dicom.modality_lut: false to see the "
        "stored values as an error again",
    )


def _mixed_rescale(sample: DicomSample, options: DicomDecoding, scope: str) -> list[Finding]:
    if options.modality_lut:
        return []
    kinds = Counter(lut_text(f) for _, f, _ in sample.files)
    if len(kinds) < 2:
        return []
    files = tuple(p for p, _, _ in sample.files)
    found = ", ".join(f"{k} ({n})" for k, n in kinds.most_common())
    return [Finding(
        "mixed-rescale",
        f"the files map stored values to modality units differently{scope}: {found}; with "
        "source.dicom.modality_lut: false the same stored value means different things in "
        "different files",
        hint="set source.dicom.modality_lut: true (the default) so every file is in modality "
        "units",
        location=Location(path="source.dicom.modality_lut"),
        files=files[:10], count=len(files),
        data={"found": dict(kinds)},
    )]


def _refused(sample: DicomSample, options: DicomDecoding, scope: str) -> list[Finding]:
    out = []
    if options.voi == "header":
        bare = [p for p, f, _ in sample.files if f.window is None and not f.has_voi_lut]
        if bare:
            out.append(Finding(
                "unreadable-file",
                f"{len(bare)} file(s){scope} have no WindowCenter/WindowWidth and no VOI LUT "
                "Sequence, and source.dicom.voi is `header`: they cannot be windowed",
                hint="use `voi: none` and a `window` stage with the window you want",
                location=Location(path="source.dicom.voi"),
                files=tuple(bare[:10]), count=len(bare), data={"reason": "no-voi-window"},
            ))
    if options.monochrome1 == "error":
        inverted = [p for p, f, _ in sample.files if f.photometric == "MONOCHROME1"]
        if inverted:
            out.append(Finding(
                "unreadable-file",
                f"{len(inverted)} file(s){scope} are MONOCHROME1 (white is low) and "
                "source.dicom.monochrome1 is `error`",
                hint="set source.dicom.monochrome1: invert (the default) to read them as "
                "MONOCHROME2",
                location=Location(path="source.dicom.monochrome1"),
                files=tuple(inverted[:10]), count=len(inverted),
                data={"reason": "monochrome1-refused"},
            ))
    return out
