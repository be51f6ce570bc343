"""Plugins: explicit files from configs, entry points, and clear errors for bad plugins."""

from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from preproc import ConfigError, PluginError, check, load_config, registered_stages
from preproc.stages import plugins as plugin_mod
from preproc.stages.registry import REGISTRY

from conftest import CONFIGS

GOOD = '''
import numpy as np
from pydantic import BaseModel, ConfigDict
import preproc

class P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k: float = 1.0

@preproc.register_stage
class {cls}(preproc.Stage):
    name = "{name}"
    Params = P
    examples = [{{"params": {{}}, "input": {{"dtype": "float32", "range": [0, 1]}}}}]
    def infer(self, spec):
        return self.output_spec(spec, spec.interval, "float32")
    def apply(self, x, ctx):
        return x.astype(np.float32)
'''


def test_example_plugins_load_from_config_and_run():
    cfg = load_config(CONFIGS / "plugins-sharpen.yaml")
    assert [e.name for e in cfg.stages] == ["percentile_clip", "rescale_intensity", "unsharp_mask"]
    from preproc import Pipeline

    pipe = Pipeline.from_config(cfg)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4096, (32, 32, 1)).astype(np.uint16)
    out = pipe.apply(image, guard=True)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_plugin_stage_dtype_contract_is_checked(write_config):
    path = write_config(f"""\
        version: 1
        plugins: [{CONFIGS.parent / 'plugins' / 'unsharp_mask.py'}]
        source: {{expect: {{dtype: uint16}}}}
        stages:
          - unsharp_mask: {{}}
        """)
    assert "dtype-mismatch" in check(load_config(path), sample=0).codes


def test_missing_plugin_file(write_config):
    path = write_config("version: 1\nplugins: [nothere.py]\n")
    with pytest.raises(PluginError, match="not found") as info:
        load_config(path)
    assert info.value.line == 2 and info.value.path == "plugins[0]"


def test_plugin_without_stage(write_config, tmp_path):
    (tmp_path / "empty_plugin.py").write_text("X = 1\n")
    path = write_config("version: 1\nplugins: [empty_plugin.py]\n")
    with pytest.raises(PluginError, match="defines no stage"):
        load_config(path)


def test_plugin_that_raises_on_import(write_config, tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    path = write_config("version: 1\nplugins: [broken.py]\n")
    with pytest.raises(PluginError, match="boom"):
        load_config(path)


def test_plugin_with_invalid_stage(write_config, tmp_path):
    (tmp_path / "invalid.py").write_text(
        "import preproc\n@preproc.register_stage\nclass Bad(preproc.Stage):\n    name = 'Bad Name'\n"
    )
    path = write_config("version: 1\nplugins: [invalid.py]\n")
    with pytest.raises(PluginError, match="not a valid stage"):
        load_config(path)


def test_plugin_module_by_name(write_config, tmp_path, monkeypatch):
    (tmp_path / "my_stage_pkg.py").write_text(GOOD.format(cls="Mod", name="by_module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_config("version: 1\nplugins: [my_stage_pkg]\nstages:\n  - by_module: {k: 2}\n")
    cfg = load_config(path)
    assert cfg.stages[0].name == "by_module" and cfg.stages[0].params.k == 2
    # the stage belongs to that config: an unrelated config cannot name it afterwards
    assert "by_module" not in registered_stages()
    other = write_config("version: 1\nstages:\n  - by_module: {}\n", name="other.yaml")
    with pytest.raises(ConfigError, match="unknown stage 'by_module'"):
        load_config(other)


def test_entry_points_are_loaded_and_verified(tmp_path, monkeypatch):
    (tmp_path / "ep_stage.py").write_text(GOOD.replace("@preproc.register_stage\n", "").format(
        cls="EpStage", name="from_entry_point"))
    (tmp_path / "ep_bad.py").write_text("class NotAStage:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    good = EntryPoint(name="ep", value="ep_stage:EpStage", group=plugin_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugin_mod, "entry_points", lambda group: [good])
    try:
        assert plugin_mod.load_entry_points(force=True) == ["from_entry_point"]
        assert "from_entry_point" in registered_stages()
    finally:
        REGISTRY.remove("from_entry_point")
    bad = EntryPoint(name="bad", value="ep_bad:NotAStage", group=plugin_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugin_mod, "entry_points", lambda group: [bad])
    with pytest.raises(PluginError, match="bad") as info:
        plugin_mod.load_entry_points(force=True)
    assert info.value.plugin == "bad"
    missing = EntryPoint(name="gone", value="no_such_module_x:Y", group=plugin_mod.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugin_mod, "entry_points", lambda group: [missing])
    with pytest.raises(PluginError, match="failed to import"):
        plugin_mod.load_entry_points(force=True)


def test_config_never_imports_code_without_plugins(write_config, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    path = write_config(textwrap.dedent("""\
        version: 1
        name: evil
        stages:
          - evil: {}
        """))
    with pytest.raises(ConfigError, match="unknown stage 'evil'"):
        load_config(path)
    assert not marker.exists()
