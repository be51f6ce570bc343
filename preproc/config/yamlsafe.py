"""Safe YAML loading that remembers where every key and value came from.

PyYAML's ``safe_load`` forgets line numbers, silently keeps the last of duplicate keys and
expands aliases without limit. This loader composes the node graph with the safe loader,
then builds plain Python data itself so that it can

* record the 1-based ``(line, column)`` of every key path (``("stages", 1, "rescale", "factor")``),
* reject duplicate mapping keys, tags outside YAML's core schema (``!!python/...``) and merge keys,
* cap the number of nodes an alias-heavy document may expand to (the "billion laughs" bomb).

Scalars are resolved by YAML 1.1's core rules (``true``, ``12``, ``1.5``), exactly as ``safe_load``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from ..errors import ConfigError

__all__ = ["Document", "Key", "KeyPart", "format_path", "load_yaml"]

MAX_NODES = 100_000
MAX_DEPTH = 64

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}

#: One step of a key path: a mapping key (a YAML scalar: usually a string) or a list index.
KeyPart: TypeAlias = str | int | float | bool | None
#: A key path such as ``("stages", 1, "rescale", "factor")``.
Key: TypeAlias = tuple[KeyPart, ...]


@dataclass
class Document:
    """Plain data of a YAML file plus the position of every key path."""

    data: Any
    file: str
    positions: dict[Key, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Key) -> tuple[int | None, int | None]:
        """Line and column of the longest prefix of ``path`` that has a position."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (None, None))


def load_yaml(path: str | Path, text: str | bytes | None = None) -> Document:
    """Load a YAML file safely.

    Args:
        path: the file, used for reading (unless ``text`` is given) and in messages.
        text: the content, to load from memory.

    Raises:
        ConfigError: unreadable file, non-UTF-8 bytes, syntax error, duplicate key, unsafe tag,
            alias bomb, empty document.
    """
    file = str(path)
    raw = _read(path) if text is None else text
    source = _decode(raw, file)
    loader = None
    try:
        loader = yaml.SafeLoader(source)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from None
    except yaml.reader.ReaderError as exc:
        line, column = _offset_position(source, exc.position)
        raise ConfigError(
            f"character {exc.character!r} is not allowed in YAML", file=file, line=line,
            column=column, hint="remove control characters from the file",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=file) from None
    except RecursionError:
        raise ConfigError("the document nests too deeply", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise ConfigError(
            "the config is empty", file=file, line=1, hint="start from an example in configs/"
        )
    builder = _Builder(file)
    return Document(builder.build(root, ()), file, builder.positions)


def _read(path: str | Path) -> bytes:
    from ..io.smallfile import NotARegularFile, TooLarge, read_capped

    try:
        return read_capped(path)
    except (NotARegularFile, TooLarge) as exc:
        raise ConfigError(f"cannot read config: {exc}", file=path,
                          hint="a config is a small YAML text file") from None
    except ValueError as exc:
        raise ConfigError(f"cannot read config: {exc}", file=repr(str(path))) from None
    except FileNotFoundError:
        raise ConfigError("config file not found", file=path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=path) from None


def _decode(raw: str | bytes, file: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            file=file,
            line=line,
            column=column,
            hint="save the config as UTF-8",
        ) from None


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or str(exc)
    hint = None
    if "'\\t'" in problem or "\\t" in problem:
        problem = "a tab character where YAML needs spaces"
        hint = "indent with spaces; YAML does not allow tabs for indentation"
    elif exc.context:
        problem = f"{exc.context}, {problem}"
    return ConfigError(
        f"YAML syntax error: {problem}",
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        hint=hint,
    )


class _Builder:
    """Turns a composed node graph into plain data, checking it on the way."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Key, tuple[int, int]] = {}
        self.count = 0
        self._scalars = yaml.SafeLoader("")

    def _error(
        self, node: yaml.Node, message: str, path: Key, hint: str | None = None
    ) -> ConfigError:
        return ConfigError(
            message,
            file=self.file,
            line=node.start_mark.line + 1,
            column=node.start_mark.column + 1,
            path=format_path(path),
            hint=hint,
        )

    def build(self, node: yaml.Node, path: Key) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._error(
                node,
                f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)",
                path,
                hint="remove the repeated aliases (*name); configs never need that many values",
            )
        if len(path) > MAX_DEPTH:
            raise self._error(node, f"the document nests deeper than {MAX_DEPTH} levels", path)
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self._check_tag(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)  # the composer makes no other kind of node
        return self._mapping(node, path)

    def _check_tag(self, node: yaml.Node, path: Key) -> None:
        if node.tag not in _CORE_TAGS:
            raise self._error(
                node,
                f"tag {node.tag!r} is not allowed; configs hold plain data only",
                path,
                hint="remove the tag; code can only come in through `plugins:`",
            )

    def _scalar(self, node: yaml.ScalarNode, path: Key) -> Any:
        self._check_tag(node, path)
        try:
            return self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise self._error(node, f"bad value {node.value!r} for {node.tag}: {exc}", path) from None

    def _mapping(self, node: yaml.MappingNode, path: Key) -> dict[KeyPart, Any]:
        out: dict[KeyPart, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self._error(key_node, "merge keys (<<) are not supported", path)
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(key_node, "mapping keys must be plain scalars", path)
            key = self._scalar(key_node, path)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise self._error(key_node, f"unsupported key {key!r}", path)
            if key in out:
                first = self.positions.get(path + (key,), (None, None))[0]
                raise self._error(
                    key_node,
                    f"duplicate key {key!r} (first defined on line {first})",
                    path + (key,),
                    hint="YAML would silently keep only the last one; remove one of them",
                )
            self.positions[path + (key,)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = self.build(value_node, path + (key,))
        return out


def format_path(path: Key) -> str:
    """``("stages", 1, "rescale", "factor")`` → ``stages[1].rescale.factor``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text
