"""The exceptions preproc raises.

One shallow tree; every class carries its context as attributes and pickles cleanly, so an
error raised in a worker process arrives intact in the parent::

    PreprocError                 base of everything preproc raises on purpose
    ├── ConfigError              the config does not load or validate (CLI exit 2)
    │   └── PluginError          a plugin file or entry point is missing or defines no valid stage
    ├── CheckFailed              a config fails its static check, so no batch is produced
    ├── DecodeError              a file cannot be read (corrupt, truncated, empty, unsupported)
    │   └── LossyDecodeError     a file can only be read by losing bits or channels
    ├── StageError               a stage failed on real pixels (wrong shape, NaN, ...)
    ├── WorkerError              a worker process died, hung or failed unexpectedly
    └── MissingDependencyError   an optional extra is not installed; says what to install

Findings (range problems, audit results) are not exceptions: they are data, see
:mod:`preproc.findings`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .findings import Finding

__all__ = [
    "CheckFailed",
    "ConfigError",
    "printable",
    "DecodeError",
    "LossyDecodeError",
    "MissingDependencyError",
    "PluginError",
    "PreprocError",
    "StageError",
    "WorkerError",
]


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F),
                                            *range(0x2066, 0x206A))})


def printable(text: object) -> str:
    """``text`` safe to show on a terminal or in a report: bytes that were not valid UTF-8 (held
    as surrogate escapes, as file names are) and control characters (ESC, BEL, newline, bidi
    overrides) are shown escaped, as ``\\xff`` or ``\\x1b``, so a file name cannot clear the
    screen or forge a line."""
    text = str(text)
    if text.isprintable() and text.isascii():
        return text
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.translate(_CONTROL)


class PreprocError(Exception):
    """Base class of every error preproc raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[_Rebuild, tuple[type[PreprocError], dict[str, Any]]]:
        # keep attributes across process boundaries
        return (_rebuild, (type(self), self.__dict__.copy()))

    def __str__(self) -> str:
        return self.message


_E = TypeVar("_E", bound=PreprocError)
_Rebuild = Callable[[type["PreprocError"], dict[str, Any]], "PreprocError"]


def _rebuild(cls: type[_E], state: dict[str, Any]) -> _E:
    obj = cls.__new__(cls)
    Exception.__init__(obj, state.get("message", ""))
    obj.__dict__.update(state)
    return obj


class ConfigError(PreprocError):
    """A config file does not load or validate.

    Attributes:
        file: the config file, when known.
        line: 1-based line of the offending node, when known.
        column: 1-based column, when known.
        path: key path such as ``stages[1].rescale.factor`` (empty for the whole document).
        hint: what to do about it, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.path = path
        self.hint = hint

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.path}:" if self.path else ""
        text = f"{where}: error[config-invalid]:{key} {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class PluginError(ConfigError):
    """A plugin cannot be loaded or does not define a valid stage.

    Attributes:
        plugin: the plugin file, module or entry point name.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, column=column, path=path, hint=hint)
        self.plugin = plugin


class DecodeError(PreprocError):
    """A file cannot be decoded.

    Attributes:
        path: the file.
        reason: short machine-friendly reason (``truncated``, ``empty``, ``unsupported``, ...).
    """

    code = "unreadable-file"

    def __init__(self, path: str | os.PathLike[str], reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = printable(detail)
        text = f"{printable(self.path)}: cannot read image ({reason})"
        if detail:
            text += f": {self.detail}"
        super().__init__(text)


class LossyDecodeError(DecodeError):
    """A file could only be decoded by discarding bits or channels."""

    code = "lossy-decode"


class StageError(PreprocError):
    """A stage failed while processing pixels.

    Attributes:
        stage: index of the stage in the pipeline.
        stage_name: registered name of the stage.
        file: the image being processed, when known.
    """

    def __init__(
        self, message: str, *, stage: int | None = None, stage_name: str = "", file: str | None = None
    ) -> None:
        prefix = f"stage {stage} `{stage_name}`: " if stage is not None else ""
        suffix = f" (file {file})" if file else ""
        super().__init__(prefix + message + suffix)
        self.stage = stage
        self.stage_name = stage_name
        self.file = file


class MissingDependencyError(PreprocError, ImportError):
    """An optional dependency is needed but not installed.

    Attributes:
        package: the import name that failed.
        extra: the ``pip install 'preproc[extra]'`` extra that provides it.
    """

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package `{package}`; "
            f"install it with: pip install 'preproc[{extra}]'"
        )
        self.package = package
        self.extra = extra


class CheckFailed(PreprocError):
    """A config's static check found problems at or above ``checks.fail_on``.

    ``flow`` and ``preproc run`` check a config before producing a batch; this error stops them
    with the same lines ``preproc check`` prints. Pass ``check=False`` to ``flow`` (or
    ``--no-check`` to ``preproc run``) to run a config that fails its check on purpose.

    Attributes:
        findings: every finding of the check (a list of :class:`preproc.findings.Finding`).
        config: the config file, when it came from one.
    """

    def __init__(self, message: str, *, findings: Sequence[Finding] | None = None,
                 config: str | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])
        self.config = config

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}


class WorkerError(PreprocError):
    """A worker process died, stopped making progress, or failed in an unexpected way.

    Attributes:
        worker: index of the worker in its pool, when known.
        pid: process id of the worker, when known.
        signal: name of the signal that ended it (``"SIGKILL"``), ``None`` when it was not a signal.
        exitcode: the process exit code (negative for a signal), when it exited.
        batch: the batch the worker was computing, when known.
    """

    def __init__(self, message: str, *, worker: int | None = None, pid: int | None = None,
                 signal: str | None = None, exitcode: int | None = None,
                 batch: int | None = None) -> None:
        super().__init__(message)
        self.worker = worker
        self.pid = pid
        self.signal = signal
        self.exitcode = exitcode
        self.batch = batch
