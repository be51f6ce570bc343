"""Near-duplicate screening of many look-alike images: pairs reported once, components exact,
memory bounded however many images share one hash."""

from __future__ import annotations

import tracemalloc

import numpy as np

from preproc.auditing.columns import THUMB_SHAPE, WINDOWS, ColumnBuilder
from preproc.auditing import nearby
from preproc.auditing.screen import Screen, Thresholds, _similarity
from preproc.auditing.similarity import Components, HashIndex, popcount
from preproc.dataset.records import FileRecord


def test_each_matching_pair_comes_in_exactly_one_block():
    """A pair agreeing on several chunks is found by several tables; only the first reports it."""
    rng = np.random.default_rng(3)
    base = np.uint64(0x0F1E2D3C4B5A6978)
    flips = rng.integers(0, 64, (200, 2))
    hashes = np.array([base ^ np.uint64(sum(1 << int(b) for b in set(f))) for f in flips]
                      + list(rng.integers(0, 2**63, 50, dtype=np.uint64)), dtype=np.uint64)
    blocks = list(HashIndex(hashes, np.arange(len(hashes))).query_blocks(hashes, 8))
    got = np.concatenate([q * len(hashes) + e for q, e in blocks])
    assert len(got) == len(np.unique(got))  # no pair twice
    distance = popcount(hashes[:, None] ^ hashes[None, :])
    q, e = np.nonzero(distance <= 8)
    assert sorted(got.tolist()) == sorted((q * len(hashes) + e).tolist())


def test_a_bucket_larger_than_the_working_batch_is_verified_in_pieces(monkeypatch):
    from preproc.auditing import similarity

    monkeypatch.setattr(similarity, "CANDIDATES", 8)
    hashes = np.full(20, 0x1234_5678_9ABC_DEF0, dtype=np.uint64)  # one bucket of 20 per table
    blocks = list(HashIndex(hashes, np.arange(20)).query_blocks(hashes, 4))
    assert max(len(q) for q, _ in blocks) <= 8
    got = sorted((int(a), int(b)) for q, e in blocks for a, b in zip(q, e))
    assert got == [(a, b) for a in range(20) for b in range(20)]


def test_an_audit_leaves_no_thumbnail_file_behind(tmp_path):
    from PIL import Image

    from preproc.auditing import audit

    (tmp_path / "d" / "a").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(tmp_path / "d" / "a" / f"{i}.png")
    report = audit(tmp_path / "d", workers=1)
    assert report._collector.columns._thumbs.closed


def _reference_groups(n, edges):
    adjacency = {i: set() for i in range(n)}
    for a, b in edges:
        adjacency[a].add(b)
        adjacency[b].add(a)
    seen, groups = set(), []
    for start in range(n):
        if start in seen or not adjacency[start]:
            continue
        stack, group = [start], set()
        while stack:
            node = stack.pop()
            if node not in group:
                group.add(node)
                stack.extend(adjacency[node] - group)
        seen |= group
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: g[0])


def test_components_joined_in_blocks_equal_a_graph_search():
    rng = np.random.default_rng(5)
    for n, m in ((40, 25), (300, 280), (1000, 50)):
        edges = rng.integers(0, n, (m, 2))
        found = Components(n)
        for part in np.array_split(edges, 7):  # blocks in any order, repeated edges included
            found.join(part[:, 0], part[:, 1])
            found.join(part[::-1, 1], part[::-1, 0])
        assert found.groups() == _reference_groups(n, edges.tolist())
        a, b = edges[:, 0], rng.permutation(n)[: len(edges)]
        together = {x: g[0] for g in found.groups() for x in g}
        expected = [together.get(x, -1 - x) == together.get(y, -2 - y) or x == y
                    for x, y in zip(a.tolist(), b.tolist())]
        assert found.connected(a, b).tolist() == expected


def _record(i: int, thumbs: np.ndarray, phash: int, content: int) -> FileRecord:
    return FileRecord(path=f"c/{i:05d}.png", cls="c", dtype="uint8", channels=1, height=64,
                      width=64, hash=f"{content:016x}" + "0" * 48, phash=f"{phash:016x}",
                      phash_center=f"{phash:016x}", crops=f"{phash:016x}" * (WINDOWS - 1),
                      tiny=thumbs.tobytes().hex(), blur=1.0, brightness=0.3, entropy=5.0,
                      level_lo=0.0, level_hi=255.0)


def test_thousands_of_look_alikes_are_screened_in_bounded_memory():
    """Empty slices or frames of one scene share one perceptual hash, yet differ: every pair is
    a candidate. Screening must not hold the candidates (and their thumbnails) all at once, and
    must still find exactly the real copies among them."""
    rng = np.random.default_rng(8)
    n, copies = 700, {10: 11, 200: 201, 650: 699}  # original -> copy
    scene = rng.integers(40, 200, THUMB_SHAPE)
    looks = np.clip(scene + rng.normal(0, 6, (n, *THUMB_SHAPE)), 0, 255).astype(np.uint8)
    for original, copy in copies.items():
        looks[copy] = np.clip(looks[original].astype(int) + rng.integers(-1, 2, THUMB_SHAPE),
                              0, 255)
    columns = ColumnBuilder(None)
    for i in range(n):  # every record: the same hash for the image and each window
        columns.add(_record(i, looks[i], 0x5A5A_0F0F_3C3C_9999, i + 1))
    cols = columns.build()
    out = Screen(n=cols.n, subset=cols.subset, classes=cols.class_names, class_index=cols.cls)
    named: dict = {}
    tracemalloc.start()
    try:
        _similarity(cols, Thresholds(), out, named)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 700 look-alikes are 244,650 image pairs, each a candidate 19 ways (whole image and nine
    # windows, from both ends): held at once with their thumbnails, several GiB
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert out.clusters == [[o, c] for o, c in sorted(copies.items())]
    assert sorted(named["near-duplicate"][1]["clusters"]) == out.clusters


def _family_columns(n: int, seed: int):
    """``n`` look-alikes over a few hash variants, with copies of every kind planted: whole
    copies, re-toned ones, and crops whose whole thumbnail is a window of their original."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(40, 200, THUMB_SHAPE)
    looks = np.clip(scene + rng.normal(0, 6, (n, *THUMB_SHAPE)), 0, 255)
    base = 0x5A5A_0F0F_3C3C_9999
    hashes = [base ^ (1 << int(rng.integers(64))) if rng.random() < 0.3 else base
              for _ in range(n)]
    for original in rng.choice(n, n // 10, replace=False):
        copy = int(rng.integers(n))
        slot = int(rng.integers(0, 1 + WINDOWS))
        looks[copy, 0] = looks[original, slot] * rng.uniform(0.8, 1.0) + rng.normal(0, 2, 64)
    for original in rng.choice(n, 3, replace=False):  # re-encoded files: the same thumbnails
        looks[int(rng.integers(n))] = looks[original]
    columns = ColumnBuilder(None)
    for i in range(n):
        columns.add(_record(i, np.clip(looks[i], 0, 255).astype(np.uint8), hashes[i], i + 1))
    return columns.build()


def test_a_family_compared_by_matrix_products_joins_what_pair_by_pair_comparison_joins(
        monkeypatch):
    """Look-alikes sharing a hash are compared all at once (BLAS) instead of pair by pair: the
    same matches, the same thresholds, the same clusters, with and without the mean thumbnail,
    and at a threshold of 1, which only identical thumbnails reach."""
    monkeypatch.setattr(nearby, "FAMILY_BLOCK", 1 << 12)  # several row blocks
    # 12 records are too few for the mean thumbnail; distance 0 leaves the one-bit variants out
    for n, seed, distance, corr in ((300, 1, 10, 0.85), (12, 2, 10, 0.85), (500, 3, 10, 0.85),
                                    (400, 4, 0, 0.7), (400, 5, 6, 0.95), (300, 6, 10, 1.0)):
        cols = _family_columns(n, seed)
        groups = {}
        for family_min in (10**9, 4):  # pair by pair; as families
            monkeypatch.setattr(nearby, "FAMILY_MIN", family_min)
            found = Components(cols.n)
            nearby.join_near_duplicates(found, cols, distance, corr)
            groups[family_min] = found.groups()
        assert groups[4] == groups[10**9]
        assert groups[4]  # copies were found: not an empty agreement
