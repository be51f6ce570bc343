"""Near-duplicates: a copy cropped by up to 10% from any corner or side matches its original on
its own (not through other copies), and unrelated pictures stay apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from quality_fixtures import scene

from preproc.auditing import audit
from preproc.auditing.quality import crop_windows, window_hashes, working_image

#: Where a crop keeps its picture: (rows from the top, columns from the left) as fractions of
#: the margin, for the four corners, the four sides and the centre.
PLACES = {"top-left": (0, 0), "top": (0, .5), "top-right": (0, 1), "right": (.5, 1),
          "bottom-right": (1, 1), "bottom": (1, .5), "bottom-left": (1, 0), "left": (.5, 0),
          "centre": (.5, .5)}


def _crop(img: np.ndarray, fraction: float, place: tuple[float, float]) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = round(h * fraction), round(w * fraction)
    oy, ox = round(dy * place[0]), round(dx * place[1])
    return img[oy:oy + h - dy, ox:ox + w - dx]


def _save(path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    """One original per (fraction, place), its crop, and 24 unrelated pictures."""
    root = tmp_path_factory.mktemp("crops") / "data"
    rng = np.random.default_rng(21)
    pairs = {}
    for fraction in (0.05, 0.10):
        for name, place in PLACES.items():
            stem = f"{int(fraction * 100):02d}-{name}"
            img = scene(rng, 160, 160)
            _save(root / "a" / f"{stem}.png", img)
            _save(root / "a" / f"{stem}-crop.png", _crop(img, fraction, place))
            pairs[f"a/{stem}-crop.png"] = f"a/{stem}.png"
    for i in range(24):
        _save(root / "a" / f"other-{i:02d}.png", scene(rng, 160, 160))
    return audit(root, workers=1), pairs


def test_each_crop_is_clustered_with_its_original_alone(cropped):
    report, pairs = cropped
    cluster = {row["path"]: row["cluster"] for row in report.csv_rows()}
    for crop, original in pairs.items():
        assert cluster[crop] != "" and cluster[crop] == cluster[original], (crop, original)
    members: dict[str, set[str]] = {}
    for path, number in cluster.items():
        if number:
            members.setdefault(number, set()).add(path)
    assert sorted(map(sorted, members.values())) == sorted(sorted(p) for p in pairs.items())


def test_unrelated_pictures_are_not_near_duplicates(cropped):
    report, _ = cropped
    near = next(f for f in report.findings if f.code == "near-duplicate")
    assert not [p for p in near.data["examples"] for m in p if m["path"].startswith("a/other")]
    assert near.data["clusters"] == 2 * len(PLACES)


def test_a_corner_crop_hashes_like_the_window_of_its_original():
    img = scene(np.random.default_rng(5), 256, 256)
    eight = np.round(img * 255).astype(np.uint8)
    windows = window_hashes(working_image(eight, 0, 255))
    corners = crop_windows(64, 64)
    assert len(windows) == len(corners) == 9 and corners[4] == (3, 3)
    crop = _crop(eight, 0.1, PLACES["bottom-right"])
    whole = window_hashes(working_image(crop, 0, 255))
    # the crop's own centre window is not the original's; its whole image is the last window
    from preproc.auditing.quality import phash_of
    from preproc.auditing.similarity import popcount

    distance = popcount(np.uint64(phash_of(working_image(crop, 0, 255))) ^ windows[8])
    assert int(distance) <= 4
    assert int(popcount(whole[4] ^ windows[4])) > int(distance)
