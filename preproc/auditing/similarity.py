"""Near-duplicate search over 64-bit perceptual hashes, without comparing all pairs.

Every image contributes two hashes (:mod:`preproc.auditing.quality`: the whole working image and
its central 90%). Two images are near-duplicates when any pair of their hashes differs in at most
``distance`` bits. :class:`HashIndex` finds those pairs by *multi-index hashing*: each hash is
cut into :data:`CHUNKS` 16-bit chunks; by the pigeonhole principle two hashes within
``distance`` bits agree on some chunk within ``distance // CHUNKS`` bits, so only entries whose
chunk lies in that small Hamming ball are candidates. Each probe of the ball is one vectorised
lookup in a table of 65,536 buckets per chunk, and each candidate is verified on all 64 bits. Memory is a few
arrays of one word per hash; no pair list larger than the verified matches is kept.

Matches are merged into clusters (single linkage, union-find) over image numbers.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

__all__ = ["CHUNKS", "HashIndex", "clusters", "popcount", "probe_masks"]

#: 16-bit chunks a 64-bit hash is cut into.
CHUNKS = 4
_CHUNK_BITS = 16


def probe_masks(radius: int, bits: int = _CHUNK_BITS) -> np.ndarray:
    """Every ``bits``-bit mask with at most ``radius`` bits set (the Hamming ball around 0)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in combo) for combo in combinations(range(bits), r)]
    return np.asarray(masks, dtype=np.uint64)


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each ``uint64`` (``np.bitwise_count`` where numpy has it)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)


class HashIndex:
    """Multi-index hash table over ``(owner, hash)`` entries.

    Args:
        hashes: ``uint64`` hashes.
        owners: image number of each hash (several hashes may share an owner).
    """

    def __init__(self, hashes: np.ndarray, owners: np.ndarray) -> None:
        self.hashes = np.asarray(hashes, dtype=np.uint64)
        self.owners = np.asarray(owners, dtype=np.int64)
        self._tables = []
        for c in range(CHUNKS):
            chunk = ((self.hashes >> np.uint64(c * _CHUNK_BITS)) & np.uint64(0xFFFF)).astype(np.intp)
            order = np.argsort(chunk, kind="stable")
            counts = np.bincount(chunk, minlength=1 << _CHUNK_BITS)
            starts = np.cumsum(counts) - counts  # bucket of value v: order[starts[v]:+counts[v]]
            self._tables.append((chunk, counts, starts, order))

    def pairs(self, distance: int) -> np.ndarray:
        """``(k, 2)`` owner pairs ``a < b`` with some hashes within ``distance`` bits, unique."""
        if len(self.hashes) < 2:
            return np.empty((0, 2), dtype=np.int64)
        masks = probe_masks(distance // CHUNKS).astype(np.intp)
        found = []
        for chunk, bucket_counts, bucket_starts, order in self._tables:
            for mask in masks:
                keys = chunk ^ mask
                lo = bucket_starts[keys]
                counts = bucket_counts[keys]
                if not counts.any():
                    continue
                left = np.repeat(np.arange(len(keys)), counts)
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                right = order[np.arange(len(left)) + starts]
                a, b = self.owners[left], self.owners[right]
                keep = a < b
                left, right, a, b = left[keep], right[keep], a[keep], b[keep]
                near = popcount(self.hashes[left] ^ self.hashes[right]) <= distance
                if near.any():
                    found.append(np.stack([a[near], b[near]], axis=1))
        if not found:
            return np.empty((0, 2), dtype=np.int64)
        return np.unique(np.concatenate(found), axis=0)


def clusters(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components of size at least 2 of the graph on ``range(n)`` with edges ``pairs``.

    Members are sorted; clusters are ordered by their first member.
    """
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for node in np.unique(pairs).tolist() if len(pairs) else []:
        groups.setdefault(find(node), []).append(node)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])
