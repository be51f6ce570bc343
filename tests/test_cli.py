"""Command line: version, stages, schema; configs validate against the schema."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

import preproc
from preproc.commands import main

from conftest import CONFIGS


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert preproc.__version__ in capsys.readouterr().out


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_stages_lists_contracts(capsys):
    assert main(["stages", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["clip"]["clips"] is True and rows["clahe"]["stretches"] is True
    assert "factor" in rows["rescale"]["params"]
    assert main(["stages"]) == 0
    assert "rescale_intensity" in capsys.readouterr().out


def test_schema_validates_every_example_config(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    plugins = [str(p) for p in sorted((CONFIGS.parent / "plugins").glob("*.py"))]
    assert main(["schema"] + [f"--plugin={p}" for p in plugins]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(CONFIGS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, f"{path.name}: {errors[0].message}"
    bad = {"version": 1, "stages": [{"rescal": {"factor": 1}}]}
    assert list(validator.iter_errors(bad))


def test_import_and_check_load_no_heavy_module():
    code = (
        "import sys, preproc, preproc.commands\n"
        "from preproc.commands import main\n"
        f"rc = main(['check', {str(CONFIGS / 'xray-16bit-clahe.yaml')!r}])\n"
        "heavy = [m for m in ('skimage', 'scipy', 'pydicom', 'dask', 'torch', 'keras', "
        "'matplotlib', 'tifffile', 'PIL', 'rich') if m in sys.modules]\n"
        "print('HEAVY', heavy, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY [] 0" in out.stdout, out.stdout + out.stderr


def test_exported_members_match_all():
    public = {name for name in dir(preproc) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(preproc, name)).__name__ == "module"}
    assert set(preproc.__all__) - {"__version__"} == public - modules
    assert preproc.__all__ == sorted(preproc.__all__, key=str)


def test_check_trace_prints_the_spec_after_every_stage(capsys):
    cfg = CONFIGS / "clahe-then-rescale.yaml"
    assert main(["check", str(cfg), "--sample", "0", "--trace"]) == 1
    out = capsys.readouterr().out
    assert "stage 0 clahe" in out and "stage 1 rescale" in out
    assert "[0, 0.00392157]" in out  # what the data really becomes after the mistake


def test_stages_loads_a_plugin_first(capsys):
    from conftest import PLUGINS

    assert main(["stages", "--plugin", str(PLUGINS / "percentile_clip.py"), "--format", "json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert "percentile_clip" in names
