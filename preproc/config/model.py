"""The config language: strict pydantic models over safely loaded YAML.

A config is validated in one pass, whether it comes from a file (:func:`load_config`), a
mapping or keyword arguments (``Config.model_validate``): its ``plugins:`` are loaded into a
registry made for it, and each item of ``stages:`` becomes a :class:`StageEntry` holding the
stage class and its validated ``Params``. A config read from YAML also keeps where every key
stood, in a side map (:meth:`Config.where`), so every error points at a file, line, column and
key path.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .. import dtypes
from ..errors import ConfigError
from ..findings import CODES
from ..io.info import CHANNELS_BY_COLOR_MODE
from ..stages.base import Expects, Stage
from ..types import STRICT, DType, Integer, Number, Range
from .yamlsafe import Document, Key, KeyPart, format_path, load_yaml

if TYPE_CHECKING:
    from ..stages.registry import StageRegistry

__all__ = [
    "AuditChecks", "Batches", "Checks", "Config", "Dicom", "Expect", "Source", "SplitBy",
    "StageEntry", "as_config", "load_config",
]

Severity = Literal["error", "warning", "info"]

_M = TypeVar("_M", bound=BaseModel)
#: a location in pydantic's errors: field names and list indices
Loc = tuple[int | str, ...]


class Expect(BaseModel):
    """What the source data must be: audited against the files, and the check's starting point."""

    model_config = STRICT
    dtype: DType | None = None
    bit_depth: Integer | None = Field(None, ge=1, le=64, description="meaningful bits per sample")
    range: Range | None = None
    channels: Integer | None = Field(None, ge=1, le=4)

    @model_validator(mode="after")
    def _coherent(self) -> Expect:
        if self.dtype is None:
            if self.bit_depth is not None or self.range is not None:
                raise ValueError("`bit_depth` and `range` need a `dtype` (e.g. dtype: uint16)")
            return self
        if self.bit_depth is not None:
            if dtypes.is_float(self.dtype):
                raise ValueError(f"`bit_depth` applies to integer dtypes, not {self.dtype}")
            if self.bit_depth > dtypes.container_bits(self.dtype):
                raise ValueError(
                    f"bit_depth {self.bit_depth} does not fit in {self.dtype} "
                    f"({dtypes.container_bits(self.dtype)} bits)"
                )
        if self.range is not None:
            lo, hi = dtypes.dtype_range(self.dtype)
            if self.range[0] < lo or self.range[1] > hi:
                raise ValueError(f"range {list(self.range)} lies outside what {self.dtype} holds")
            if self.bit_depth is not None:
                blo, bhi = dtypes.levels_range(self.bit_depth, signed=dtypes.is_signed(self.dtype))
                if self.range[0] < blo or self.range[1] > bhi:
                    raise ValueError(
                        f"range {list(self.range)} does not fit in {self.bit_depth} bits "
                        f"([{blo:g}, {bhi:g}]); raise bit_depth or narrow the range"
                    )
        return self


class Dicom(BaseModel):
    """What the pixels of DICOM files mean once decoded (other formats ignore it)."""

    model_config = STRICT
    modality_lut: bool = Field(True, description="apply RescaleSlope/Intercept or the Modality "
                               "LUT Sequence: modality units (HU for CT)")
    voi: Literal["none", "header"] = Field("none", description="header: the file's VOI LUT or "
                                           "first window (PS3.3 C.11.2.1.2) onto float32 [0, 1]")
    monochrome1: Literal["invert", "keep", "error"] = Field(
        "invert", description="MONOCHROME1 (white is low): invert to MONOCHROME2, keep, or refuse")
    frames: Literal["first", "all"] = Field("first", description="multi-frame files: the first "
                                            "frame, or every frame as its own sample (file#k)")

    @model_validator(mode="after")
    def _voi_needs_modality_units(self) -> Dicom:
        if self.voi == "header" and not self.modality_lut:
            raise ValueError("`voi: header` needs `modality_lut: true`: a file's window is in "
                             "modality units (PS3.3 C.11.2), not stored values")
        return self


class Source(BaseModel):
    model_config = STRICT
    directory: Path | None = Field(None, description="class-per-subfolder dataset, relative to the config")
    extensions: list[str] | None = None
    expect: Expect | None = None
    dicom: Dicom = Field(default_factory=Dicom)
    max_image_bytes: Integer = Field(512 << 20, ge=1, le=2**62,
                                 description="decode budget: bytes one decoded image may take")

    @field_validator("extensions")
    @classmethod
    def _exts(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for ext in value:
            ext = ext.lower().lstrip(".")
            if not ext or "/" in ext:
                raise ValueError(f"{ext!r} is not a file extension")
            out.append(ext)
        return out


#: Bounds of the batch keys: beyond them a value is a typo, or a hang at run time.
MAX_BATCH_SIZE = 1 << 20
MAX_PREFETCH = 64
MAX_WORKERS = 1024
MAX_SIDE = 1 << 16


def physical_memory() -> int | None:
    """Bytes of physical memory, or ``None`` when the platform does not say."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


class Decode(BaseModel):
    model_config = STRICT
    jpeg_draft: bool = Field(False, description="decode JPEGs at the smallest 1/2, 1/4 or 1/8 "
                             "scale still covering target_size (faster; not Keras-identical)")


class SplitBy(BaseModel):
    """What groups files for ``validation_split``: one DICOM keyword or one path pattern."""

    model_config = STRICT
    dicom: str | None = Field(None, description="DICOM keyword naming the group, e.g. PatientID")
    pattern: str | None = Field(None, description="regular expression with a named group `group`, "
                                "searched in the file path relative to source.directory")

    @model_validator(mode="after")
    def _one(self) -> SplitBy:
        if (self.dicom is None) == (self.pattern is None):
            raise ValueError("give exactly one of `dicom: KEYWORD` or `pattern: REGEX`")
        if self.dicom is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", self.dicom):
            raise ValueError(f"{self.dicom!r} is not a DICOM keyword (e.g. PatientID)")
        if self.pattern is not None:
            try:
                groups = re.compile(self.pattern).groupindex
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}")
            if "group" not in groups:
                raise ValueError("pattern needs a named group `group`, e.g. "
                                 "'(?P<group>patient_[0-9]+)/'")
        return self


class Batches(BaseModel):
    """Every ``flow_from_directory`` parameter, same names and defaults, plus preproc's own."""

    model_config = STRICT
    target_size: tuple[Integer, Integer] = (256, 256)
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    class_mode: Literal["categorical", "binary", "sparse", "input"] | None = "categorical"
    batch_size: Integer = Field(32, ge=1, le=MAX_BATCH_SIZE)
    shuffle: bool = True
    seed: Integer | None = Field(None, ge=0, le=2**32 - 1, description="numpy seeds are 32-bit")
    interpolation: Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"] = "nearest"
    validation_split: Number = Field(0.0, ge=0.0, lt=1.0)
    split_by: SplitBy | None = Field(None, description="keep each group (patient) wholly in one "
                                     "subset of validation_split")
    keep_aspect_ratio: bool = False
    follow_links: bool = False
    classes: list[str] | None = None
    on_error: Literal["raise", "skip"] = "raise"
    workers: Integer | None = Field(None, ge=0, le=MAX_WORKERS,
                                    description="worker processes; default: all cores")
    prefetch: Integer = Field(2, ge=0, le=MAX_PREFETCH, description="batches prepared ahead")
    worker_timeout: Number = Field(60.0, gt=0, le=86400,
                                   description="seconds a worker may spend on one image")
    cache: str | None = Field(None, description="folder written by `preproc cache`: read the "
                              "deterministic part of the pipeline from its shards")
    decode: Decode = Field(default_factory=Decode)
    mode: Literal["training", "evaluation"] = Field(
        "training", description="pipeline of the training subset and of a run without subset: "
        "training runs the random stages, evaluation the deterministic ones alone (as the "
        "validation subset always does)")

    @field_validator("target_size")
    @classmethod
    def _size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("target_size needs two positive integers [height, width]")
        if max(value) > MAX_SIDE:
            raise ValueError(f"target_size sides are at most {MAX_SIDE} pixels, got {list(value)}")
        return value

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            seen: set[str] = set()
            for c in value:  # a set: 90,000 classes must not take a quadratic scan
                if c in seen:
                    raise ValueError(f"class {c!r} is listed twice")
                seen.add(c)
        return value

    @model_validator(mode="after")
    def _batch_fits(self) -> Batches:
        channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[self.color_mode]
        h, w = self.target_size
        nbytes = self.batch_size * h * w * channels  # one byte a sample: the least a batch takes
        memory = physical_memory()
        if memory is not None and nbytes > memory:
            raise ValueError(
                f"a batch of batch_size {self.batch_size} x target_size {h}x{w} x {channels} "
                f"channels takes at least {nbytes} bytes, more than this machine's {memory} bytes "
                "of memory; lower batches.batch_size or batches.target_size")
        return self


class Runtime(BaseModel):
    model_config = STRICT
    sample_batches: Integer = Field(1, ge=0, description="batches per epoch checked by the runtime guard")


class AuditChecks(BaseModel):
    """Thresholds of the audit's image-quality and near-duplicate findings.

    A measure is an outlier when it lies more than ``k`` robust standard deviations
    (1.4826 x MAD) from the median of its class (of the dataset for classes with fewer than
    ``min_class_files`` measured files) *and* beyond the measure's own minimum margin.
    """

    model_config = STRICT
    near_duplicate_distance: int = Field(10, ge=0, le=16, description="max differing bits of 64 perceptual-hash bits")
    near_duplicate_correlation: float = Field(0.85, ge=-1, le=1, description="min correlation of the 8x8 thumbnails of a near-duplicate pair, each taken relative to the dataset's mean thumbnail (from 16 images on)")
    k: float = Field(3.5, gt=0, description="robust deviations from the median that make an outlier")
    min_class_files: int = Field(20, ge=3, description="files a class needs for its own thresholds")
    blur_factor: float = Field(6.0, gt=1, description="blurry: sharpness at least this factor below the median")
    brightness_factor: float = Field(2.0, gt=1, description="dark: brightness at least this factor below the median; light: 1 - brightness that factor below the median's")
    entropy_margin: float = Field(4.0, gt=0, le=8, description="low-information: entropy at least this many bits below the median")
    size_factor: float = Field(3.0, gt=1, description="odd-size: side length at least this factor from the median")
    aspect_factor: float = Field(1.5, gt=1, description="odd-aspect-ratio: width/height at least this factor from the median")


class Checks(BaseModel):
    model_config = STRICT
    fail_on: Severity = "error"
    ignore: list[str] = Field(default_factory=list)
    severity: dict[str, Severity] = Field(default_factory=dict)
    runtime: Runtime = Field(default_factory=Runtime)
    audit: AuditChecks = Field(default_factory=AuditChecks)

    @field_validator("ignore", "severity")
    @classmethod
    def _known_codes(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        for code in value:  # list items or mapping keys
            _known_code(code)
        return value


def _known_code(code: str) -> None:
    if code not in CODES:
        close = difflib.get_close_matches(code, list(CODES), n=1)
        tip = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown finding code {code!r}{tip}")


class StageEntry(BaseModel):
    """One validated item of ``stages:``: the stage class, its params and its input contract."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    index: int
    name: str
    cls: type[Stage] = Field(exclude=True)
    params: BaseModel
    expects: Expects | None = None
    #: subsets the stage runs on; ``None``: random stages on training, the others on both
    apply_to: tuple[Literal["training", "validation"], ...] | None = None

    def as_yaml(self) -> dict[str, Any]:
        """The one-key mapping this entry was written as."""
        params = self.params.model_dump(mode="json", exclude_defaults=True)
        if self.expects is not None:
            params["expects"] = self.expects.model_dump(mode="json", exclude_none=True)
        if self.apply_to is not None:
            params["apply_to"] = list(self.apply_to)
        return {self.name: params}


class Config(BaseModel):
    """A whole pipeline config: from a file with :func:`load_config`, or from a mapping.

    ``Config.model_validate(mapping)`` validates the stages as a file would; relative paths in
    it (``source.directory``, ``plugins:``) are taken relative to the working directory.
    """

    model_config = STRICT
    version: Literal[1]
    name: str | None = None
    plugins: list[str] = Field(default_factory=list)
    source: Source = Field(default_factory=Source)
    stages: tuple[StageEntry, ...] = ()
    batches: Batches = Field(default_factory=Batches)
    checks: Checks = Field(default_factory=Checks)

    # set by load_config; not part of the YAML
    path: Path | None = Field(None, exclude=True)
    _doc: Document | None = PrivateAttr(None)

    @field_validator("stages", mode="before")
    @classmethod
    def _entries(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple):
            return value  # pydantic reports the wrong type
        if all(isinstance(v, StageEntry) for v in value):
            return tuple(value)
        from ..stages.plugins import registry_for

        context = info.context or {}
        registry = context.get("registry") or registry_for(
            info.data.get("plugins") or [], context.get("base_dir", "."))
        return tuple(_stage_entry(i, item, registry) for i, item in enumerate(value))

    @field_serializer("stages")
    def _stages_as_yaml(self, stages: tuple[StageEntry, ...]) -> list[dict[str, Any]]:
        return [e.as_yaml() for e in stages]

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path(".")

    @property
    def channels(self) -> int:
        return CHANNELS_BY_COLOR_MODE[self.batches.color_mode]

    def where(self, key_path: Key) -> tuple[int | None, int | None]:
        """``(line, column)`` of a key path in the YAML file, or ``(None, None)``."""
        if self._doc is None:
            return None, None
        return self._doc.where(key_path)


def load_config(path: str | os.PathLike[str], text: str | None = None) -> Config:
    """Load, validate and resolve a config file.

    Raises:
        ConfigError: with file, line, column, key path and a hint; PluginError for plugins.
    """
    from ..errors import PluginError
    from ..stages.plugins import registry_for

    path = Path(path)
    doc = load_yaml(path, text)
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__
        raise ConfigError(
            f"the config must be a mapping of keys (version, source, stages, ...), not a {kind}",
            file=doc.file, line=1, column=1,
            hint="start from an example in configs/",
        )
    _refuse_nul(doc, doc.data, ())
    base = path.resolve().parent
    plugins = doc.data.get("plugins")
    context: dict[str, Any] = {"base_dir": base}
    if isinstance(plugins, list) and all(isinstance(p, str) for p in plugins):
        for i, spec in enumerate(plugins):  # loaded one by one, to name the failing entry
            try:
                context["registry"] = registry_for(plugins[: i + 1], base)
            except PluginError as exc:
                line, column = doc.where(("plugins", i))
                raise PluginError(
                    exc.message, plugin=exc.plugin, file=doc.file, line=line, column=column,
                    path=f"plugins[{i}]", hint=exc.hint,
                ) from exc.__cause__
    try:
        cfg = Config.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise _from_validation(exc, doc, (), Config, context.get("registry")) from None
    try:
        source = cfg.source
        if source.directory is not None and not source.directory.is_absolute():
            source = source.model_copy(update={"directory": (base / source.directory).resolve()})
    except (OSError, ValueError) as exc:
        line, column = doc.where(("source", "directory"))
        raise ConfigError(f"bad path: {exc}", file=doc.file, line=line, column=column,
                          path="source.directory") from None
    cfg = cfg.model_copy(update={"path": path.resolve(), "source": source})
    cfg._doc = doc
    return cfg


def _refuse_nul(doc: Document, node: Any, where: Key) -> None:
    """No key or string of a config may hold a NUL character (a path with one cannot be opened,
    a name with one cannot be shown); walked iteratively, so deep nesting is no problem."""
    stack = [(node, where)]
    while stack:
        node, where = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            here = where + (key,)
            if (isinstance(key, str) and "\x00" in key) or (isinstance(value, str) and "\x00" in value):
                line, column = doc.where(here)
                raise ConfigError("bad path or name: a NUL character (\\0) is not allowed "
                                  "in a config string",
                                  file=doc.file, line=line, column=column, path=format_path(here),
                                  hint="remove the \\0 escape")
            if isinstance(value, dict | list):
                stack.append((value, here))


def as_config(target: Config | str | os.PathLike[str] | Mapping[str, Any]) -> Config:
    """A :class:`Config` from a config, the path of a YAML file, or a mapping.

    Every public entry point (``check``, ``audit``, ``flow``) takes any of the three the same
    way. A mapping is validated like a file; its relative paths count from the working directory.

    Raises:
        ConfigError: the file or mapping does not validate, or ``target`` is none of the three.
    """
    if isinstance(target, Config):
        return target
    if isinstance(target, str | os.PathLike):
        return load_config(target)
    if isinstance(target, Mapping):
        try:
            return Config.model_validate(dict(target), context={"base_dir": Path.cwd()})
        except ValidationError as exc:
            raise _from_validation(exc, Document(dict(target), "<mapping>"), (), Config) from None
    raise ConfigError(
        f"expected a config: a Config, the path of a YAML file or a mapping, not "
        f"{type(target).__name__}",
        hint="pass preproc.load_config(path), the path itself, or a dict of the YAML's keys",
    )


def _stage_entry(i: int, item: Any, registry: StageRegistry) -> StageEntry:
    """Validate one item of ``stages:``; errors carry the key path below ``stages``."""
    if not isinstance(item, dict) or len(item) != 1:
        raise _custom_at((i,), "stage_shape", "each stage is a one-key mapping NAME: {params}",
                         "write e.g. `- rescale: {factor: 1/255}`", item)
    (name, params), = item.items()
    try:
        cls = registry.get(str(name))
    except ConfigError as exc:
        raise _custom_at((i,), "unknown_stage", exc.message, exc.hint, name) from None
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise _custom_at(
            (i, name), "stage_params",
            f"parameters of `{name}` must be a mapping, not {type(params).__name__}",
            f"write `- {name}: {{...}}`; `preproc stages` lists each stage's parameters", params)
    params = dict(params)
    expects_raw = params.pop("expects", None)
    apply_to = _apply_to(params.pop("apply_to", None), (i, name, "apply_to"))
    model = _nested(cls.Params, params, (i, name))
    expects = _nested(Expects, expects_raw, (i, name, "expects")) if expects_raw is not None else None
    if expects is not None and expects.kind not in (None, "integer", "float"):
        raise _custom_at((i, name, "expects", "kind"), "expects_kind",
                         "expects.kind must be `integer` or `float`", None, expects.kind)
    return StageEntry(index=i, name=cls.name, cls=cls, params=model, expects=expects,
                      apply_to=apply_to)


def _apply_to(value: Any, loc: Loc) -> tuple[Literal["training", "validation"], ...] | None:
    """``apply_to: [training, validation]``: the subsets a stage runs on."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or any(v not in ("training", "validation")
                                                       for v in items):
        raise _custom_at(loc, "apply_to", "apply_to takes a list of training and validation",
                         "write `apply_to: [training, validation]`", value)
    return tuple(dict.fromkeys(items))


def _nested(model: type[_M], value: Any, prefix: Loc) -> _M:
    """Validate ``value`` against ``model``, re-rooting its errors at ``prefix`` below ``stages``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = []
        for err in exc.errors(include_url=False):
            detail = InitErrorDetails(type=err["type"], loc=prefix + tuple(err["loc"]),
                                      input=err.get("input"))
            if err.get("ctx"):
                detail["ctx"] = err["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(model.__name__, details) from None


def _custom_at(loc: Loc, kind: str, message: str, hint: str | None, value: Any) -> ValidationError:
    ctx = {"hint": hint} if hint else {}
    error = PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"), ctx)
    return ValidationError.from_exception_data(
        "StageEntry", [InitErrorDetails(type=error, loc=loc, input=value)])


def _from_validation(
    exc: ValidationError, doc: Document, prefix: Key, model: type[BaseModel],
    registry: StageRegistry | None = None,
) -> ConfigError:
    """The first pydantic error, mapped to a YAML position, with a did-you-mean for unknown keys."""
    errors = exc.errors(include_url=False)
    err = min(errors, key=lambda e: e["type"] != "extra_forbidden")  # a typo explains a "missing"
    loc = _doc_path(err["loc"], doc, prefix, err["type"])
    line, column = doc.where(loc)
    message, hint = err["msg"], None
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        key = loc[-1] if loc else ""
        allowed = _allowed_keys(model, list(_doc_path(err["loc"][:-1], doc, prefix, "")[len(prefix):]),
                                registry)
        close = difflib.get_close_matches(str(key), allowed, n=1)
        message = f"unknown key {key!r}"
        hint = f"did you mean `{close[0]}`?" if close else (
            f"allowed keys: {', '.join(allowed)}" if allowed else None)
        hint = _UNSUPPORTED.get(str(key), hint)
    elif err["type"] == "literal_error" and isinstance(err.get("input"), str):
        options = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        close = difflib.get_close_matches(err["input"], options, n=1)
        message += f" (got {err['input']!r})"
        hint = f"did you mean `{close[0]}`?" if close else None
    elif (err.get("ctx") or {}).get("hint") and not isinstance(err["ctx"].get("error"), Exception):
        hint = err["ctx"]["hint"]
    elif err["type"] == "missing":
        message = f"missing required key {loc[-1]!r}" if loc else "missing value"
        if loc == ("version",):
            hint = "add `version: 1` at the top"
    elif "input" in err and not isinstance(err["input"], dict | list) and repr(err["input"]) not in message:
        message += f" (got {err['input']!r})"
    return ConfigError(message, file=doc.file, line=line, column=column,
                       path=format_path(loc), hint=hint)


def _doc_path(loc: Loc, doc: Document, prefix: Key, err_type: str) -> Key:
    """Map a pydantic ``loc`` to a document key path, dropping pydantic's union-branch tags."""
    path = prefix
    for i, part in enumerate(loc):
        candidate = path + (part,)
        last_missing = i == len(loc) - 1 and err_type == "missing"
        if candidate in doc.positions or last_missing or not _is_union_tag(part):
            path = candidate
    return path


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str", "list", "tuple"}
                                      or part.startswith("function-"))


def _allowed_keys(
    model: type[Any] | None, loc: list[KeyPart], registry: StageRegistry | None = None
) -> list[str]:
    """Field names of the nested model that ``loc`` points into."""
    if model is Config and len(loc) >= 3 and loc[0] == "stages":
        from ..stages.plugins import default_registry

        try:  # stages[i].NAME...: the stage's own Params (or its `expects`)
            model = (registry or default_registry()).get(str(loc[2])).Params
        except ConfigError:
            return []
        if loc[3:4] == ["expects"]:
            model, loc = Expects, loc[4:]
        else:
            loc = loc[3:]
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)
                      and issubclass(a, BaseModel)), ann)
    fields = getattr(model, "model_fields", {})
    return [k for k, f in fields.items() if not f.exclude]


#: Keras arguments preproc deliberately does not take, with what to do instead.
_UNSUPPORTED = {
    "save_to_dir": "not supported: use `preproc run CONFIG --out DIR` to write processed arrays",
    "save_prefix": "not supported: use `preproc run CONFIG --out DIR`",
    "save_format": "not supported: `preproc run --out` writes .npy shards",
    "subset": "the subset is chosen at run time: `preproc run --subset validation`, "
    "or `preproc.flow(config, subset='validation')`",
    "rescale": "rescale is a stage: add `- rescale: {factor: 1/255}` to `stages:`",
}
