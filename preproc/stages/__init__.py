"""Stages: the base class, the registry, the plugin loader and the built-in stages."""

from .base import Expects, RunContext, Stage, StageContext, StageTraits
from .plugins import get_stage, register_stage, registered_stages, registry_for
from .registry import REGISTRY, StageRegistry

__all__ = [
    "REGISTRY",
    "Expects",
    "RunContext",
    "Stage",
    "StageContext",
    "StageRegistry",
    "StageTraits",
    "get_stage",
    "register_stage",
    "registered_stages",
    "registry_for",
]
