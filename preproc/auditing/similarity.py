"""Near-duplicate search over 64-bit perceptual hashes, without comparing all pairs.

Every image contributes its whole-image hash and the hashes of nine windows keeping 90% of each
side (:mod:`preproc.auditing.quality`: the centre, the four corners and the four edge
midpoints). The index holds all of them; each image's whole-image hash is the query. A copy
cropped by up to 10% from any side or corner is then a whole picture that looks like one window
of its original, at the same scale, whichever of the two is found first.

:class:`HashIndex` finds hashes within ``distance`` bits by *multi-index hashing*: each hash is
cut into :data:`CHUNKS` 16-bit chunks; by the pigeonhole principle two hashes within
``distance`` bits agree on some chunk within ``distance // CHUNKS`` bits, so only entries whose
chunk lies in that small Hamming ball are candidates. Each probe of the ball is one vectorised
lookup in a table of 65,536 buckets per chunk, and each candidate is verified on all 64 bits.
Memory is a few arrays of one word per hash; no pair list larger than the verified matches is
kept.

Matches are merged into clusters (single linkage) by :class:`Components`, whose labels say at
once whether two images are already joined: matches arrive in bounded blocks
(:meth:`HashIndex.query_blocks`) and only those between images not yet joined need verifying.
Thousands of look-alike images (empty slices, frames of one scene) would otherwise make
millions of pairs to hold and check.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from ..types import Array

__all__ = ["CHUNKS", "Components", "HashIndex", "popcount", "probe_masks"]

#: 16-bit chunks a 64-bit hash is cut into.
CHUNKS = 4
#: (query, probed chunk value) keys looked up at once (:meth:`HashIndex.query_blocks`).
PROBE_KEYS = 1 << 16
#: Candidate (query, entry) pairs verified at once: bounds the index's working memory.
CANDIDATES = 1 << 17
_CHUNK_BITS = 16
_CHUNK_MASK = np.uint64((1 << _CHUNK_BITS) - 1)


def probe_masks(radius: int, bits: int = _CHUNK_BITS) -> Array:
    """Every ``bits``-bit mask with at most ``radius`` bits set (the Hamming ball around 0)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in combo) for combo in combinations(range(bits), r)]
    return np.asarray(masks, dtype=np.intp)


def popcount(words: Array) -> Array:
    """Set bits of each ``uint64`` (``np.bitwise_count`` where numpy has it)."""
    if hasattr(np, "bitwise_count"):
        counted: Array = np.bitwise_count(words)
        return counted
    as_bytes = np.asarray(words, dtype=np.uint64).reshape(-1).view(np.uint8).reshape(-1, 8)
    bits: Array = np.unpackbits(as_bytes, axis=1).sum(axis=1).reshape(np.shape(words))
    return bits


def _chunk(hashes: Array, c: int) -> Array:
    chunk: Array = ((hashes >> np.uint64(c * _CHUNK_BITS)) & _CHUNK_MASK).astype(np.intp)
    return chunk


class HashIndex:
    """Multi-index hash table over ``(owner, hash)`` entries.

    Args:
        hashes: ``uint64`` hashes.
        owners: image number of each hash (several hashes may share an owner).
    """

    def __init__(self, hashes: Array, owners: Array) -> None:
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        self.owners = np.asarray(owners, dtype=np.int64)
        self._tables: list[tuple[Array, Array, Array]] = []
        for c in range(CHUNKS):
            chunk = _chunk(self.hashes, c)
            # 32-bit tables: the index is a few words per hash, whatever the dataset size
            order = np.argsort(chunk, kind="stable").astype(np.int32)
            counts = np.bincount(chunk, minlength=1 << _CHUNK_BITS).astype(np.int32)
            starts = np.cumsum(counts, dtype=np.int64) - counts  # bucket v: order[starts[v]:+counts[v]]
            self._tables.append((counts, starts.astype(np.int32), order))

    def query_blocks(self, hashes: Array, distance: int) -> Iterator[tuple[Array, Array]]:
        """Every ``(query, entry)`` pair whose hashes differ in at most ``distance`` bits, as
        ``(query positions, entry positions)`` blocks of at most :data:`CANDIDATES` pairs, so
        memory is bounded however many images look alike.

        Each pair comes once: a table reports only the pairs no earlier table's chunk found.
        """
        queries = np.asarray(hashes, dtype=np.uint64)
        if not len(queries) or not len(self.hashes):
            return
        masks = probe_masks(distance // CHUNKS)
        # every probe of a block of queries in one vectorised lookup: the block bounds the
        # memory of the (query, probe) keys whatever the dataset size
        block = max(1, PROBE_KEYS // len(masks))
        for c, (bucket_counts, bucket_starts, order) in enumerate(self._tables):
            chunk = _chunk(queries, c)
            for start in range(0, len(queries), block):
                part = chunk[start:start + block]
                keys = (part[:, None] ^ masks[None, :]).ravel()
                asked = np.repeat(np.arange(start, start + len(part)), len(masks))
                yield from self._probe(queries, asked, keys, (bucket_counts, bucket_starts,
                                       order), distance, c)

    def _probe(self, queries: Array, asked: Array, keys: Array, table: tuple[Array, Array, Array],
               distance: int, c: int) -> Iterator[tuple[Array, Array]]:
        """Matches of probed values of chunk ``c``: query ``asked[i]`` against the bucket of
        ``keys[i]``, verified :data:`CANDIDATES` candidates at a time (look-alike images fill
        buckets: a bucket larger than that is verified in pieces)."""
        bucket_counts, bucket_starts, order = table
        counts = bucket_counts[keys]
        hit = np.flatnonzero(counts)
        if not len(hit):
            return
        asked, starts, counts = asked[hit], bucket_starts[keys[hit]].astype(np.int64), counts[hit]
        pieces = -(-counts // CANDIDATES)
        if (pieces > 1).any():
            first = np.cumsum(pieces) - pieces
            step = (np.arange(int(pieces.sum())) - np.repeat(first, pieces)) * CANDIDATES
            asked = np.repeat(asked, pieces)
            starts = np.repeat(starts, pieces) + step
            counts = np.minimum(np.repeat(counts, pieces) - step, CANDIDATES)
        ends = np.cumsum(counts, dtype=np.int64)
        start = 0
        while start < len(asked):
            before = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, before + CANDIDATES, side="right")))
            part = slice(start, stop)
            q, e = self._verify(queries, asked[part], counts[part], starts[part], order,
                                distance, c)
            if len(q):
                yield q, e
            start = stop

    def _verify(self, queries: Array, asked: Array, counts: Array, starts: Array, order: Array,
                distance: int, c: int) -> tuple[Array, Array]:
        """Each query ``asked[i]`` against the ``counts[i]`` entries from ``starts[i]`` in
        ``order``, on all 64 bits: the ``(query, entry)`` positions that match, except those an
        earlier chunk than ``c`` already found (their chunk there within the probed radius)."""
        total = int(counts.sum())
        left = np.repeat(asked, counts)
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        right = order[np.arange(total) + offsets]
        differ = queries[left] ^ self.hashes[right]
        near = popcount(differ) <= distance
        radius = distance // CHUNKS
        for earlier in range(c):
            near &= popcount(_chunk(differ, earlier)) > radius
        return left[near].astype(np.int64), right[near].astype(np.int64)


class Components:
    """Connected components of a graph on ``range(n)`` whose edges arrive in blocks.

    ``label[i]`` is the smallest node of ``i``'s component, exact after every :meth:`join`, so
    whether a block's pairs are already connected is two lookups per pair.
    """

    def __init__(self, n: int) -> None:
        self.label = np.arange(n, dtype=np.int64)

    def connected(self, a: Array, b: Array) -> Array:
        """Per pair, whether ``a[i]`` and ``b[i]`` are in one component."""
        joined: Array = self.label[a] == self.label[b]
        return joined

    def join(self, a: Array, b: Array) -> None:
        """Add the edges ``(a[i], b[i])``."""
        la, lb = self.label[a], self.label[b]
        while True:
            differ = la != lb
            if not differ.any():
                return
            la, lb = la[differ], lb[differ]
            # each larger label (a component's smallest node) now points at a smaller one;
            # following the pointers to the end relabels every node. Labels only decrease, so
            # the edges a component got more than one new pointer for settle in a few rounds.
            np.minimum.at(self.label, np.maximum(la, lb), np.minimum(la, lb))
            while True:
                jumped = self.label[self.label]
                if np.array_equal(jumped, self.label):
                    break
                self.label = jumped
            la, lb = self.label[la], self.label[lb]

    def groups(self) -> list[list[int]]:
        """Components of at least two nodes, members sorted, ordered by their first member."""
        sizes = np.bincount(self.label, minlength=len(self.label))
        members = np.flatnonzero(sizes[self.label] > 1)
        if not len(members):
            return []
        order = members[np.argsort(self.label[members], kind="stable")]
        labels = self.label[order]
        cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        return [part.tolist() for part in np.split(order, cuts)]
