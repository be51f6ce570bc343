"""Near-duplicates, split leakage, label conflicts and image-quality outliers of the audit."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from quality_fixtures import CODES, config_text, labelled_dataset, precision_recall, scene

from preproc.auditing import audit
from preproc.auditing.quality import image_measures, level_range
from preproc.auditing.similarity import Components, HashIndex, popcount
from preproc.config import load_config
from preproc.errors import ConfigError


def _audit(root, text=None, **kwargs):
    cfg = root.parent / "audit.yaml"
    cfg.write_text(text or config_text(root.name), encoding="utf-8")
    return audit(load_config(cfg), **kwargs)


def _flagged(report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {code: set() for code in CODES}
    for row in report.csv_rows():
        for code in filter(None, row["flags"].split(";")):
            found[code].add(row["path"])
    return found


@pytest.mark.parametrize("bits16", [False, True], ids=["rgb8", "gray16-12bit"])
def test_precision_and_recall_on_a_labelled_dataset(tmp_path, bits16):
    truth = labelled_dataset(tmp_path / "data", n=200, bits16=bits16, seed=3)
    found = _flagged(_audit(tmp_path / "data", workers=1))
    for code in CODES:
        if bits16 and code == "grayscale-in-rgb":
            assert not found[code]
            continue
        p, r = precision_recall(found[code], truth[code])
        assert p >= 0.9 and r >= 0.9, (code, p, r, found[code] ^ truth[code])


def _rec(arr, **kw):
    from preproc.auditing.measure import measure
    from preproc.dataset.records import FileRecord

    defaults = {"path": "x", "cls": None, "dtype": str(arr.dtype),
                "stored_bits": arr.dtype.itemsize * 8, "stored_bits_declared": False,
                "signed": False, "pixels": arr.size,
                "min": [float(arr.min())], "max": [float(arr.max())]}
    defaults.update(kw)
    from preproc.dtypes import bits_needed

    defaults.setdefault("effective_bits", bits_needed(float(arr.max())))
    rec = FileRecord(**defaults)
    rec.mean, rec.std = measure(arr)["mean"], measure(arr)["std"]
    return rec


def test_measures_use_the_files_own_range_not_255():
    img = scene(np.random.default_rng(0), color=False)
    eight = np.round(img * 255).astype(np.uint8)
    twelve = np.round(img * 4095).astype(np.uint16)
    m8, m12 = image_measures(eight, _rec(eight)), image_measures(twelve, _rec(twelve))
    assert m12["level_hi"] == 4095.0 and m8["level_hi"] == 255.0
    assert m12["brightness"] == pytest.approx(m8["brightness"], abs=0.01)
    assert m12["entropy"] == pytest.approx(m8["entropy"], abs=0.3)
    assert popcount(np.uint64(int(m8["phash"], 16) ^ int(m12["phash"], 16))) <= 2
    # declared stored bits win over the effective bits
    assert level_range("uint16", 14, True, 12, False, 0, 4095) == (0.0, 16383.0)
    assert level_range("float32", 32, False, None, False, 0.0, 1.0) == (0.0, 1.0)


def test_grayscale_in_rgb_is_exact():
    gray = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8, 1), 3, axis=2)
    assert image_measures(gray, _rec(gray))["grayscale"]
    colour = gray.copy()
    colour[3, 3, 2] += 1
    assert not image_measures(colour, _rec(colour))["grayscale"]
    pil = Image.fromarray(gray)
    assert image_measures(pil, _rec(gray))["grayscale"]


def _owner_pairs(index: HashIndex, distance: int) -> np.ndarray:
    """``(k, 2)`` owner pairs ``a < b`` with hashes within ``distance`` bits, unique, sorted."""
    found = [np.stack([index.owners[q], index.owners[e]], axis=1)
             for q, e in index.query_blocks(index.hashes, distance)]
    pairs = np.concatenate(found) if found else np.empty((0, 2), np.int64)
    return np.unique(pairs[pairs[:, 0] < pairs[:, 1]], axis=0)


def test_hash_index_finds_exactly_the_pairs_brute_force_finds():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    flips = np.zeros(60, dtype=np.uint64)
    for i in range(60):  # neighbours at 0..14 differing bits
        for b in rng.choice(64, size=i % 15, replace=False):
            flips[i] |= np.uint64(1) << np.uint64(b)
    hashes = np.concatenate([base, base[:60] ^ flips])
    owners = np.arange(len(hashes))
    for distance in (0, 4, 10, 12):
        got = {tuple(p) for p in _owner_pairs(HashIndex(hashes, owners), distance).tolist()}
        d = popcount(hashes[:, None] ^ hashes[None, :])
        want = {(a, b) for a, b in zip(*np.nonzero(d <= distance)) if a < b}
        assert got == want, distance
    found = Components(6)
    found.join(np.array([0, 4, 1]), np.array([4, 5, 2]))
    assert found.groups() == [[0, 4, 5], [1, 2]]


def _uniform_dataset(root, factor: float, n: int = 30):
    rng = np.random.default_rng(1)
    for i in range(n):
        img = scene(rng, color=False) * factor
        (root / "scans").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img * 4095).astype(np.uint16)).save(root / "scans" / f"{i:03d}.png")
    return root


def test_a_uniformly_dark_dataset_is_not_flagged_but_its_one_dark_outlier_is(tmp_path):
    root = _uniform_dataset(tmp_path / "data", 0.3)
    assert not {"dark", "light"} & _audit(root).codes
    img = scene(np.random.default_rng(99), color=False) * 0.3 * 0.15
    Image.fromarray(np.round(img * 4095).astype(np.uint16)).save(root / "scans" / "zz.png")
    report = _audit(root)
    dark = next(f for f in report.findings if f.code == "dark")
    assert dark.files == ("scans/zz.png",)
    assert dark.data["measure"] == "brightness" and "scans" in dark.data["thresholds"]
    assert "threshold" in dark.message and "scans" in dark.message


def test_leakage_follows_the_batches_split_and_thresholds_come_from_checks_audit(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(2)
    for i in range(10):
        (root / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(scene(rng) * 255).astype(np.uint8)).save(root / "a" / f"{i}.png")
    src = Image.open(root / "a" / "9.png")
    src.resize((80, 80)).save(root / "a" / "0_copy.jpg", quality=70)  # sorts first: validation
    split = _audit(root, config_text("data", 0.2))
    leak = next(f for f in split.findings if f.code == "split-leakage")
    assert set(leak.files) == {"a/0_copy.jpg", "a/9.png"}
    subsets = {m["path"]: m["subset"] for m in leak.data["examples"][0]}
    assert subsets == {"a/0_copy.jpg": "validation", "a/9.png": "training"}
    assert "near-duplicate" in split.codes
    assert "split-leakage" not in _audit(root, config_text("data", 0.0)).codes
    strict = config_text("data", 0.2, "checks:\n  audit:\n    near_duplicate_distance: 0\n"
                         "    near_duplicate_correlation: 0.9999\n")
    assert not {"split-leakage", "near-duplicate"} & _audit(root, strict).codes
    with pytest.raises(ConfigError, match="near_duplicate_distanse"):
        _audit(root, config_text("data", 0.2, "checks:\n  audit:\n    near_duplicate_distanse: 3\n"))


def test_label_conflict_and_csv_columns(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(4)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.round(scene(rng) * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    Image.open(root / "cat" / "1.png").resize((60, 60)).save(root / "dog" / "x.png")
    report = audit(root, workers=1)
    conflict = next(f for f in report.findings if f.code == "label-conflict")
    assert set(conflict.files) == {"cat/1.png", "dog/x.png"}
    rows = {r["path"]: r for r in report.csv_rows()}
    assert rows["cat/1.png"]["cluster"] == rows["dog/x.png"]["cluster"] != ""
    assert "label-conflict" in rows["dog/x.png"]["flags"].split(";")
    for column in ("phash", "blur", "brightness", "entropy", "aspect_ratio", "grayscale"):
        assert rows["cat/0.png"][column] != "", column
    assert re.fullmatch(r"[0-9a-f]{16}", rows["cat/0.png"]["phash"])


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_html_report_embeds_every_thumbnail_and_resolves_every_image(tmp_path):
    truth = labelled_dataset(tmp_path / "data", n=100, bits16=True, seed=7)
    (tmp_path / "data" / "c0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    report = _audit(tmp_path / "data", workers=1)
    page = report.write(tmp_path / "out")["html"].read_text(encoding="utf-8")
    parser = _Images()
    parser.feed(page)
    assert len(parser.sources) > 20
    for src in parser.sources:  # self-contained: every image is an embedded, decodable PNG
        assert src.startswith("data:image/png;base64,"), src[:40]
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).load()
    for section in ("Image findings", "Image measures per class", "Files not read"):
        assert section in page
    assert "c0/broken.png" in page
    some_leak = min(truth["split-leakage"])
    assert some_leak in page and "validation" in page


def test_html_report_in_headless_chromium(tmp_path):
    import shutil
    import subprocess

    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    labelled_dataset(tmp_path / "data", n=60, seed=8)
    html = _audit(tmp_path / "data", workers=1).write(tmp_path / "out")["html"]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,3000", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[0] == 3000
    assert image.std() > 10  # the page rendered content, not a blank canvas


def test_the_validation_subset_from_the_audit_listing_is_the_batches_subset(tmp_path):
    import os

    from preproc.auditing.columns import validation_paths
    from preproc.dataset.discovery import list_files
    from preproc.dataset.listing import list_config

    root = tmp_path / "data"
    for cls, count in (("a", 7), ("b", 3), ("c", 11)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (4, 4), i).save(root / cls / f"{i:02d}.png")
    cfg_file = tmp_path / "audit.yaml"
    cfg_file.write_text(config_text("data", 0.3), encoding="utf-8")
    cfg = load_config(cfg_file)
    from_listing = validation_paths(cfg, list_config(cfg).items)
    batches = list_files(root, validation_split=0.3, subset="validation")  # the batches' split
    assert from_listing == {f.replace(os.sep, "/") for f in batches.filenames}
    assert from_listing == {"a/00.png", "a/01.png", "c/00.png", "c/01.png", "c/02.png"}


def test_look_alike_radiographs_of_different_patients_are_not_near_duplicates(tmp_path):
    """Chest radiographs share their coarse layout whoever the patient is; only real copies
    (resized, 8-bit exports, JPEG, re-toned, cropped) may form near-duplicate clusters."""
    from preproc.commands._demo_data import radiograph

    root = tmp_path / "data"
    rng = np.random.default_rng(11)
    originals = []
    for i in range(48):
        cls = "sick" if i % 2 else "well"
        (root / cls).mkdir(parents=True, exist_ok=True)
        img = radiograph(rng, 128, 12, sick=cls == "sick")
        Image.fromarray(img).save(root / cls / f"p{i:02d}.png")
        originals.append((cls, img))
    eight = [(np.asarray(img) >> 4).astype(np.uint8) for _, img in originals[:5]]
    copies = {  # copy -> its original
        "well/p00_small.png": (Image.fromarray(originals[0][1]).resize((96, 96)), "well/p00.png"),
        "well/p02_8bit.png": (Image.fromarray(eight[2]), "well/p02.png"),
        "sick/p01_q70.jpg": (Image.fromarray(eight[1]), "sick/p01.png"),
        "sick/p03_bright.png": (Image.fromarray(np.clip(eight[3] * 0.7 + 60, 0, 255)
                                                .astype(np.uint8)), "sick/p03.png"),
        "well/p04_crop.png": (Image.fromarray(eight[4][6:122, 5:121]), "well/p04.png"),
    }
    for name, (image, _) in copies.items():
        image.save(root / name, **({"quality": 70} if name.endswith(".jpg") else {}))
    report = _audit(root, workers=1)
    clusters = {}
    for row in report.csv_rows():
        if row["cluster"] != "":
            clusters.setdefault(row["cluster"], set()).add(row["path"])
    assert sorted(map(sorted, clusters.values())) == sorted(
        sorted([copy, original]) for copy, (_, original) in copies.items())


def test_the_hash_index_finds_every_pair_whatever_its_working_batch_size(monkeypatch):
    """Look-alike images fill buckets: the index verifies candidates in bounded batches, and
    the batches must not lose or repeat a pair."""
    from preproc.auditing import similarity

    rng = np.random.default_rng(9)
    base = np.uint64(0x0123456789ABCDEF)
    flips = rng.integers(0, 64, (300, 3))
    hashes = np.array([base ^ np.uint64(sum(1 << int(b) for b in set(f))) for f in flips]
                      + list(rng.integers(0, 2**63, 100, dtype=np.uint64)), dtype=np.uint64)
    owners = np.arange(len(hashes))
    distance = popcount(hashes[:, None] ^ hashes[None, :])
    expected = sorted(zip(*np.nonzero(np.triu(distance <= 6, k=1))))
    for keys, candidates in ((1 << 16, 1 << 17), (7, 5), (1, 1)):
        monkeypatch.setattr(similarity, "PROBE_KEYS", keys)
        monkeypatch.setattr(similarity, "CANDIDATES", candidates)
        pairs = _owner_pairs(HashIndex(hashes, owners), 6)
        assert [tuple(p) for p in pairs.tolist()] == [(int(a), int(b)) for a, b in expected]


def test_the_contact_sheet_converts_and_resizes_as_the_batches_do(tmp_path):
    """'What the model sees': a red picture in a grayscale pipeline is its luma (76 of 255, as
    Pillow and the batches convert it), not the mean of its channels (85)."""
    from preproc.auditing.thumbs import _ModelView

    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (16, 16), (255, 0, 0)).save(root / "a" / "red.png")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("version: 1\nsource: {directory: data}\nstages: []\nbatches: "
                        "{color_mode: grayscale, target_size: [8, 8], interpolation: bilinear}\n",
                        encoding="utf-8")
    cfg = load_config(cfg_file)
    (rec,) = list(audit(cfg, workers=1).records())
    uri = _ModelView.of(cfg).uri(str(root), rec, None)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert shown.shape[:2] == (8, 8) and abs(int(shown.mean()) - 76) <= 1
