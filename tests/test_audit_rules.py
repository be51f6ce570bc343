"""Audit rules on small datasets whose every value is known: which file breaks which promise."""

from __future__ import annotations

import numpy as np
import pytest
from builders import config_for
from builders import write_png

from preproc.auditing import audit


def _ramp(lo: int, hi: int) -> np.ndarray:
    """A 12-bit image holding exactly the values ``lo`` and ``hi`` at its extremes."""
    arr = np.full((8, 8), (lo + hi) // 2, np.uint16)
    arr.flat[0], arr.flat[-1] = lo, hi
    return arr


@pytest.fixture
def ranged(tmp_path):
    root = tmp_path / "data"
    (root / "c").mkdir(parents=True)
    for name, (lo, hi) in {"inside.png": (100, 4000), "edges.png": (100, 4095),
                           "dark.png": (50, 3000), "darker.png": (10, 500),
                           "bright.png": (200, 4095)}.items():
        write_png(root / "c" / name, _ramp(lo, hi), sbit=12)
    return root


def _out_of_range(report):
    found = [f for f in report.findings if f.code == "out-of-declared-range"]
    return found[0] if found else None


def test_values_below_the_declared_range_are_out_of_range(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [100, 4095]")
    f = _out_of_range(audit(cfg, workers=1))
    assert f is not None
    assert sorted(f.files) == ["c/dark.png", "c/darker.png"]
    assert f.count == 2
    assert f.data == {"declared": [100, 4095], "observed": [10, 3000]}
    assert f.location.path == "source.expect.range"
    assert "2 file(s)" in f.message and "[10, 3000]" in f.message


def test_values_above_the_declared_range_are_out_of_range(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [0, 4000]")
    f = _out_of_range(audit(cfg, workers=1))
    assert sorted(f.files) == ["c/bright.png", "c/edges.png"]
    assert f.data["observed"] == [100, 4095]


def test_values_on_the_declared_bounds_are_inside(ranged):
    cfg = config_for(ranged, expect="dtype: uint16\n    range: [10, 4095]")
    assert _out_of_range(audit(cfg, workers=1)) is None


# (code, severity, message, hint, files, count, data, location path) of every finding of the
# messy dataset: what a user reads and acts on, pinned whole.
MESSY_FINDINGS = (
    [('unreadable-file',
      'error',
      '2 of 12 files could not be read: empty (1), truncated (1)',
      'fix or remove these files; files.csv lists each one with its reason in the error column',
      ('pneumonia/truncated.png', 'pneumonia/zero.png'),
      2,
      {'reasons': {'empty': 1, 'truncated': 1}},
      ''),
     ('bit-depth-mismatch',
      'error',
      '1 of 12 files have another container dtype than source.expect.dtype = uint16: found uint8 '
      '(1)',
      'convert these files, or declare the dtype they have in source.expect.dtype',
      ('normal/rgb.png',),
      1,
      {'expected': 'uint16', 'field': 'dtype', 'found': ['uint8']},
      'source.expect.dtype'),
     ('bit-depth-mismatch',
      'error',
      '1 of 12 files have another channel count than source.expect.channels = 1: found 3 (1)',
      'convert these files, or fix source.expect.channels',
      ('normal/rgb.png',),
      1,
      {'expected': 1, 'field': 'channels', 'found': [3]},
      'source.expect.channels'),
     ('mixed-bit-depth',
      'error',
      'the dataset mixes 3 kinds of files: uint16 12-bit 1ch (8), uint16 16-bit 1ch (1), uint8 '
      '8-bit 3ch (1)',
      'convert the files to one dtype and bit depth, or split the dataset: a pipeline scales one '
      'value range for all files',
      ('normal/wide.png', 'normal/rgb.png'),
      2,
      {'kinds': [{'channels': 1, 'dtype': 'uint16', 'files': 8, 'stored_bits': 12},
                 {'channels': 1, 'dtype': 'uint16', 'files': 1, 'stored_bits': 16},
                 {'channels': 3, 'dtype': 'uint8', 'files': 1, 'stored_bits': 8}]},
      ''),
     ('effective-bit-depth',
      'info',
      '1 of 9 uint16 files use fewer than 12 bits (source.expect.bit_depth; at most 16 in the '
      'dataset): 16-bit (1), 12-bit (7), 10-bit (1)',
      'dark or low-contrast images; check they are exported at the intended depth',
      ('normal/flat.png',),
      1,
      {'dtype': 'uint16',
       'effective_bits': {'10': 1, '12': 7, '16': 1},
       'max_effective_bits': 16,
       'reference_bits': 12},
      ''),
     ('out-of-declared-range',
      'error',
      '1 file(s) have values outside [0, 4095] declared by source.expect.bit_depth: these files '
      'span [0, 60000]',
      'fix source.expect to match the data (see the suggested block) or fix the files',
      ('normal/wide.png',),
      1,
      {'declared': [0.0, 4095.0], 'observed': [0.0, 60000.0]},
      'source.expect.bit_depth'),
     ('empty-class',
      'warning',
      '1 class folder(s) hold no usable image: empty',
      'add images or remove the folder; an empty class still takes an index',
      ('empty/',),
      1,
      {'classes': ['empty']},
      ''),
     ('duplicate-image',
      'warning',
      '1 file(s) repeat the pixels of another file, in 1 group(s), 1 of them across classes',
      'remove the copies; across classes they contradict each other, across splits they leak into '
      'validation',
      ('normal/copy.png', 'pneumonia/000.png'),
      1,
      {'cross_class_groups': 1,
       'examples': [['normal/copy.png', 'pneumonia/000.png']],
       'groups': 1},
      ''),
     ('constant-image',
      'warning',
      '1 image(s) hold a single value: 1000 (1)',
      'check the export of these files; a constant image carries no information',
      ('normal/flat.png',),
      1,
      {},
      ''),
     # the cross-class copy is also one picture under two labels
     ('label-conflict',
      'error',
      '1 picture(s) appear under more than one class folder (2 files)',
      'decide the right class for each picture and remove the other copies',
      ('normal/copy.png', 'pneumonia/000.png'),
      2,
      {'clusters': 1,
       'distance': None,
       'examples': [[{'path': 'normal/copy.png', 'class': 'normal', 'subset': None},
                     {'path': 'pneumonia/000.png', 'class': 'pneumonia', 'subset': None}]]},
      '')]
)


def test_every_finding_of_the_messy_dataset_in_full(tmp_path):
    from builders import messy_dataset

    root = messy_dataset(tmp_path / "data")
    report = audit(config_for(root), workers=1)
    got = [(f.code, f.severity.name.lower(), f.message, f.hint, f.files, f.count, f.data,
            f.location.path) for f in report.findings]
    assert got == list(MESSY_FINDINGS)
