"""The one plugin loader. Stages arrive from two places, and nowhere else:

* installed packages that declare an entry point in the ``preproc.stages`` group (the entry
  point names a Stage subclass, or a module whose import registers stages);
* a config's explicit ``plugins:`` list: ``.py`` files (relative to the config) or module names.

Everything is checked on arrival: a plugin that fails to import, or defines no valid stage,
raises :class:`~preproc.errors.PluginError` naming the plugin and what it lacks.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from ..errors import PluginError
from .base import Stage
from .registry import _REGISTRY, register_stage, verify_stage_class

__all__ = ["ENTRY_POINT_GROUP", "load_entry_points", "load_plugin"]

ENTRY_POINT_GROUP = "preproc.stages"

_loaded_files: dict[Path, list[str]] = {}
_entry_points_loaded = False


def load_entry_points(*, force: bool = False) -> list[str]:
    """Register the stages of every installed ``preproc.stages`` entry point (once)."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return []
    _entry_points_loaded = True
    names: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"entry point {ep.name!r} ({ep.value}) failed to import: {exc}", plugin=ep.name
            ) from exc
        names += _register_object(obj, ep.name)
    return names


def _register_object(obj, plugin: str) -> list[str]:
    if isinstance(obj, ModuleType):
        return _stages_of(obj, plugin)
    problems = verify_stage_class(obj)
    if problems:
        raise PluginError(
            f"plugin {plugin!r} does not provide a valid stage: it needs " + "; ".join(problems),
            plugin=plugin,
        )
    try:
        register_stage(obj)
    except ValueError as exc:
        raise PluginError(f"plugin {plugin!r}: {exc}", plugin=plugin) from None
    return [obj.name]


def _stages_of(module: ModuleType, plugin: str) -> list[str]:
    """Names of the stages a plugin module registered (or defines and we register)."""
    names = []
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Stage) and value is not Stage:
            if value.__module__ != module.__name__:
                continue  # imported from elsewhere, e.g. a base class
            if _REGISTRY.get(getattr(value, "name", None)) is not value:
                names += _register_object(value, plugin)
            else:
                names.append(value.name)
    if not names:
        raise PluginError(
            f"plugin {plugin!r} defines no stage",
            plugin=plugin,
            hint="subclass preproc.Stage, set `name` and `Params`, implement infer and apply, "
            "and decorate it with @preproc.register_stage",
        )
    return names


def load_plugin(spec: str, base_dir: str | Path = ".") -> list[str]:
    """Load one entry of a config's ``plugins:`` list and return the stage names it registered.

    Args:
        spec: a ``.py`` file (relative to ``base_dir``) or an importable module name.
        base_dir: the folder of the config file.

    Raises:
        PluginError: missing file, import failure, or no valid stage.
    """
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return _load_file(Path(base_dir) / spec, spec)
    try:
        module = importlib.import_module(spec)
    except ImportError as exc:
        raise PluginError(
            f"plugin module {spec!r} cannot be imported: {exc}",
            plugin=spec,
            hint="give a .py file path relative to the config, or install the module",
        ) from None
    except Exception as exc:
        raise PluginError(f"plugin module {spec!r} failed while importing: {exc}", plugin=spec) from exc
    return _stages_of(module, spec)


def _load_file(path: Path, spec: str) -> list[str]:
    path = path.resolve()
    if path in _loaded_files:
        return _loaded_files[path]
    if not path.is_file():
        raise PluginError(
            f"plugin file {spec!r} not found (looked at {path})",
            plugin=spec,
            hint="plugin paths are relative to the config file",
        )
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    mod_name = f"preproc_plugin_{path.stem}_{digest}"
    mod_spec = importlib.util.spec_from_file_location(mod_name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise PluginError(f"plugin file {spec!r} cannot be loaded as Python", plugin=spec)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise PluginError(
            f"plugin file {spec!r} failed while loading: {type(exc).__name__}: {exc}", plugin=spec
        ) from exc
    names = _stages_of(module, spec)
    _loaded_files[path] = names
    return names
