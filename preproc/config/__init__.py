"""The config language: strict pydantic models, a position-keeping safe YAML reader, the schema.

``load_config(path)`` reads and validates a YAML file; :class:`Config` is the validated model.
"""

from .model import Config, as_config, load_config

__all__ = ["Config", "as_config", "load_config"]
