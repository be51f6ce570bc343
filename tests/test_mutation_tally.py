"""Audit rules of :mod:`preproc.dataset.tally` on hand-made records: every count, threshold,
message and example list a finding carries, with no file read (the audit tests cover the files).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from preproc.dataset.records import FileRecord
from preproc.dataset.tally import MAX_EXAMPLES, Expectation, Tally, _Bucket, signature_label
from preproc.spec import Interval


def _rec(path="c/a.png", cls="c", dtype="uint16", bits=16, channels=1, lo=None, hi=None,
         **extra) -> FileRecord:
    values = {}
    if lo is not None:
        values = {"min": list(lo) if isinstance(lo, list) else [lo],
                  "max": list(hi) if isinstance(hi, list) else [hi]}
    return FileRecord(path=path, cls=cls, dtype=dtype, stored_bits=bits, channels=channels,
                      **values, **extra)


def _bad(path, code="unreadable-file", error="truncated", detail="", cls="c") -> FileRecord:
    return FileRecord(path=path, cls=cls, error=error, error_code=code, detail=detail)


def _codes(tally, duplicates=None):
    return [f.code for f in tally.findings(duplicates)]


def _one(tally, code, duplicates=None):
    found = [f for f in tally.findings(duplicates) if f.code == code]
    assert len(found) == 1, [f.code for f in tally.findings(duplicates)]
    return found[0]


# --- Expectation ---------------------------------------------------------------------------

def test_no_expectation_stays_none():
    assert Expectation.from_config(None) is None


def test_a_declared_range_wins_over_the_bit_depth():
    e = Expectation.from_config(SimpleNamespace(dtype="uint16", bit_depth=12, range=[5, 99],
                                                channels=3))
    assert e == Expectation("uint16", 12, Interval(5.0, 99.0), 3, "source.expect.range")


@pytest.mark.parametrize("dtype, interval", [
    (None, Interval(0.0, 4095.0)),
    ("uint16", Interval(0.0, 4095.0)),
    ("int16", Interval(-2048.0, 2047.0)),
])
def test_a_bit_depth_implies_its_levels_range(dtype, interval):
    e = Expectation.from_config(SimpleNamespace(dtype=dtype, bit_depth=12, range=None,
                                                channels=None))
    assert e.range == interval
    assert e.range_key == "source.expect.bit_depth"
    assert (e.dtype, e.bit_depth, e.channels) == (dtype, 12, None)


def test_a_bit_depth_on_a_float_dtype_implies_no_range():
    e = Expectation.from_config(SimpleNamespace(dtype="float32", bit_depth=12, range=None))
    assert e == Expectation("float32", 12, None, None, "source.expect.range")


def test_nothing_declared_gives_no_range():
    e = Expectation.from_config(SimpleNamespace())
    assert e == Expectation(None, None, None, None, "source.expect.range")


def test_signature_label():
    assert signature_label("uint16", 12, 1) == "uint16 12-bit 1ch"


# --- buckets ---------------------------------------------------------------------------------

def test_a_bucket_keeps_at_most_max_examples_and_counts_every_file():
    b = _Bucket()
    for i in range(MAX_EXAMPLES + 2):
        b.add(f"f{i}")
    assert MAX_EXAMPLES == 10
    assert b.count == 12
    assert b.examples == [f"f{i}" for i in range(10)]
    assert b.found == {}


def test_a_breakdown_ranks_by_count_then_name_and_says_how_many_more():
    b = _Bucket()
    for value, n in [("b", 2), ("a", 2), ("c", 5), ("d", 1), ("e", 1), ("f", 1), ("g", 1),
                     ("h", 1)]:
        for _ in range(n):
            b.add("x", value)
    assert b.breakdown() == "c (5), a (2), b (2), d (1), e (1), f (1) and 2 more"
    assert b.breakdown(limit=8) == "c (5), a (2), b (2), d (1), e (1), f (1), g (1), h (1)"
    assert b.breakdown(limit=2) == "c (5), a (2) and 6 more"


def test_a_breakdown_prints_floats_as_reports_do():
    b = _Bucket()
    b.add("x", 0.5)
    b.add("y", 3.0)
    b.add("z", 3.0)
    b.add("w", 7)
    assert b.breakdown() == "3 (2), 0.5 (1), 7 (1)"


# --- header rules ----------------------------------------------------------------------------

def test_headers_are_checked_against_every_declared_field():
    t = Tally(Expectation("uint16", 12, None, 1), ["c"], "data")
    t.add(_rec("c/ok.png", bits=12, stored_bits_declared=True))
    t.add(_rec("c/dtype.png", dtype="uint8", bits=12, stored_bits_declared=True))
    t.add(_rec("c/rgb.png", channels=3, bits=12, stored_bits_declared=True))
    t.add(_rec("c/wide.png", bits=16, stored_bits_declared=True))
    t.add(_rec("c/container.png", bits=16, stored_bits_declared=False))
    found = [(f.location.path, f.files, f.count, f.data, f.message)
             for f in t.findings() if f.code == "bit-depth-mismatch"]
    assert found == [
        ("source.expect.dtype", ("c/dtype.png",), 1,
         {"field": "dtype", "expected": "uint16", "found": ["uint8"]},
         "1 of 5 files have another container dtype than source.expect.dtype = uint16: "
         "found uint8 (1)"),
        ("source.expect.channels", ("c/rgb.png",), 1,
         {"field": "channels", "expected": 1, "found": [3]},
         "1 of 5 files have another channel count than source.expect.channels = 1: found 3 (1)"),
        ("source.expect.bit_depth", ("c/wide.png",), 1,
         {"field": "stored_bits", "expected": 12, "found": [16]},
         "1 of 5 files declare other stored bits in their header (PNG sBIT, TIFF "
         "BitsPerSample, DICOM BitsStored) than source.expect.bit_depth = 12: found 16 (1)"),
    ]
    hints = [f.hint for f in t.findings() if f.code == "bit-depth-mismatch"]
    assert hints == [
        "convert these files, or declare the dtype they have in source.expect.dtype",
        "convert these files, or fix source.expect.channels",
        "check which bit depth the scanner or export wrote, and fix source.expect.bit_depth "
        "or the files"]


def test_undeclared_fields_and_bare_directories_raise_no_mismatch():
    for expect in (None, Expectation()):
        t = Tally(expect, ["c"], "data")
        t.add(_rec("c/a.png", dtype="uint8", bits=8, channels=3, stored_bits_declared=True))
        assert "bit-depth-mismatch" not in _codes(t)


# --- errors ----------------------------------------------------------------------------------

def test_errors_are_grouped_per_code_with_their_reasons():
    t = Tally(None, ["c"], "data")
    t.add(_bad("c/a.png", error="truncated"))
    t.add(_bad("c/b.png", error="truncated"))
    t.add(_bad("c/c.png", error="empty"))
    t.add(_bad("c/d.jp2", code="lossy-decode", error="jpeg2000-lossy"))
    t.add(_rec("c/ok.png"))
    f = _one(t, "unreadable-file")
    assert f.message == "3 of 5 files could not be read: truncated (2), empty (1)"
    assert f.hint == ("fix or remove these files; files.csv lists each one with its reason in "
                      "the error column")
    assert f.files == ("c/a.png", "c/b.png", "c/c.png")
    assert f.count == 3
    assert f.data == {"reasons": {"truncated": 2, "empty": 1}}
    g = _one(t, "lossy-decode")
    assert g.message == ("1 of 5 files can only be decoded by dropping bits or channels: "
                         "jpeg2000-lossy (1)")
    assert g.hint == "convert them losslessly (16-bit PNG or TIFF) or exclude them"
    assert _codes(t)[:2] == ["unreadable-file", "lossy-decode"]


def test_a_missing_decoder_puts_its_install_command_in_the_hint():
    t = Tally(None, ["c"], "data")
    detail = "a decoder must be installed; install it with: pip install pylibjpeg"
    t.add(_bad("c/a.dcm", error="missing-decoder", detail=detail))
    t.add(_bad("c/b.dcm", error="missing-decoder", detail=detail))
    t.add(_bad("c/c.dcm", error="other", detail="install: nothing to say"))
    assert t.installs == {"pip install pylibjpeg": 2}
    assert _one(t, "unreadable-file").hint == (
        "a decoder is missing: pip install pylibjpeg (2 file(s)); fix or remove these files; "
        "files.csv lists each one with its reason in the error column")


def test_unreadable_files_are_neither_usable_nor_kinds():
    t = Tally(None, ["c", "d"], "data")
    t.add(_bad("c/a.png"))
    t.add(_rec("d/b.png", cls="d"))
    assert t.total == 2
    assert t.usable == {"d": 1}
    assert list(t.kinds) == [("uint16", 16, 1)]
    assert _one(t, "empty-class").data == {"classes": ["c"]}


def test_a_lossy_file_with_a_header_still_counts_as_a_kind_but_not_usable():
    t = Tally(Expectation("uint8"), ["c"], "data")
    rec = _rec("c/a.jp2", dtype="uint16", error="lossy", error_code="lossy-decode")
    t.add(rec)
    assert t.kinds[("uint16", 16, 1)].examples == ["c/a.jp2"]
    assert t.mismatch["dtype"].count == 1
    assert not t.usable


# --- value rules -----------------------------------------------------------------------------

def test_values_outside_the_declared_range_on_either_side_and_the_span_they_cover():
    t = Tally(Expectation("uint16", range=Interval(100.0, 4095.0)), ["c"], "data")
    t.add(_rec("c/inside.png", lo=100, hi=4095))
    t.add(_rec("c/below.png", lo=99, hi=300))
    t.add(_rec("c/above.png", lo=500, hi=4096))
    t.add(_rec("c/far.png", lo=[7000, 20], hi=[9000, 8000]))
    f = _one(t, "out-of-declared-range")
    assert f.files == ("c/below.png", "c/above.png", "c/far.png")
    assert f.count == 3
    assert f.data == {"declared": [100.0, 4095.0], "observed": [20, 9000]}
    assert f.message == ("3 file(s) have values outside [100, 4095] declared by "
                         "source.expect.range: these files span [20, 9000]")
    assert f.hint == ("fix source.expect to match the data (see the suggested block) or fix "
                      "the files")
    assert f.location.path == "source.expect.range"
    assert f.location.file == "data"


@pytest.mark.parametrize("spans", [
    [(-5, 3), (-2, 30), (-9, 12)],  # a later low end replaces an earlier one
    [(-9, 3), (-2, 30), (-1, 11)],  # an earlier low end is kept
], ids=["grows-outwards", "keeps-earlier-low"])
def test_the_span_grows_only_outwards(spans):
    t = Tally(Expectation(range=Interval(0.0, 10.0)), ["c"], "data")
    for name, (lo, hi) in zip("abc", spans):
        t.add(_rec(f"c/{name}.png", lo=lo, hi=hi))
    assert _one(t, "out-of-declared-range").data["observed"] == [-9, 30]


def test_no_declared_range_means_no_range_rule():
    t = Tally(Expectation("uint16"), ["c"], "data")
    t.add(_rec("c/a.png", lo=-5, hi=70000))
    assert "out-of-declared-range" not in _codes(t)
    assert not t.observed


def test_a_constant_image_is_reported_with_its_value():
    t = Tally(None, ["c"], "data")
    t.add(_rec("c/zero.png", lo=0, hi=0))
    t.add(_rec("c/also.png", lo=0, hi=0))
    t.add(_rec("c/half.png", lo=0.5, hi=0.5))
    t.add(_rec("c/rgb.png", lo=[3, 3, 4], hi=[3, 3, 4]))
    t.add(_rec("c/ramp.png", lo=0, hi=1))
    f = _one(t, "constant-image")
    assert f.files == ("c/zero.png", "c/also.png", "c/half.png")
    assert f.count == 3
    assert f.message == "3 image(s) hold a single value: 0 (2), 0.5 (1)"
    assert f.hint == ("check the export of these files; a constant image carries no "
                      "information")


def test_records_without_values_fire_no_value_rule():
    t = Tally(Expectation(range=Interval(0.0, 1.0)), ["c"], "data")
    t.add(_rec("c/a.png", effective_bits=3))
    assert _codes(t) == []
    assert not t.effective


def test_non_finite_values_are_counted_in_files_and_pixels():
    t = Tally(None, ["c"], "data", " in a sample of 3 files")
    t.add(_rec("c/a.tif", dtype="float32", bits=32, nonfinite=4))
    t.add(_rec("c/b.tif", dtype="float32", bits=32, nonfinite=1))
    t.add(_rec("c/c.tif", dtype="float32", bits=32))
    t.add(_bad("c/d.tif", error="truncated"))
    f = _one(t, "non-finite-values")
    assert f.files == ("c/a.tif", "c/b.tif")
    assert f.count == 2
    assert f.data == {"files": 2, "pixels": 5}
    assert f.message == ("2 file(s) hold NaN or infinite values (5 pixel(s) in all); statistics "
                         "skip them, batches would carry them into training in a sample of 3 "
                         "files")
    assert f.hint == ("repair or remove these files; NaN or inf has no place in a range check, "
                      "a mean or a loss")


# --- effective bits --------------------------------------------------------------------------

def test_files_using_fewer_bits_than_the_container():
    t = Tally(None, ["c"], "data")
    for i, bits in enumerate([12, 12, 10, 16, 12]):
        t.add(_rec(f"c/{i}.png", lo=0, hi=1, effective_bits=bits))
    t.add(_rec("c/u8.png", dtype="uint8", bits=8, lo=0, hi=1, effective_bits=8))
    f = _one(t, "effective-bit-depth")
    assert f.count == 4
    assert f.files == ("c/0.png", "c/1.png", "c/2.png", "c/4.png")
    assert f.message == ("4 of 5 uint16 files use fewer than 16 bits (the container; at most 16 "
                         "in the dataset): 16-bit (1), 12-bit (3), 10-bit (1)")
    assert f.hint == "dark or low-contrast images; check they are exported at the intended depth"
    assert f.data == {"dtype": "uint16", "reference_bits": 16, "max_effective_bits": 16,
                      "effective_bits": {"10": 1, "12": 3, "16": 1}}


def test_a_dataset_that_never_uses_its_container_is_told_to_declare_its_depth():
    t = Tally(None, ["c"], "data")
    for i, bits in enumerate([12, 11, 12]):
        t.add(_rec(f"c/{i}.png", lo=0, hi=1, effective_bits=bits))
    f = _one(t, "effective-bit-depth")
    assert f.hint == "declare source.expect.bit_depth: 12 so range checks use the real range"
    assert f.count == 3
    assert f.data["max_effective_bits"] == 12


def test_the_declared_bit_depth_is_the_reference_for_its_dtype_only():
    t = Tally(Expectation("uint16", 12), ["c"], "data")
    t.add(_rec("c/a.png", lo=0, hi=1, effective_bits=12))
    t.add(_rec("c/b.png", lo=0, hi=1, effective_bits=11))
    t.add(_rec("c/c.png", dtype="uint8", bits=8, lo=0, hi=1, effective_bits=7))
    found = {f.data["dtype"]: f for f in t.findings() if f.code == "effective-bit-depth"}
    assert found["uint16"].data["reference_bits"] == 12
    assert "(source.expect.bit_depth;" in found["uint16"].message
    assert found["uint16"].files == ("c/b.png",)
    assert found["uint8"].data["reference_bits"] == 8
    assert "(the container;" in found["uint8"].message
    assert list(found) == ["uint16", "uint8"]


def test_a_bit_depth_without_dtype_is_the_reference_for_every_dtype():
    t = Tally(Expectation(bit_depth=12), ["c"], "data")
    t.add(_rec("c/a.png", lo=0, hi=1, effective_bits=12))
    t.add(_rec("c/b.png", dtype="uint8", bits=8, lo=0, hi=1, effective_bits=8))
    f = _one(t, "effective-bit-depth")
    assert f.data["dtype"] == "uint8"
    assert f.data["reference_bits"] == 12


def test_effective_examples_are_capped_and_skip_full_depth_files():
    t = Tally(None, ["c"], "data")
    t.add(_rec("c/full.png", lo=0, hi=1, effective_bits=16))
    for i in range(MAX_EXAMPLES + 3):
        t.add(_rec(f"c/{i:02}.png", lo=0, hi=1, effective_bits=9))
    f = _one(t, "effective-bit-depth")
    assert f.count == MAX_EXAMPLES + 3
    assert f.files == tuple(f"c/{i:02}.png" for i in range(MAX_EXAMPLES))
    assert len(t.effective_examples["uint16"]) == MAX_EXAMPLES


def test_every_file_at_full_depth_is_no_finding():
    t = Tally(Expectation("uint16", 12), ["c"], "data")
    t.add(_rec("c/a.png", lo=0, hi=1, effective_bits=12))
    t.add(_rec("c/b.png", lo=0, hi=1, effective_bits=13))
    assert "effective-bit-depth" not in _codes(t)


# --- kinds, classes, duplicates, listing -----------------------------------------------------

def test_mixed_kinds_rank_the_majority_first_and_list_the_minority():
    t = Tally(None, ["c"], "data")
    for i in range(3):
        t.add(_rec(f"c/m{i}.png", bits=12))
    t.add(_rec("c/b.png", dtype="uint8", bits=8, channels=3))
    t.add(_rec("c/a.png", dtype="uint16", bits=16))
    f = _one(t, "mixed-bit-depth")
    assert f.message == ("the dataset mixes 3 kinds of files: uint16 12-bit 1ch (3), "
                         "uint16 16-bit 1ch (1), uint8 8-bit 3ch (1)")
    assert f.count == 2
    assert f.files == ("c/a.png", "c/b.png")
    assert f.data == {"kinds": [
        {"dtype": "uint16", "stored_bits": 12, "channels": 1, "files": 3},
        {"dtype": "uint16", "stored_bits": 16, "channels": 1, "files": 1},
        {"dtype": "uint8", "stored_bits": 8, "channels": 3, "files": 1}]}
    assert f.hint == ("convert the files to one dtype and bit depth, or split the dataset: a "
                      "pipeline scales one value range for all files")


def test_one_kind_is_not_mixed_and_minority_examples_are_capped():
    t = Tally(None, ["c"], "data")
    t.add(_rec("c/a.png"))
    t.add(_rec("c/b.png"))
    assert "mixed-bit-depth" not in _codes(t)
    for i in range(8):
        t.add(_rec(f"c/x{i}.png", dtype="uint8", bits=8))
        t.add(_rec(f"c/y{i}.png", dtype="int16", bits=16))
    for i in range(20):
        t.add(_rec(f"c/z{i}.png", bits=12))
    f = _one(t, "mixed-bit-depth")
    assert f.count == 18
    # ranked 20 (12-bit), 8 int16, 8 uint8, 2 (16-bit): the minority lists int16 first
    assert f.files == tuple([f"c/y{i}.png" for i in range(8)] + ["c/x0.png", "c/x1.png"])


def test_empty_classes_and_the_imbalance_threshold():
    t = Tally(None, ["big", "small", "none", "bad"], "data")
    for i in range(10):
        t.add(_rec(f"big/{i}.png", cls="big"))
    t.add(_rec("small/0.png", cls="small"))
    t.add(_bad("bad/0.png", cls="bad"))
    f = _one(t, "empty-class")
    assert f.message == "2 class folder(s) hold no usable image: none, bad"
    assert f.files == ("none/", "bad/")
    assert f.count == 2
    assert f.hint == "add images or remove the folder; an empty class still takes an index"
    assert "class-imbalance" not in _codes(t)  # exactly 10x is not yet imbalance
    t.add(_rec("big/10.png", cls="big"))
    g = _one(t, "class-imbalance")
    assert g.message == "the largest class `big` has 11 images, 11.0x the smallest `small` (1)"
    assert g.files == ("big/", "small/")
    assert g.count == 2
    assert g.data == {"counts": {"big": 11, "small": 1}}
    assert g.hint == "use class weights or resampling"


def test_imbalance_ties_pick_the_last_name_as_largest_and_the_first_as_smallest():
    t = Tally(None, ["a", "b", "c", "d"], "data")
    for cls, n in {"a": 1, "b": 1, "c": 11, "d": 11}.items():
        for i in range(n):
            t.add(_rec(f"{cls}/{i}.png", cls=cls))
    g = _one(t, "class-imbalance")
    assert g.files == ("d/", "a/")


def test_one_class_is_never_imbalanced():
    t = Tally(None, ["a", "b"], "data")
    for i in range(30):
        t.add(_rec(f"a/{i}.png", cls="a"))
    assert _codes(t) == ["empty-class"]


def test_duplicates_count_the_copies_and_the_groups_across_classes():
    groups = [[("a/1.png", "a"), ("b/1.png", "b"), ("b/2.png", "b")],
              [("a/2.png", "a"), ("a/3.png", "a")]]
    groups += [[(f"c/{i}.png", "c"), (f"c/{i}b.png", "c")] for i in range(5)]
    t = Tally(None, ["a", "b", "c"], "data")
    f = _one(t, "duplicate-image", {"groups": groups})
    assert f.count == 8
    assert f.message == ("8 file(s) repeat the pixels of another file, in 7 group(s), 1 of them "
                         "across classes")
    assert f.files == ("a/1.png", "b/1.png", "b/2.png", "a/2.png", "a/3.png", "c/0.png",
                       "c/0b.png", "c/1.png", "c/1b.png", "c/2.png")
    assert f.data == {"groups": 7, "cross_class_groups": 1,
                      "examples": [[p for p, _ in g] for g in groups[:5]]}
    assert f.hint == ("remove the copies; across classes they contradict each other, across "
                      "splits they leak into validation")
    assert "duplicate-image" not in _codes(t, {"groups": []})
    assert "duplicate-image" not in _codes(t, None)


def test_ignored_files_are_named_per_extension_over_the_whole_dataset():
    t = Tally(None, [], "data", " in a sample of 4 files")
    t.ignored = {"tif": (2, ["a.tif", "b.tif"]), "": (1, ["IM0001"]), "bmp": (1, ["c.bmp"])}
    t.add(_rec("x.png", cls=None))
    f = _one(t, "files-ignored")
    assert f.message == ("1 DICOM file without extension, 1 .bmp file, 2 .tif files are not in "
                         "source.extensions and are left out")
    assert f.hint == ("add bmp, tif to source.extensions if they belong to the dataset")
    assert f.count == 4
    assert f.files == ("a.tif", "b.tif", "IM0001", "c.bmp")
    assert f.data == {"ignored": {"tif": 2, "": 1, "bmp": 1}}
    assert f.location.path == "source.extensions"


def test_one_ignored_file_is_singular_and_examples_are_capped():
    t = Tally(None, [], "data")
    t.ignored = {"tif": (1, ["a.tif"])}
    t.add(_rec("x.png", cls=None))
    f = _one(t, "files-ignored")
    assert f.message == "1 .tif file is not in source.extensions and is left out"
    assert f.hint == "add tif to source.extensions if it belongs to the dataset"
    t.ignored = {"": (2, ["A", "B"])}
    f = _one(t, "files-ignored")
    assert f.message == ("2 DICOM files without extension are not in source.extensions and are "
                         "left out")
    assert f.hint == "add the extension to source.extensions if they belong to the dataset"
    t.ignored = {"tif": (12, [f"{i}.tif" for i in range(10)]),
                 "bmp": (3, ["a.bmp", "b.bmp", "c.bmp"])}
    assert _one(t, "files-ignored").files == tuple(f"{i}.tif" for i in range(10))


def test_nothing_listed_is_no_images_but_an_empty_sample_is_not():
    t = Tally(Expectation("uint16"), [], "data")
    f = _one(t, "no-images")
    assert f.message == "no image file was found: there is nothing to check, audit or train on"
    assert f.hint == ("point source.directory at the dataset (one sub-folder per class) and "
                      "check source.extensions")
    assert f.location.path == "source.directory"
    assert f.count == 0 and f.files == ()
    assert _codes(Tally(None, [], "data", " in a sample of 0 files")) == []


def test_findings_come_in_a_stable_order_and_carry_the_scope():
    t = Tally(Expectation("uint16", range=Interval(0.0, 10.0)), ["a", "b"], "data",
              " in a sample")
    t.ignored = {"bmp": (1, ["x.bmp"])}
    t.add(_bad("a/bad.png"))
    t.add(_rec("a/u8.png", dtype="uint8", bits=8))
    t.add(_rec("a/big.png", lo=0, hi=99, effective_bits=7))
    t.add(_rec("a/nan.png", nonfinite=1, lo=5, hi=5))
    dup = {"groups": [[("a/big.png", "a"), ("a/u8.png", "a")]]}
    found = t.findings(dup)
    assert [f.code for f in found] == [
        "files-ignored", "unreadable-file", "bit-depth-mismatch", "mixed-bit-depth",
        "effective-bit-depth", "out-of-declared-range", "empty-class", "duplicate-image",
        "non-finite-values", "constant-image"]
    scoped = {f.code: f.message.endswith(" in a sample") for f in found}
    assert scoped == {code: code != "files-ignored" for code in scoped}
    assert all(f.location.file == "data" for f in found)


# --- cases that separate near-identical rules ----------------------------------------------

def test_the_install_command_is_what_follows_the_last_with():
    t = Tally(None, ["c"], "data")
    t.add(_bad("c/a.dcm", error="missing-decoder",
               detail="decoding with: gdcm failed; install a decoder with: pip install pylibjpeg"))
    t.add(_bad("c/b.jp2", error="missing-decoder",
               detail="install a decoder with: pip install glymur"))
    assert t.installs == {"pip install pylibjpeg": 1, "pip install glymur": 1}
    f = _one(t, "unreadable-file")
    assert f.hint == ("a decoder is missing: pip install pylibjpeg (1 file(s)); pip install "
                      "glymur (1 file(s)); fix or remove these files; files.csv lists each one "
                      "with its reason in the error column")
    assert f.message == "2 of 2 files could not be read: missing-decoder (2)"


def test_records_without_a_non_finite_count_have_none():
    rec = SimpleNamespace(path="c/a.png", cls="c", ok=True, error="", error_code=None,
                          detail="", dtype="uint8", signature=("uint8", 8, 1), channels=1,
                          stored_bits=8, stored_bits_declared=False, min=[0], max=[9],
                          effective_bits=None)
    t = Tally(None, ["c"], "data")
    t.add(rec)
    assert t.nonfinite.count == 0 and t.nonfinite_values == 0
    assert _codes(t) == []


def test_the_imbalance_ratio_is_a_quotient():
    t = Tally(None, ["big", "small"], "data")
    for i in range(21):
        t.add(_rec(f"big/{i}.png", cls="big"))
    for i in range(2):
        t.add(_rec(f"small/{i}.png", cls="small"))
    assert _one(t, "class-imbalance").message == (
        "the largest class `big` has 21 images, 10.5x the smallest `small` (2)")


def test_mismatch_data_lists_found_values_most_frequent_first():
    t = Tally(Expectation("uint16"), ["c"], "data")
    t.add(_rec("c/a.png", dtype="uint8", bits=8))
    t.add(_rec("c/b.png", dtype="uint8", bits=8))
    t.add(_rec("c/c.png", dtype="int16", bits=16))
    f = _one(t, "bit-depth-mismatch")
    assert f.data["found"] == ["uint8", "int16"]
    assert f.message.endswith("found uint8 (2), int16 (1)")
