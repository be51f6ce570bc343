"""Near-duplicate confirmation: which hash matches are the same picture.

The hash index (:mod:`.similarity`) finds images whose perceptual hashes lie within a few bits;
each match is then confirmed by the correlation of 8x8 thumbnails (the whole image against the
whole image or one of its nine windows), taken relative to the dataset's mean thumbnail so that
pictures of one kind, which share their coarse layout, are not taken for copies. Confirmed
matches join the images' clusters (:class:`~.similarity.Components`).
"""

from __future__ import annotations

import numpy as np

from ..types import Array
from .columns import WINDOWS, Columns
from .similarity import Components, HashIndex

__all__ = ["TEMPLATE_MIN", "VERIFY_PAIRS", "join_near_duplicates"]


#: Candidate pairs whose thumbnails are compared at once (a few hundred KiB of work arrays).
VERIFY_PAIRS = 1 << 12


def join_near_duplicates(found: Components, cols: Columns, distance: int,
                         corr: float) -> None:
    """Join the near-duplicates among the hashed records into ``found``.

    The index holds every image's whole-image hash and its window hashes; each whole-image hash
    is the query. A match of ``a``'s whole image with window ``k`` of ``b`` is confirmed by the
    correlation of ``a``'s thumbnail with the thumbnail of that window of ``b`` (at least
    ``(1 + corr) / 2``; whole-image matches need ``corr``; hashes match within ``distance``
    bits).

    Matches come in bounded blocks, so memory does not grow with the matches; a match between
    images already joined (through other matches or identical content) is not checked, so a
    cluster of ``m`` copies costs about ``m`` correlations. Look-alikes that are not copies
    (one scene, different noise) still cost a correlation per matching pair: ``m**2`` in time.
    """
    idx, owners, kinds, index = _hash_index(cols)
    template = (cols.template, cols.template_n)
    thumbs = np.asarray(cols.thumbs)  # a plain view of the mapping: gathers without subclass cost
    # a join relabels every record: joins wait for n/64 confirmed pairs, so each pair costs a
    # bounded share of one, and later checks may meanwhile verify a pair already joined
    pending: list[tuple[Array, Array]] = []
    waiting, batch = 0, max(1, cols.n // 64)
    for q, e in index.query_blocks(cols.phash[idx], distance):
        a, b, k = idx[q], owners[e], kinds[e]
        keep = (a < b) | ((a != b) & (k >= 0))  # whole-to-whole matches are found from both ends
        a, b, k = a[keep], b[keep], k[keep]
        for start in range(0, len(a), VERIFY_PAIRS):
            part = slice(start, start + VERIFY_PAIRS)
            new = ~found.connected(a[part], b[part])
            pa, pb, pk = a[part][new], b[part][new], k[part][new]
            # nine windows per image are nine chances of a chance match: a window match must
            # be closer, its thumbnail at most half as decorrelated as a whole-image match may be
            need = np.where(pk >= 0, 1.0 - (1.0 - corr) / 2, corr)
            good = _correlation(thumbs, pa, pb, pk, template) >= need
            if good.any():
                pending.append((pa[good], pb[good]))
                waiting += int(good.sum())
            if waiting >= batch:
                found.join(*(np.concatenate(side) for side in zip(*pending)))
                pending, waiting = [], 0
    if pending:
        found.join(*(np.concatenate(side) for side in zip(*pending)))


def _hash_index(cols: Columns) -> tuple[Array, Array, Array, HashIndex]:
    """``(hashed records, owner and kind of each entry, the index)``: every hashed record's
    whole-image hash (kind -1) and window hashes (kind 0-8)."""
    idx = np.flatnonzero(cols.hashed)
    entries = np.concatenate([cols.phash[idx], cols.windows[idx].ravel()])
    owners = np.concatenate([idx, np.repeat(idx, WINDOWS)])
    kinds = np.concatenate([np.full(len(idx), -1), np.tile(np.arange(WINDOWS), len(idx))])
    return idx, owners, kinds, HashIndex(entries, owners)


def _correlation(thumbs: Array, a: np.ndarray, b: np.ndarray, kind: np.ndarray,
                 template: tuple[Array, int] | None = None) -> np.ndarray:
    """Pearson correlation of the whole thumbnail of each ``a`` with the thumbnail of window
    ``kind`` of ``b`` (the whole of ``b`` where ``kind`` is -1); 1 for the same picture.

    ``thumbs``: every record's ``(10, 64)`` thumbnails (:attr:`.columns.Columns.thumbs`).

    ``template``: ``(sum of every record's thumbnails, records)``. With at least
    :data:`TEMPLATE_MIN` records, both thumbnails are first taken relative to the dataset's mean
    thumbnail of that slot, leaving the pair itself out of the mean. Images of one kind (chest
    radiographs, all framed alike) share most of their coarse layout, so their raw thumbnails
    correlate whoever the patient is; what the same picture shares, and two patients do not,
    is its departure from that common layout. Data without a common layout (photographs) has
    a nearly flat mean, and the correlation is what it was.
    """
    slot = kind + 1
    # rows of one flat (records * slots, 64) table: a look-alike cluster asks for millions
    slots = thumbs.shape[1]
    flat = thumbs.reshape(-1, thumbs.shape[2])
    x = flat.take(a * slots, axis=0).astype(np.float64)
    y = flat.take(b * slots + slot, axis=0).astype(np.float64)
    if template is not None and template[1] >= TEMPLATE_MIN:
        total, n = template
        # the crop of a window is compared with that window: both against the window's mean
        mean = total.take(slot, axis=0)
        mean -= flat.take(a * slots + slot, axis=0)
        mean -= y
        mean /= n - 2
        x -= mean
        y -= mean
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
    return np.where(norm > 0, np.einsum("ij,ij->i", x, y) / np.where(norm > 0, norm, 1), 0.0)


#: Hashed images from which near-duplicate thumbnails are compared against the dataset's mean
#: thumbnail (:func:`_correlation`): fewer make too noisy a mean.
TEMPLATE_MIN = 16
