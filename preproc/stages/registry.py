"""The stage registry: stage classes by name, in an object, with no import-time side effects.

:data:`REGISTRY` holds the built-in stages from an explicit list. Stages from installed entry
points and from a config's ``plugins:`` arrive through the one loader above this module,
:mod:`preproc.stages.plugins`, which checks each class on arrival. A config's plugin stages go
into a copy of the registry made for that config, so loading one config never changes which
stages the next, unrelated config can name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import TypeVar

from pydantic import BaseModel

from ..errors import ConfigError, PluginError
from .base import Stage
from .augment import AUGMENT_STAGES
from .builtin import BUILTIN_STAGES

__all__ = ["REGISTRY", "StageRegistry", "verify_stage_class"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: a stage class, kept as its own type by the decorators that return it
_S = TypeVar("_S", bound=type[Stage])


def verify_stage_class(cls: object) -> list[str]:
    """Return what ``cls`` lacks to be a valid stage (empty when it is valid)."""
    if not isinstance(cls, type) or not issubclass(cls, Stage):
        return [f"{cls!r} is not a subclass of preproc.Stage"]
    problems = []
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


class StageRegistry:
    """Stage classes by name.

    Every class is checked when it is added; a name can be taken once. Lookups of unknown names
    raise :class:`~preproc.errors.ConfigError` listing the known names with a did-you-mean.
    """

    def __init__(self, stages: Iterable[type[Stage]] = ()) -> None:
        self._stages: dict[str, type[Stage]] = {}
        for cls in stages:
            self.add(cls)

    def add(self, cls: _S, *, plugin: str | None = None) -> _S:
        """Add a stage class under ``cls.name`` and return it.

        Raises:
            PluginError: the class is not a valid stage, or its name is taken by another class.
        """
        origin = plugin if plugin else str(getattr(cls, "__module__", repr(cls)))
        problems = verify_stage_class(cls)
        if problems:
            raise PluginError(
                f"{getattr(cls, '__name__', cls)!r} from {origin!r} is not a valid stage; it "
                "needs " + "; ".join(problems), plugin=origin,
            )
        existing = self._stages.get(cls.name)
        if existing is not None and existing is not cls:
            raise PluginError(
                f"stage name {cls.name!r} from {origin!r} is already taken by "
                f"{existing.__module__}.{existing.__qualname__}",
                plugin=origin, hint="rename the stage (its `name` attribute)",
            )
        self._stages[cls.name] = cls
        return cls

    def remove(self, name: str) -> None:
        """Forget a stage (a no-op for unknown names)."""
        self._stages.pop(name, None)

    def get(self, name: str) -> type[Stage]:
        """The stage class called ``name``.

        Raises:
            ConfigError: unknown name; the message lists the known ones with a did-you-mean.
        """
        try:
            return self._stages[name]
        except (KeyError, TypeError):
            known = sorted(self._stages)
            close = difflib.get_close_matches(str(name), known, n=1)
            raise ConfigError(
                f"unknown stage {name!r}; known stages: {', '.join(known)}",
                hint=f"did you mean `{close[0]}`?" if close else None,
            ) from None

    def copy(self) -> StageRegistry:
        """A new registry with the same stages, to extend without touching this one."""
        return StageRegistry(self._stages.values())

    def as_dict(self) -> dict[str, type[Stage]]:
        """Stage classes by name, sorted by name."""
        return dict(sorted(self._stages.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._stages

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._stages))

    def __len__(self) -> int:
        return len(self._stages)


#: The process-wide registry: the built-ins, then installed entry points (added on first use
#: by the plugin loader) and stages a program registers itself with ``register_stage``.
REGISTRY = StageRegistry(BUILTIN_STAGES + AUGMENT_STAGES)
