"""Every number and path of a config is validated where it is read: config-invalid naming the
key, never an internal error, a hang or a silent coercion."""

from __future__ import annotations

import os
import typing

import numpy as np
import pytest
import yaml
from hostile_kit import preproc_cli, run_python
from hypothesis import example, given
from hypothesis import strategies as st

from preproc import ConfigError, check, load_config
from preproc.config.model import Batches, Expect, Runtime, Source


def write(tmp_path, doc, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def refused(path, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value), str(err.value)
    return err.value


@pytest.mark.parametrize("seed,ok", [(0, True), (2**32 - 1, True), (2**32, False), (-1, False),
                                     (2**63, False)])
def test_seed_is_a_32_bit_unsigned_integer(tmp_path, seed, ok):
    path = write(tmp_path, {"version": 1, "batches": {"seed": seed}})
    if ok:
        assert load_config(path).batches.seed == seed
        np.random.default_rng(seed)  # what the batches do with it
    else:
        refused(path, "batches.seed")


def _holds_int(ann) -> bool:
    if ann is int:
        return True
    if typing.get_origin(ann) is typing.Annotated:
        return _holds_int(typing.get_args(ann)[0])
    return any(_holds_int(a) for a in typing.get_args(ann))


def _integer_fields():
    out = []
    for prefix, model in (("batches", Batches), ("source", Source), ("source.expect", Expect),
                          ("checks.runtime", Runtime)):
        for name, field in model.model_fields.items():
            if _holds_int(field.annotation):  # every integer key
                out.append(f"{prefix}.{name}")
    return out


INTEGER_KEYS = _integer_fields()


def _nest(key: str, value):
    doc: dict = {"version": 1}
    node = doc
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    if key.startswith("source.expect"):
        node["dtype"] = "uint16"
    return doc


def test_the_integer_keys_are_found():
    assert {"batches.batch_size", "batches.seed", "batches.prefetch", "batches.workers",
            "source.max_image_bytes", "checks.runtime.sample_batches"} <= set(INTEGER_KEYS)


@given(key=st.sampled_from(INTEGER_KEYS), value=st.sampled_from([True, False, 1.0, 2.5, "3"]))
def test_no_integer_key_takes_a_boolean_a_float_or_text(tmp_path_factory, key, value):
    if key == "batches.target_size":
        value = [value, 8]
    path = write(tmp_path_factory.mktemp("c"), _nest(key, value))
    refused(path, key)


@pytest.mark.parametrize("stage", [{"clahe": {"nbins": True}}, {"clahe": {"kernel_size": True}},
                                   {"rescale": {"factor": True}},
                                   {"normalize": {"mean": True, "std": 1}}])
def test_stage_numbers_refuse_booleans(tmp_path, stage):
    path = write(tmp_path, {"version": 1, "stages": [stage]})
    refused(path, "stages[0]")


@pytest.mark.parametrize("key,value", [("batch_size", 10**9), ("batch_size", 10**18),
                                       ("prefetch", 10**6), ("prefetch", 10**9),
                                       ("workers", 10**9), ("target_size", [10**5, 10**5])])
def test_batch_numbers_are_bounded(tmp_path, key, value):
    path = write(tmp_path, {"version": 1, "batches": {key: value}})
    refused(path, "batches")


def test_a_batch_that_cannot_fit_in_memory_is_a_config_error(tmp_path):
    path = write(tmp_path, {"version": 1, "batches": {"target_size": [60000, 60000],
                                                      "batch_size": 64}})
    err = refused(path, "batches")
    assert "target_size" in str(err) and "memory" in str(err)


NUL_PLACES = ["plugins", "source.directory", "name", "batches.classes", "stages.normalize",
              "checks.ignore"]


@given(place=st.sampled_from(NUL_PLACES), text=st.text(max_size=5), tail=st.text(max_size=5))
@example(place="plugins", text="a", tail="b.py")
def test_a_nul_anywhere_in_a_config_is_config_invalid(tmp_path_factory, place, text, tail):
    bad = text + "\x00" + tail
    doc = {"version": 1}
    if place == "plugins":
        doc["plugins"] = [bad]
    elif place == "source.directory":
        doc["source"] = {"directory": bad}
    elif place == "name":
        doc["name"] = bad
    elif place == "batches.classes":
        doc["batches"] = {"classes": ["a", bad]}
    elif place == "stages.normalize":
        doc["stages"] = [{"normalize": {"mode": "featurewise", "stats": bad}}]
    else:
        doc["checks"] = {"ignore": [bad]}
    path = write(tmp_path_factory.mktemp("n"), doc)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "NUL" in str(err.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_config_or_stats_file_is_refused_without_reading_it(tmp_path, device):
    res = preproc_cli("check", device, timeout=60)
    assert res.returncode == 2 and "not a regular file" in res.stderr + res.stdout
    cfg = write(tmp_path, {"version": 1, "source": {"expect": {"dtype": "uint8"}},
                           "stages": [{"normalize": {"mode": "featurewise", "stats": device}}]})
    res = preproc_cli("check", str(cfg), timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not a regular file" in res.stderr + res.stdout


def test_a_fifo_as_config_does_not_block(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    proc = run_python(f"""
        from preproc import ConfigError, load_config
        try:
            load_config({str(fifo)!r})
        except ConfigError as exc:
            print("refused", exc)
    """, timeout=60)
    assert "refused" in proc.stdout and "not a regular file" in proc.stdout


class CountingStr(str):
    """A class name that counts how often it is compared."""

    calls = 0

    def __eq__(self, other):
        CountingStr.calls += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_the_duplicate_class_check_is_linear():
    names = [CountingStr(f"c{i}") for i in range(3000)]
    CountingStr.calls = 0
    Batches._unique_classes(names)
    assert CountingStr.calls < 3 * len(names)  # a quadratic scan makes ~4.5 million


def test_many_classes_load(tmp_path):
    """Tens of thousands of classes load (the YAML parser itself is linear; 90,000 take about
    as long as PyYAML needs to read them)."""
    n = int(os.environ.get("PREPROC_HOSTILE_CLASSES", "20000"))
    path = write(tmp_path, {"version": 1, "batches": {"classes": [f"c{i}" for i in range(n)]}})
    assert len(load_config(path).batches.classes) == n


# --------------------------------------------------------------- interval arithmetic overflow
OVERFLOWS = [
    ({"rescale": {"factor": 1e308}}, "non-finite-output"),
    ({"rescale": {"factor": 1.0, "offset": 1e308}}, "non-finite-output"),
    ({"rescale": {"factor": 1e-300}}, "degenerate-output"),
    ({"normalize": {"mean": 0, "std": 5e-324}}, "non-finite-output"),
    ({"normalize": {"mean": 3.4028235677973366e+38, "std": 3.4028235677973366e+38}},
     "non-finite-output"),
]


@pytest.mark.parametrize("stage,code", OVERFLOWS)
def test_overflowing_parameters_are_findings(tmp_path, stage, code):
    path = write(tmp_path, {"version": 1, "source": {"expect": {"dtype": "uint8"}},
                            "stages": [stage]})
    report = check(load_config(path), sample=0)
    assert code in {f.code for f in report.findings}
    assert report.failed


EXTREME = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 1e-300, 5e-324, -5e-324, 3.4028235677973366e+38, 1e38,
                     -3.4e38, 0.0, 1e-45, 1e-39]),
)


@given(factor=EXTREME, offset=EXTREME, mean=EXTREME, std=EXTREME,
       dtype=st.sampled_from(["uint8", "uint16", "int16", "float32"]))
@example(factor=1e308, offset=0.0, mean=0.0, std=1.0, dtype="uint8")
@example(factor=1.0, offset=1e308, mean=0.0, std=1.0, dtype="uint8")
@example(factor=1e-300, offset=0.0, mean=0.0, std=1.0, dtype="uint8")
@example(factor=1.0, offset=0.0, mean=0.0, std=5e-324, dtype="uint8")
def test_stage_arithmetic_never_crashes_the_check(tmp_path_factory, factor, offset, mean, std,
                                                  dtype):
    """The class: whatever finite parameters, the check answers with findings; and when the
    real float32 arithmetic on the source's endpoints is not finite, it says so."""
    expect = {"dtype": dtype}
    if dtype == "float32":
        expect["range"] = [-1.0, 1.0]
    doc = {"version": 1, "source": {"expect": expect},
           "stages": [{"rescale": {"factor": factor, "offset": offset}},
                      {"normalize": {"mean": mean, "std": std}}]}
    path = write(tmp_path_factory.mktemp("o"), doc)
    try:
        cfg = load_config(path)
    except ConfigError:
        return  # e.g. a std <= 0 is refused by the stage's own validation
    report = check(cfg, sample=0)
    codes = {f.code for f in report.findings}
    from preproc.stages.pipeline import Pipeline

    stage = Pipeline.from_config(cfg).stages[0]
    info = np.iinfo(dtype) if dtype != "float32" else None
    lo, hi = (-1.0, 1.0) if info is None else (info.min, info.max)
    ends = np.array([lo, hi], dtype=dtype).reshape(1, 2, 1)
    with np.errstate(all="ignore"):
        out = stage.apply_alone(ends)
    if not np.isfinite(out).all():
        assert "non-finite-output" in codes, (out, codes)
