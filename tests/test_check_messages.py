"""Every rule of the static check, message and hint included: the text is what users act on."""

from __future__ import annotations

import pytest

from preproc import check, load_config

# name: (source block, stages, [(code, message, hint, data, stage, stage_name, path, line)])
CASES = {
    'source-unknown': (
        '',
        '  - clip: {min: 0, max: 1}\n',
        [('source-unknown',
          'nothing is declared about the source and no files were sampled; range checks are '
          'skipped',
          'declare source.expect (dtype, bit_depth, range), or point source.directory at the '
          'data',
          {},
          None,
          None,
          'source',
          None)]),
    'dtype-float': (
        '  expect: {dtype: uint8}\n',
        '  - gamma: {gamma: 2}\n',
        [('dtype-mismatch',
          'stage 0 `gamma` (line 5) needs float input but receives uint8',
          'add `to_dtype: {dtype: float32}` or a rescale before it',
          {'expected_dtype': 'float', 'received_dtype': 'uint8'},
          0,
          'gamma',
          'stages[0].gamma',
          5),
         ('range-overflow',
          'stage 0 `gamma` (line 5) expects [0, 1] but receives [0, 255] from the source',
          'convert the data into the expected range first (rescale_intensity or clip), or '
          'declare `expects:` on the stage if it really accepts this range',
          {'expected': [0.0, 1.0], 'received': [0.0, 255.0]},
          0,
          'gamma',
          'stages[0].gamma',
          5)]),
    'dtype-integer': (
        '  expect: {dtype: float32, range: [0, 1]}\n',
        '  - clip: {min: 0, max: 1, expects: {kind: integer}}\n',
        [('dtype-mismatch',
          'stage 0 `clip` (line 5) needs integer input but receives float32',
          'add `to_dtype: {dtype: uint16}` before it',
          {'expected_dtype': 'integer', 'received_dtype': 'float32'},
          0,
          'clip',
          'stages[0].clip',
          5)]),
    'dtype-named': (
        '  expect: {dtype: uint8}\n',
        '  - clip: {min: 0, max: 1, expects: {dtype: uint16}}\n',
        [('dtype-mismatch',
          'stage 0 `clip` (line 5) needs uint16 input but receives uint8',
          'add `to_dtype: {dtype: uint16}` before it',
          {'expected_dtype': 'uint16', 'received_dtype': 'uint8'},
          0,
          'clip',
          'stages[0].clip',
          5)]),
    'unbounded': (
        '  expect: {dtype: float32}\n',
        '  - gamma: {gamma: 2}\n',
        [('unbounded-input',
          'stage 0 `gamma` (line 5) expects [0, 1] but receives the unbounded [-inf, inf] from '
          'the source',
          'add a `clip` stage before it, or declare source.expect.range',
          {'expected': [0.0, 1.0], 'received': [None, None]},
          0,
          'gamma',
          'stages[0].gamma',
          5)]),
    'overflow-rescale-bits': (
        '  expect: {dtype: uint16, bit_depth: 12}\n',
        '  - rescale: {factor: 1/255}\n',
        [('range-overflow',
          'stage 0 `rescale` (line 5) expects [0, 255] but receives [0, 4095] from the source',
          'the data holds [0, 4095], not [0, 255]: use `rescale: {factor: 1/4095}` or '
          '`rescale_intensity: {in_range: bit_depth}`',
          {'expected': [0.0, 255.0], 'received': [0.0, 4095.0]},
          0,
          'rescale',
          'stages[0].rescale',
          5)]),
    'overflow-rescale-signed': (
        '  expect: {dtype: int16, bit_depth: 12}\n',
        '  - rescale: {factor: 1/255}\n',
        [('range-overflow',
          'stage 0 `rescale` (line 5) expects [0, 255] but receives [-2048, 2047] from the '
          'source',
          'the data holds [-2048, 2047], not [0, 255]: use `rescale_intensity: {in_range: '
          'source}` (signed data needs an offset)',
          {'expected': [0.0, 255.0], 'received': [-2048.0, 2047.0]},
          0,
          'rescale',
          'stages[0].rescale',
          5)]),
    'overflow-after-scale': (
        '  expect: {dtype: uint8}\n',
        '  - rescale: {factor: 1/255}\n  - normalize: {mean: 0.5, std: 0.25}\n'
        '  - gamma: {gamma: 2}\n',
        [('range-overflow',
          'stage 2 `gamma` (line 7) expects [0, 1] but receives [-2, 2] from stage 1 '
          '`normalize` (line 6)',
          "the range comes from stage 1 `normalize` (line 6); adjust it or this stage's "
          'parameters',
          {'expected': [0.0, 1.0], 'received': [-2.0, 2.0]},
          2,
          'gamma',
          'stages[2].gamma',
          7)]),
    'overflow-generic': (
        '  expect: {dtype: float32, range: [0, 2]}\n',
        '  - gamma: {gamma: 2}\n',
        [('range-overflow',
          'stage 0 `gamma` (line 5) expects [0, 1] but receives [0, 2] from the source',
          'convert the data into the expected range first (rescale_intensity or clip), or '
          'declare `expects:` on the stage if it really accepts this range',
          {'expected': [0.0, 1.0], 'received': [0.0, 2.0]},
          0,
          'gamma',
          'stages[0].gamma',
          5)]),
    'degenerate': (
        '  expect: {dtype: uint16, bit_depth: 12}\n',
        '  - rescale_intensity: {in_range: bit_depth}\n  - window: {center: 400, width: 200}\n',
        [('degenerate-output',
          'stage 1 `window` (line 6) keeps only [300, 500] but receives [0, 1]: every value '
          'maps to one constant',
          'its bounds are in other units than the data; check the window or clip values',
          {'expected': [300.0, 500.0], 'received': [0.0, 1.0]},
          1,
          'window',
          'stages[1].window',
          6)]),
    'compounded': (
        '  expect: {dtype: uint8}\n',
        '  - clahe: {}\n  - rescale: {factor: 1/255}\n',
        [('compounded-scaling',
          'stage 1 `rescale` (line 6) expects [0, 255] but receives [0, 1] from stage 0 '
          '`clahe` (line 5), which already changed the scale',
          'remove stage 1 `rescale` (line 6), or move it before stage 0 `clahe` (line 5)',
          {'blame': {'line': 5, 'name': 'clahe', 'stage': 0},
           'expected': [0.0, 255.0],
           'received': [0.0, 1.0]},
          1,
          'rescale',
          'stages[1].rescale',
          6)]),
    'underuse-bits': (
        '  expect: {dtype: uint16, bit_depth: 12}\n',
        '  - rescale: {factor: 1/65535}\n',
        [('range-underuse',
          'stage 0 `rescale` (line 5) expects [0, 65535] but the source only reaches [0, '
          '4095]: the data uses 6.2% of the range',
          'the data is 12-bit: use `rescale: {factor: 1/4095}` or `rescale_intensity: '
          '{in_range: bit_depth}`',
          {'expected': [0.0, 65535.0], 'received': [0.0, 4095.0]},
          0,
          'rescale',
          'stages[0].rescale',
          5)]),
    'underuse-signed': (
        '  expect: {dtype: int16, range: [-100, 1000]}\n',
        '  - rescale_intensity: {in_range: [-32768, 32767], clip: false}\n',
        [('range-underuse',
          'stage 0 `rescale_intensity` (line 5) expects [-32768, 32767] but the source only '
          'reaches [-100, 1000]: the data uses 1.7% of the range',
          'the data is 16-bit: use `rescale_intensity: {in_range: source}` (signed data needs '
          'an offset)',
          {'expected': [-32768.0, 32767.0], 'received': [-100.0, 1000.0]},
          0,
          'rescale_intensity',
          'stages[0].rescale_intensity',
          5)]),
    'underuse-float': (
        '  expect: {dtype: float32, range: [0, 0.1]}\n',
        '  - rescale_intensity: {in_range: [0, 1], clip: false}\n',
        [('range-underuse',
          'stage 0 `rescale_intensity` (line 5) expects [0, 1] but the source only reaches [0, '
          '0.1]: the data uses 10.0% of the range',
          'the data is narrower than assumed; rescale by its true range',
          {'expected': [0.0, 1.0], 'received': [0.0, 0.1]},
          0,
          'rescale_intensity',
          'stages[0].rescale_intensity',
          5)]),
    'dtype-named-float32': (
        '  expect: {dtype: uint8}\n',
        '  - clip: {min: 0, max: 1, expects: {dtype: float32}}\n',
        [('dtype-mismatch',
          'stage 0 `clip` (line 5) needs float32 input but receives uint8',
          'add `to_dtype: {dtype: float32}` or a rescale before it',
          {'expected_dtype': 'float32', 'received_dtype': 'uint8'},
          0,
          'clip',
          'stages[0].clip',
          5)]),
    'dtype-named-uint8': (
        '  expect: {dtype: uint16}\n',
        '  - clip: {min: 0, max: 1, expects: {dtype: uint8}}\n',
        [('dtype-mismatch',
          'stage 0 `clip` (line 5) needs uint8 input but receives uint16',
          'add `to_dtype: {dtype: uint8}` before it',
          {'expected_dtype': 'uint8', 'received_dtype': 'uint16'},
          0,
          'clip',
          'stages[0].clip',
          5)]),
    'dtype-named-match': (
        '  expect: {dtype: uint8}\n',
        '  - clip: {min: 0, max: 1, expects: {dtype: uint8}}\n',
        []),
    'repair-clamps-overflow': (
        '  expect: {dtype: uint16, range: [200, 4095]}\n',
        '  - rescale: {factor: 1/255}\n  - rescale_intensity: {in_range: [0, 1], clip: false}\n',
        [('range-overflow',
          'stage 0 `rescale` (line 5) expects [0, 255] but receives [200, 4095] from the '
          'source',
          'the data holds [200, 4095], not [0, 255]: use `rescale: {factor: 1/4095}` or '
          '`rescale_intensity: {in_range: bit_depth}`',
          {'expected': [0.0, 255.0], 'received': [200.0, 4095.0]},
          0,
          'rescale',
          'stages[0].rescale',
          5),
         ('compounded-scaling',
          'stage 1 `rescale_intensity` (line 6) expects [0, 1] but receives [0.784314, 1] from '
          'stage 0 `rescale` (line 5), which already changed the scale',
          'remove stage 1 `rescale_intensity` (line 6), or move it before stage 0 `rescale` '
          '(line 5)',
          {'blame': {'line': 5, 'name': 'rescale', 'stage': 0},
           'expected': [0.0, 1.0],
           'received': [0.7843137979507446, 1.0]},
          1,
          'rescale_intensity',
          'stages[1].rescale_intensity',
          6)]),
    'gamma-underuse': (
        '  expect: {dtype: float32, range: [0, 0.1]}\n',
        '  - gamma: {gamma: 2}\n',
        [('range-underuse',
          'stage 0 `gamma` (line 5) expects [0, 1] but the source only reaches [0, 0.1]: the '
          'data uses 10.0% of the range',
          'the data is narrower than assumed; rescale by its true range',
          {'expected': [0.0, 1.0], 'received': [0.0, 0.1]},
          0,
          'gamma',
          'stages[0].gamma',
          5)]),
    'clahe-not-underused': (
        '  expect: {dtype: uint8, range: [0, 20]}\n',
        '  - rescale: {factor: 1/255}\n  - clahe: {}\n',
        [('range-underuse',
          'stage 0 `rescale` (line 5) expects [0, 255] but the source only reaches [0, 20]: '
          'the data uses 7.8% of the range',
          'the data is 8-bit: use `rescale: {factor: 1/31}` or `rescale_intensity: {in_range: '
          'bit_depth}`',
          {'expected': [0.0, 255.0], 'received': [0.0, 20.0]},
          0,
          'rescale',
          'stages[0].rescale',
          5)]),
    'underuse-signed-top-zero': (
        '  expect: {dtype: int16, range: [-100, 0]}\n',
        '  - rescale_intensity: {in_range: [-32768, 32767], clip: false}\n',
        [('range-underuse',
          'stage 0 `rescale_intensity` (line 5) expects [-32768, 32767] but the source only '
          'reaches [-100, 0]: the data uses 0.2% of the range',
          'the data is 16-bit; rescale by its true range',
          {'expected': [-32768.0, 32767.0], 'received': [-100.0, 0.0]},
          0,
          'rescale_intensity',
          'stages[0].rescale_intensity',
          5)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_finding_text_data_and_location(tmp_path, name):
    source, stages, expected = CASES[name]
    path = tmp_path / "c.yaml"
    head = "version: 1\n" + ("source:\n" + source if source else "")
    path.write_text(head + "stages:\n" + stages)
    report = check(load_config(path), sample=0)
    got = [(f.code, f.message, f.hint, f.data, f.stage, f.stage_name, f.location.path,
            f.location.line) for f in report.findings]
    assert got == expected
    assert all(f.location.file == str(path) for f in report.findings)
