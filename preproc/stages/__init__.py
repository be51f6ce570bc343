"""Stages: the base class, the registry and the built-in stages."""

from .base import Expects, Stage, StageContext
from .registry import get_stage, register_stage, registered_stages, unregister_stage

__all__ = [
    "Expects",
    "Stage",
    "StageContext",
    "get_stage",
    "register_stage",
    "registered_stages",
    "unregister_stage",
]
