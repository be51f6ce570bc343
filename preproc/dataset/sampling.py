"""Header sampling for ``preproc check``: confirm or build the source spec without decoding.

:func:`sample_headers` reads the headers of a deterministic sample spread over the classes and
returns the header-level findings (``bit-depth-mismatch``, ``mixed-bit-depth``,
``unreadable-file``, ``lossy-decode``) that ``preproc audit --quick`` reports for the whole
dataset, and ``split-leakage`` as a warning when a per-file ``validation_split`` meets DICOM
files of one patient more than once in the sample; :func:`spec_from_headers` turns the
sampled headers into a source :class:`ValueSpec` when ``source.expect`` declares nothing.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import Finding
from ..io.info import ImageInfo
from ..io.paths import display_path
from ..spec import ValueSpec

if TYPE_CHECKING:
    from ..config.model import Config
    from .dicom_units import DicomSample

__all__ = [
    "HEADER_CODES", "pick_sample", "resolve_source", "sample_headers", "source_spec",
    "spec_from_headers",
]

#: Codes a header sample can establish.
HEADER_CODES = frozenset({"bit-depth-mismatch", "mixed-bit-depth", "unreadable-file",
                          "lossy-decode", "no-images", "files-ignored", "split-leakage"})


def sample_headers(cfg: Config, n: int = 64) -> tuple[list[ImageInfo], list[Finding]]:
    """Read the headers of up to ``n`` files of ``cfg``'s dataset, spread over its classes.

    Args:
        cfg: a loaded config whose ``source.directory`` exists.
        n: sample size; the same config always gives the same sample.

    Returns:
        ``(infos, findings)``: the :class:`~preproc.io.ImageInfo` of every readable sampled
        header, and header-level findings (no policy applied; messages name the sample size).
    """
    from .dicom_tally import DicomOptions, DicomTally
    from .listing import list_config
    from .records import read_header
    from .tally import Expectation, Tally

    from ..io._files import set_max_image_bytes

    set_max_image_bytes(getattr(cfg.source, "max_image_bytes", None))
    listing = list_config(cfg)
    chosen = pick_sample(listing.items, n)
    scope = f" (sample of {len(chosen)} of {len(listing.items)} files)"
    where = display_path(listing.root)
    if not listing.items:  # nothing to sample: the whole dataset is empty, say it as the audit does
        scope = ""
    tally = Tally(Expectation.from_config(cfg.source.expect), [], where, scope)
    tally.ignored = listing.ignored
    # only split-leakage is judged from a sample: the other DICOM rules need every file
    dicom = DicomTally(DicomOptions.from_config(cfg), where, scope)
    infos: list[ImageInfo] = []
    for rel, cls in chosen:
        rec, info = read_header(listing.root, rel, cls)
        tally.add(rec)
        dicom.add(rec)
        if info is not None:
            infos.append(info)
    findings = tally.findings() + [f for f in dicom.findings() if f.code == "split-leakage"]
    return infos, [f for f in findings if f.code in HEADER_CODES]


def pick_sample(items: list[tuple[str, str | None]], n: int) -> list[tuple[str, str | None]]:
    """Up to ``n`` items spread evenly over classes, and evenly within each class.

    Every class gets ``n // classes`` picks (more when others have fewer files), at evenly
    spaced positions of its file list; the result keeps the listing order.
    """
    by_class: dict[str | None, list[int]] = {}
    for index, (_, cls) in enumerate(items):
        by_class.setdefault(cls, []).append(index)
    quota = _quotas({c: len(v) for c, v in by_class.items()}, n)
    picked: list[int] = []
    for cls, indices in by_class.items():
        q = quota[cls]
        picked += [indices[math.floor((i + 0.5) * len(indices) / q)] for i in range(q)]
    return [items[i] for i in sorted(picked)]


def _quotas(sizes: dict[str | None, int], n: int) -> dict[str | None, int]:
    """Share ``n`` picks among classes of the given sizes, as evenly as their sizes allow."""
    quota = {c: 0 for c in sizes}
    left = min(n, sum(sizes.values()))
    while left > 0:
        open_ = [c for c in sizes if quota[c] < sizes[c]]
        share = max(1, left // len(open_))
        for c in open_:
            take = min(share, sizes[c] - quota[c], left)
            quota[c] += take
            left -= take
            if left == 0:
                break
    return quota


def spec_from_headers(infos: Sequence[ImageInfo]) -> ValueSpec | None:
    """Source spec from sampled headers, or ``None`` when they disagree on the dtype.

    Integers get ``[0, 2**stored_bits - 1]`` (two's complement when signed) with the largest
    stored bit depth seen; floats stay unbounded (headers say nothing about float values).
    Channels are set when every header agrees.
    """
    if not infos:
        return None
    kinds = Counter(info.dtype for info in infos)
    if len(kinds) != 1:
        return None
    dtype = infos[0].dtype
    channels = {info.channels for info in infos}
    bits = max((info.stored_bits for info in infos if info.stored_bits), default=None)
    from .. import dtypes

    if not dtypes.is_integer(dtype):
        bits = None
    return ValueSpec.for_dtype(dtype, bits=bits,
                               channels=channels.pop() if len(channels) == 1 else None)


def source_spec(cfg: Config) -> ValueSpec:
    """The source spec declared by ``source.expect``, or an unknown spec."""
    expect = cfg.source.expect
    if expect is None or expect.dtype is None:
        channels = expect.channels if expect is not None else None
        return ValueSpec.unknown(channels)
    return ValueSpec.for_dtype(
        expect.dtype, bits=expect.bit_depth, interval=expect.range, channels=expect.channels
    )


def resolve_source(cfg: Config, n: int = 64) -> tuple[ValueSpec, list[Finding]]:
    """The source spec ``check`` and ``flow`` start from, and the header findings on the way.

    ``source.expect`` when it declares a dtype; otherwise, when ``source.directory`` exists, the
    spec built from the headers of a sample of ``n`` files (no pixels are decoded). DICOM
    headers and ``source.dicom`` then set the units (see :mod:`preproc.dataset.dicom_units`).
    """
    src, findings, _ = resolve_source_sample(cfg, n)
    return src, findings


def resolve_source_sample(
    cfg: Config, n: int = 64
) -> tuple[ValueSpec, list[Finding], DicomSample]:
    """:func:`resolve_source`, plus the sampled DICOM headers (a ``DicomSample``)."""
    from .dicom_units import DicomSample, adjust_source, sample_findings

    src = source_spec(cfg)
    findings: list[Finding] = []
    infos: list[ImageInfo] = []
    declared = src.known
    directory = cfg.source.directory
    if n and directory is not None and os.path.isdir(directory):
        infos, findings = sample_headers(cfg, n)
        if not src.known and infos:
            src = spec_from_headers(infos) or src
    sample = DicomSample.from_infos(infos, directory)
    options = getattr(cfg.source, "dicom", None)
    if sample and len(sample.files) == len(infos):
        src = adjust_source(src, sample, options, declared=declared)
    findings = sample_findings(sample, options, findings,
                               scope=f" (in a sample of {len(infos)} files)")
    return src, findings, sample
