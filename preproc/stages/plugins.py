"""The one plugin loader. Stages arrive from two places, and nowhere else:

* installed packages that declare an entry point in the ``preproc.stages`` group (the entry
  point names a Stage subclass, or a module that defines stages); these join the process-wide
  registry on first use;
* a config's explicit ``plugins:`` list: ``.py`` files (relative to the config) or module names;
  these join a registry made for that config alone (:func:`registry_for`).

Everything is checked on arrival: a plugin that fails to import, or defines no valid stage,
raises :class:`~preproc.errors.PluginError` naming the plugin and what it lacks.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from ..errors import PluginError
from .base import Stage
from .registry import REGISTRY, StageRegistry, verify_stage_class

__all__ = [
    "ENTRY_POINT_GROUP",
    "default_registry",
    "get_stage",
    "load_entry_points",
    "load_plugin",
    "register_stage",
    "registered_stages",
    "registry_for",
]

ENTRY_POINT_GROUP = "preproc.stages"

#: a stage class, kept as its own type by :func:`register_stage`
_S = TypeVar("_S", bound=type[Stage])

#: the registry a plugin being loaded registers into (``None``: the process-wide one)
_TARGET: contextvars.ContextVar[StageRegistry | None] = contextvars.ContextVar(
    "preproc_plugin_target", default=None
)
_modules: dict[Path, ModuleType] = {}
_entry_points_loaded = False


def register_stage(cls: _S) -> _S:
    """Class decorator: make a stage available by its ``name``.

    Inside a plugin file or module being loaded for a config, the stage joins that config's
    registry only; anywhere else it joins the process-wide registry.

    Raises:
        PluginError: the class is not a valid stage, or its name is taken.
    """
    target = _TARGET.get()
    return (target if target is not None else REGISTRY).add(cls)


def load_entry_points(*, force: bool = False) -> list[str]:
    """Add the stages of every installed ``preproc.stages`` entry point (once per process)."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return []
    _entry_points_loaded = True
    names: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            with _registering_into(REGISTRY):
                obj = ep.load()
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"entry point {ep.name!r} ({ep.value}) failed to import: {exc}", plugin=ep.name
            ) from exc
        names += _add(REGISTRY, obj, ep.name)
    return names


def default_registry() -> StageRegistry:
    """The process-wide registry, with installed entry points loaded."""
    load_entry_points()
    return REGISTRY


def registry_for(plugins: Iterable[str], base_dir: str | Path = ".") -> StageRegistry:
    """The registry a config sees: the process-wide stages plus its own ``plugins:``.

    Without plugins this is the process-wide registry itself; with plugins, a copy that nothing
    else sees.
    """
    plugins = list(plugins)
    registry = default_registry()
    if not plugins:
        return registry
    registry = registry.copy()
    for spec in plugins:
        load_plugin(spec, base_dir, registry=registry)
    return registry


def get_stage(name: str) -> type[Stage]:
    """Look a stage up by name in the process-wide registry.

    Raises:
        ConfigError: unknown name; the message lists the known names with a did-you-mean.
    """
    return default_registry().get(name)


def registered_stages() -> dict[str, type[Stage]]:
    """All stages of the process-wide registry by name, entry points included."""
    return default_registry().as_dict()


def load_plugin(
    spec: str, base_dir: str | Path = ".", *, registry: StageRegistry | None = None
) -> list[str]:
    """Load one entry of a config's ``plugins:`` list into ``registry``; return its stage names.

    Args:
        spec: a ``.py`` file (relative to ``base_dir``) or an importable module name.
        base_dir: the folder of the config file.
        registry: where the stages go (default: the process-wide registry).

    Raises:
        PluginError: missing file, import failure, or no valid stage.
    """
    registry = registry if registry is not None else default_registry()
    if "\x00" in spec:
        raise PluginError(f"plugin {spec!r} contains a NUL character", plugin=spec.replace("\x00", "\\0"))
    with _registering_into(registry):
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            module = _load_file(Path(base_dir) / spec, spec)
        else:
            module = _import_module(spec)
    return _stages_of(registry, module, spec)


@contextmanager
def _registering_into(registry: StageRegistry) -> Iterator[None]:
    token = _TARGET.set(registry)
    try:
        yield
    finally:
        _TARGET.reset(token)


def _import_module(spec: str) -> ModuleType:
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise PluginError(
            f"plugin module {spec!r} cannot be imported: {exc}",
            plugin=spec,
            hint="give a .py file path relative to the config, or install the module",
        ) from None
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"plugin module {spec!r} failed while importing: {exc}", plugin=spec) from exc


def _add(registry: StageRegistry, obj: object, plugin: str) -> list[str]:
    if isinstance(obj, ModuleType):
        return _stages_of(registry, obj, plugin)
    problems = verify_stage_class(obj)
    if problems:
        raise PluginError(
            f"plugin {plugin!r} does not provide a valid stage: it needs " + "; ".join(problems),
            plugin=plugin,
        )
    assert isinstance(obj, type) and issubclass(obj, Stage)  # what verify_stage_class found
    registry.add(obj, plugin=plugin)
    return [obj.name]


def _stages_of(registry: StageRegistry, module: ModuleType, plugin: str) -> list[str]:
    """Names of the stages a plugin module defines, each added to ``registry``."""
    names = []
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Stage) and value is not Stage:
            if value.__module__ != module.__name__:
                continue  # imported from elsewhere, e.g. a base class
            names += _add(registry, value, plugin)
    if not names:
        raise PluginError(
            f"plugin {plugin!r} defines no stage",
            plugin=plugin,
            hint="subclass preproc.Stage, set `name` and `Params`, implement infer and apply, "
            "and decorate it with @preproc.register_stage",
        )
    return names


def _load_file(path: Path, spec: str) -> ModuleType:
    """Execute a plugin file once per process; later loads reuse the module."""
    path = path.resolve()
    if path in _modules:
        return _modules[path]
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
    except PluginError:
        sys.modules.pop(mod_name, None)
        raise
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise PluginError(
            f"plugin file {spec!r} failed while loading: {type(exc).__name__}: {exc}", plugin=spec
        ) from exc
    _modules[path] = module
    return module
