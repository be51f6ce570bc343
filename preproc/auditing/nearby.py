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
from .similarity import Components, HashIndex, popcount

__all__ = ["FAMILY_MIN", "TEMPLATE_MIN", "VERIFY_PAIRS", "join_near_duplicates"]


#: Candidate pairs whose thumbnails are compared at once (a few hundred KiB of work arrays).
VERIFY_PAIRS = 1 << 12
#: Records sharing one whole-image hash that make their hash neighbourhood a family, whose
#: pairs are compared all at once by matrix products (:func:`_join_family`).
FAMILY_MIN = 256
#: Elements of one ``(rows, family)`` work matrix of :func:`_join_family` (2 MiB each).
FAMILY_BLOCK = 1 << 18


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
    (one scene, different noise) cost a correlation per matching pair: where many share a hash,
    their pairs are compared as a family, by matrix products (:func:`_join_family`).
    """
    idx, owners, kinds, index = _hash_index(cols)
    template = (cols.template, cols.template_n)
    thumbs = np.asarray(cols.thumbs)  # a plain view of the mapping: gathers without subclass cost
    family = _families(cols, idx, distance)
    for f in range(int(family.max(initial=-1)) + 1):
        _join_family(found, np.flatnonzero(family == f), cols, (distance, corr), template,
                     thumbs)
    # a join relabels every record: joins wait for n/64 confirmed pairs, so each pair costs a
    # bounded share of one, and later checks may meanwhile verify a pair already joined
    pending: list[tuple[Array, Array]] = []
    waiting, batch = 0, max(1, cols.n // 64)
    for q, e in index.query_blocks(cols.phash[idx], distance):
        a, b, k = idx[q], owners[e], kinds[e]
        keep = (a < b) | ((a != b) & (k >= 0))  # whole-to-whole matches are found from both ends
        keep &= (family[a] < 0) | (family[a] != family[b])  # a family's pairs are done
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


def _families(cols: Columns, idx: Array, distance: int) -> Array:
    """Per record, its family number or -1: the hashed records within ``distance`` bits of a
    whole-image hash that :data:`FAMILY_MIN` records or more share; a record near several such
    hashes joins the family of the most shared one."""
    family = np.full(cols.n, -1, dtype=np.int64)
    values, counts = np.unique(cols.phash[idx], return_counts=True)
    shared = counts >= FAMILY_MIN
    heavy = values[shared][np.argsort(-counts[shared], kind="stable")]
    if not len(heavy):
        return family
    rank = np.full(cols.n, len(heavy), dtype=np.int64)
    for q, e in HashIndex(cols.phash[idx], idx).query_blocks(heavy, distance):
        np.minimum.at(rank, idx[e], q)
    found = rank < len(heavy)
    family[found] = rank[found]
    return family


def _join_family(found: Components, members: Array, cols: Columns, rule: tuple[int, float],
                 template: tuple[Array, int], thumbs: Array) -> None:
    """Confirm every hash match among ``members`` at once and join them into ``found``.

    The correlation :func:`_correlation` takes of a pair, expanded: with ``N = n - 2`` and the
    template total ``T``, ``x = U[a] + Z[b]`` and ``y = V[b] + W[a]``, where ``U = t0 - T/N +
    ts/N``, ``Z = ts/N``, ``V = ts (1 + 1/N) - T/N`` and ``W = ts/N`` (``t0``: the whole
    thumbnail, ``ts``: that of the window compared). Centred, every dot product of ``x`` and
    ``y`` is a sum of per-record terms and three matrix products, so a family of ``m`` costs
    ``m**2`` multiply-adds in BLAS instead of ``m**2`` array operations. The same pairs are
    compared as by the index (hashes within ``distance``), with the same thresholds; a value
    within rounding of its threshold, or a thumbnail centred to almost nothing, is decided by
    :func:`_correlation` itself, so both ways decide alike.
    """
    distance, corr = rule
    if len(members) < 2:
        return
    total, n = template
    whole = thumbs[members, 0].astype(np.float64)
    rows = max(1, FAMILY_BLOCK // len(members))
    every = np.arange(len(members))
    for slot in range(1 + WINDOWS):
        entry = cols.phash[members] if slot == 0 else cols.windows[members, slot - 1]
        need = corr if slot == 0 else 1.0 - (1.0 - corr) / 2
        u, w, v, z = _family_terms(whole, thumbs[members, slot].astype(np.float64), total[slot], n)
        # the column side of every row block: ``[V Z]`` and its per-member dot products
        columns = (np.concatenate([v, z], axis=1), np.einsum("ij,ij->i", z, v),
                   np.einsum("ij,ij->i", z, z), np.einsum("ij,ij->i", v, v))
        for start in range(0, len(members), rows):
            local = every[start:start + rows]
            c, flat = _family_block((u[local], w[local], v, z), columns)
            match = popcount(cols.phash[members[local], None] ^ entry[None, :]) <= distance
            match &= (local[:, None] < every) if slot == 0 else (local[:, None] != every)
            ok = match & (c >= need)
            near = np.nonzero(match & (flat | (np.abs(c - need) <= 1e-9)))
            if len(near[0]):  # rounding decides nothing: these take the pairwise arithmetic
                a, b = members[local[near[0]]], members[near[1]]
                ok[near] = _correlation(thumbs, a, b, np.full(len(a), slot - 1), template) >= need
            a_at, b_at = np.nonzero(ok)
            found.join(members[local[a_at]], members[b_at])


def _family_block(rows: tuple[Array, ...], columns: tuple[Array, ...]) -> tuple[Array, Array]:
    """``(correlation, flat)`` of some family rows against every member: ``rows`` holds their
    ``U, W`` and every member's ``V, Z`` (:func:`_family_terms`), ``columns`` the column side
    of :func:`_join_family`; ``flat`` marks a thumbnail centred to (almost) nothing, whose
    correlation is left at 0."""
    u, w, v, z = rows
    right, zv, zz, vv = columns
    sxy = np.concatenate([u, w], axis=1) @ right.T
    sxy += np.einsum("ij,ij->i", u, w)[:, None] + zv[None, :]
    uu, ww = np.einsum("ij,ij->i", u, u), np.einsum("ij,ij->i", w, w)
    sxx = uu[:, None] + 2 * (u @ z.T) + zz[None, :]
    syy = vv[None, :] + 2 * (w @ v.T) + ww[:, None]
    flat = (sxx <= 1e-12 * (uu[:, None] + zz[None, :])) | (syy <= 1e-12 * (vv[None, :] + ww[:, None]))
    c = np.where(flat, 0.0, sxy / np.sqrt(np.where(flat, 1.0, sxx * syy)))
    return c, flat


def _family_terms(t0: Array, ts: Array, total: Array, n: int) -> tuple[Array, Array, Array, Array]:
    """``U, W, V, Z`` of :func:`_join_family` from the members' whole thumbnails ``t0``, those of
    one window slot ``ts`` and the template total of that slot; each row centred."""
    if n >= TEMPLATE_MIN:
        big = n - 2
        u = t0 - total / big + ts / big
        w = ts / big
        v = ts * (1 + 1 / big) - total / big
        z = ts / big
    else:  # no template: x and y are the thumbnails themselves
        u, v = t0.copy(), ts.copy()
        w, z = np.zeros_like(t0), np.zeros_like(ts)
    for part in (u, w, v, z):
        part -= part.mean(axis=1, keepdims=True)
    return u, w, v, z


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
