"""Hostile configs: random and mutated YAML only ever yields a Config or a ConfigError.

CI runs a bounded, derandomized set of examples (the ``ci`` profile of conftest.py); an
exploration run draws fresh ones: ``HYPOTHESIS_PROFILE=long python -m pytest
tests/test_fuzz_config.py`` (``PREPROC_FUZZ_EXAMPLES=N`` sets the count). Every failure such a
run finds is kept below as an explicit case.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preproc import ConfigError, check, load_config

from conftest import CONFIGS

EXAMPLES = int(os.environ.get("PREPROC_FUZZ_EXAMPLES",
                              "20000" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
SEEDS = [p.read_text(encoding="utf-8") for p in sorted(CONFIGS.glob("*.yaml"))
         if "plugins" not in p.name]

YAML_BITS = st.sampled_from([
    "version: 1\n", "stages:\n", "  - ", "rescale", "clahe", ": {", "}", "factor: ", "1/255",
    "1/0", "[", "]", "&a ", "*a", "!!python/object:os.system ", "\t", "- ", "source:\n",
    "  expect: {dtype: uint16, bit_depth: 12}\n", "null", "~", "'", '"', "\\u0000", ":", "#",
    "batches: {batch_size: -1}\n", "<<: *a\n", "---\n", "...\n", "%YAML 1.1\n", "?", "|", ">",
    "{", "1e999", "-.inf", ".nan", "0x1F", "yes", "checks:\n  fail_on: ", "window: {center: ",
])


def outcome(path) -> None:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        return
    check(cfg, sample=0)  # a config that loads must also check without crashing


@FUZZ
@given(st.lists(YAML_BITS, max_size=30).map("".join))
def test_random_yaml_fragments(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fz") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    outcome(path)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_example_configs(tmp_path_factory, seed, data):
    raw = bytearray(seed.encode())
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "delete" and raw:
            del raw[pos:pos + data.draw(st.integers(1, 8))]
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            raw = raw[:pos]
    path = tmp_path_factory.mktemp("fz") / "c.yaml"
    path.write_bytes(bytes(raw))
    outcome(path)


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
))
def test_random_structures_under_known_keys(tmp_path_factory, value):
    import yaml

    doc = {"version": 1, "source": value} if isinstance(value, dict) else {"version": 1, "stages": value}
    path = tmp_path_factory.mktemp("fz") / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    outcome(path)


@pytest.mark.parametrize("stage", ["rescale", "clahe", "normalize", "window", "to_dtype", "clip"])
@FUZZ
@given(params=st.dictionaries(
    st.sampled_from(["factor", "offset", "mean", "std", "center", "width", "min", "max", "dtype",
                     "scale", "mode", "clip_limit", "nbins", "in_range", "out_range", "expects"]),
    st.none() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=6)
    | st.lists(st.floats(-1e3, 1e3), max_size=4),
    max_size=4,
))
def test_random_stage_params(tmp_path_factory, stage, params):
    import yaml

    doc = {"version": 1, "source": {"expect": {"dtype": "uint16", "bit_depth": 12}},
           "stages": [{stage: params}]}
    path = tmp_path_factory.mktemp("fz") / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    outcome(path)


# Failures found by exploration runs: extreme but valid parameters whose outputs overflow or
# underflow float32. Each must end in a Config or ConfigError and a check that does not raise.
HOSTILE_PARAMS = [
    pytest.param("normalize", {"mean": 3.4028235677973366e+38, "std": 3.4028235677973366e+38},
                 id="normalize-float32-max"),
    pytest.param("rescale", {"factor": 1e308}, id="rescale-factor-1e308"),
    pytest.param("rescale", {"factor": 1, "offset": 1e308}, id="rescale-offset-1e308"),
    pytest.param("rescale", {"factor": 1e-300}, id="rescale-factor-1e-300"),
    pytest.param("normalize", {"mean": 0, "std": 5e-324}, id="normalize-std-5e-324"),
]


@pytest.mark.parametrize(("stage", "params"), HOSTILE_PARAMS)
def test_found_hostile_stage_params(tmp_path, stage, params):
    import yaml

    doc = {"version": 1, "source": {"expect": {"dtype": "uint16", "bit_depth": 12}},
           "stages": [{stage: params}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    outcome(path)
