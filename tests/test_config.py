"""The config language: safe loading, strict validation, positions in every error."""

from __future__ import annotations

import time

import pytest

from preproc import ConfigError, load_config
from preproc.commands import main


def error_of(write_config, text: str) -> ConfigError:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_valid_config_resolves_fractions_paths_and_positions(write_config, tmp_path):
    path = write_config("""\
        version: 1
        source:
          directory: data
          expect: {dtype: uint16, bit_depth: 12}
        stages:
          - rescale: {factor: 1./65535}
          - normalize: {mean: 1/2, std: 0.25}
        """)
    cfg = load_config(path)
    assert cfg.source.directory == (tmp_path / "data").resolve()
    assert cfg.stages[0].params.factor == pytest.approx(1 / 65535)
    assert cfg.stages[1].params.mean == 0.5
    assert [(e.name, cfg.where(("stages", e.index))[0]) for e in cfg.stages] == [
        ("rescale", 6), ("normalize", 7)]
    assert cfg.batches.target_size == (256, 256) and cfg.batches.color_mode == "rgb"


@pytest.mark.parametrize(
    "text, path, line, fragment",
    [
        ("version: 1\nstages:\n  - rescal: {factor: 1}\n", "stages[0]", 3, "did you mean `rescale`"),
        ("version: 1\nstages:\n  - rescale: {factr: 1}\n", "stages[0].rescale.factr", 3, "`factor`"),
        ("version: 1\nbatches:\n  batch_sise: 4\n", "batches.batch_sise", 3, "`batch_size`"),
        ("version: 1\nbatches:\n  batch_size: many\n", "batches.batch_size", 3, "integer"),
        ("version: 1\nstages:\n  - rescale: {factor: 1/0}\n", "stages[0].rescale.factor", 3, "divides by zero"),
        ("version: 1\nstages:\n  - rescale: {factor: 1/2/3}\n", "stages[0].rescale.factor", 3, "two numbers"),
        ("version: 1\nchecks: {ignore: [range-overflw]}\n", "checks.ignore", 2, "'range-overflow'"),
        ("version: 1\nsource: {expect: {dtype: uint8, bit_depth: 12}}\n", "source.expect", 2, "does not fit"),
        ("version: 1\nsource: {expect: {dtype: uint12}}\n", "source.expect.dtype", 2, "unknown dtype"),
        ("version: 2\n", "version", 1, "1"),
        ("name: x\n", "version", 1, "version: 1"),
        ("version: 1\nstages:\n  - rescale: {factor: 2, expects: {rnge: [0, 1]}}\n",
         "stages[0].rescale.expects.rnge", 3, "`range`"),
        ("version: 1\nstages:\n  - rescale: 3\n", "stages[0].rescale", 3, "mapping"),
        ("version: 1\nstages:\n  - {rescale: {factor: 1}, clip: {min: 0, max: 1}}\n", "stages[0]", 3, "one-key"),
        ("version: 1\nbatches:\n  save_to_dir: out\n", "batches.save_to_dir", 3, "--out"),
    ],
)
def test_errors_name_key_path_line_and_fix(write_config, text, path, line, fragment):
    err = error_of(write_config, text)
    assert err.path == path
    assert err.line == line
    assert err.column is not None
    assert fragment in str(err)
    assert err.file.endswith("config.yaml")


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("", "empty"),
        ("   \n# only a comment\n", "empty"),
        ("version: 1\nstages: [\n", "syntax"),
        ("- version: 1\n", "mapping"),
        ("version: 1\nsource:\n\tdirectory: x\n", "tab"),
        ("version: 1\nversion: 1\n", "duplicate key 'version'"),
        ("version: 1\nname: !!python/object/apply:os.system ['touch pwned']\n", "not allowed"),
        ("version: 1\nbatches: !!binary aGVsbG8=\n", "not allowed"),
    ],
)
def test_bad_documents(write_config, tmp_path, content, fragment):
    err = error_of(write_config, content)
    assert fragment in str(err)
    assert not (tmp_path / "pwned").exists()


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(path)
    assert info.value.line == 2


def test_alias_bomb_is_refused_quickly(write_config):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    prev = "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    start = time.perf_counter()
    err = error_of(write_config, "version: 1\n" + "\n".join(lines) + "\n")
    elapsed = time.perf_counter() - start
    assert "alias bomb" in str(err)
    assert elapsed < 5  # generous: the point is it does not expand 9**10 nodes


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "version: 1\nstages: [\n",
        "- 1\n",
        "version: 1\n\tx: 1\n",
        "version: 1\nversion: 1\n",
        "version: 1\nstages:\n  - rescal: {factor: 1}\n",
        "version: 1\nstages:\n  - rescale: {factor: 1/0}\n",
        "version: 1\nstages:\n  - rescale: {factor: 1/2/3}\n",
        "version: 1\nx: !!python/name:os.system\n",
        "name: missing-version\n",
        "version: 1\nplugins: [does_not_exist.py]\n",
    ],
)
def test_cli_exits_2_with_one_message_and_no_traceback(write_config, capsys, content):
    path = write_config(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error[config-invalid]" in err
    assert err.count("error[config-invalid]") == 1
