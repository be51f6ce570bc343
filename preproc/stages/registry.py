"""The stage registry: a plain dict behind a visible decorator. No metaclasses.

Built-in stages register when :mod:`preproc.stages.builtin` is imported; third-party stages
arrive through the ``preproc.stages`` entry-point group or a config's explicit ``plugins:``
(see :mod:`preproc.stages.plugins`). Every class is checked on arrival.
"""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel

from ..errors import ConfigError
from .base import Stage

__all__ = ["get_stage", "register_stage", "registered_stages", "unregister_stage", "verify_stage_class"]

_REGISTRY: dict[str, type[Stage]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def verify_stage_class(cls) -> list[str]:
    """Return what ``cls`` lacks to be a valid stage (empty when it is valid)."""
    problems = []
    if not isinstance(cls, type) or not issubclass(cls, Stage):
        return [f"{cls!r} is not a subclass of preproc.Stage"]
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        problems.append("a `name` made of lower-case letters, digits and underscores")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        problems.append("a `Params` pydantic model")
    elif params.model_config.get("extra") != "forbid":
        problems.append("`Params` with model_config extra='forbid' (unknown keys must be errors)")
    for method in ("infer", "apply"):
        if getattr(cls, method) is getattr(Stage, method):
            problems.append(f"an `{method}` method")
    if cls.__call__ is not Stage.__call__:
        problems.append("no override of `__call__` (implement `apply` instead)")
    return problems


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: add a stage to the registry under ``cls.name``.

    Raises:
        ValueError: the class is not a valid stage, or the name is taken.
    """
    problems = verify_stage_class(cls)
    if problems:
        raise ValueError(f"{cls.__name__} is not a valid stage; it needs " + "; ".join(problems))
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"stage name {cls.name!r} is already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def unregister_stage(name: str) -> None:
    """Remove a stage (for tests and plugin reloads)."""
    _REGISTRY.pop(name, None)


def _ensure_loaded() -> None:
    from . import builtin  # noqa: F401  (registers the built-in stages)


def registered_stages() -> dict[str, type[Stage]]:
    """All registered stages by name, built-ins and installed entry points included."""
    _ensure_loaded()
    from .plugins import load_entry_points

    load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def get_stage(name: str) -> type[Stage]:
    """Look a stage up by name.

    Raises:
        ConfigError: unknown name; the message lists the known names with a did-you-mean.
    """
    _ensure_loaded()
    if name not in _REGISTRY:
        from .plugins import load_entry_points

        load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else None
        raise ConfigError(
            f"unknown stage {name!r}; known stages: {', '.join(known)}", hint=hint
        ) from None
