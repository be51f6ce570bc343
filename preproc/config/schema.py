"""JSON Schema of the config language, for editors (``preproc schema``)."""

from __future__ import annotations

import copy
from typing import Any

from .model import Config
from ..stages.base import Expects
from ..stages.plugins import default_registry
from ..stages.registry import StageRegistry

__all__ = ["config_schema"]

_INTERNAL = ("path",)


def config_schema(registry: StageRegistry | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config, with one ``oneOf`` branch per stage.

    Args:
        registry: the stages to describe (default: the process-wide registry).
    """
    registry = registry if registry is not None else default_registry()
    schema = Config.model_json_schema(ref_template="#/$defs/{model}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "preproc pipeline config"
    for key in _INTERNAL:
        schema["properties"].pop(key, None)
    defs = schema.setdefault("$defs", {})
    defs["Expects"] = _inline(Expects.model_json_schema(ref_template="#/$defs/{model}"), defs)
    branches: list[dict[str, Any]] = []
    for name, cls in registry.as_dict().items():
        params = _inline(cls.Params.model_json_schema(ref_template="#/$defs/{model}"), defs)
        params.setdefault("properties", {})["expects"] = {"$ref": "#/$defs/Expects"}
        params["properties"]["apply_to"] = {
            "type": "array", "minItems": 1, "uniqueItems": True,
            "items": {"enum": ["training", "validation"]},
            "description": "subsets the stage runs on (random stages: training only by default)"}
        params["additionalProperties"] = False
        params.pop("title", None)
        if cls.__doc__:
            params["description"] = cls.__doc__.strip().splitlines()[0]
        branches.append({
            "type": "object",
            "title": name,
            "properties": {name: {"anyOf": [params, {"type": "null"}]}},
            "required": [name],
            "additionalProperties": False,
        })
    schema["properties"]["stages"] = {
        "type": "array",
        "description": "ordered stages; each item is a one-key mapping NAME: {params}",
        "items": {"oneOf": branches},
    }
    return schema


def _inline(sub: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Move a sub-schema's own ``$defs`` into the shared ones."""
    sub = copy.deepcopy(sub)
    defs.update(sub.pop("$defs", {}))
    return sub
