"""The stage base class: a thin, immutable class over pure array functions.

A stage holds validated parameters, fixed at construction, and implements two things:

* ``infer(spec) -> spec``: what comes out, given what comes in, without touching pixels. It
  must be *sound*: for any input inside ``spec``, ``apply``'s output lies inside the result.
* ``apply(x, ctx) -> x``: the arithmetic on one image of shape ``(H, W, C)``, delegated to plain
  functions in :mod:`preproc.stages.functional`. ``ctx`` is a :class:`RunContext`: what the
  pipeline knows when it runs the stage (the input spec it was bound to, the subset, the epoch,
  the file, and for random stages a generator drawn for this very sample).

A stage never stores pipeline state: a pipeline that learns something (featurewise statistics)
builds a new stage instead of changing one, so one stage object can serve several pipelines and
worker processes at once. The class facts the check and the batch generator read come from one
answer, :meth:`Stage.traits`.

``Stage.__call__`` is the driver and is not overridden: it checks the input, calls ``apply`` and,
when guarded, checks the output against ``infer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import dtypes
from ..errors import PreprocError, StageError
from ..findings import Finding
from ..spec import Interval, ScaleStep, ValueSpec
from ..types import Array, DType, Range

__all__ = ["Expects", "FitsStatistics", "RunContext", "Stage", "StageContext", "StageTraits"]


class Expects(BaseModel):
    """A declared input contract that overrides what the stage implies by itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    range: Range | None = None
    dtype: DType | None = None
    kind: str | None = None  # "integer" | "float"


@dataclass(frozen=True)
class StageContext:
    """What a stage may know when it is built: the source spec and the config's folder and file."""

    source: ValueSpec = field(default_factory=ValueSpec.unknown)
    base_dir: str = "."
    file: str | None = None


@dataclass(frozen=True)
class RunContext:
    """What the pipeline knows when it runs a stage on one image (or one stacked batch).

    Attributes:
        spec: the spec the stage was bound to in its pipeline (``None`` when run alone).
        subset: ``"training"``, ``"validation"`` or ``None`` (no split).
        epoch: the epoch being produced.
        index: the file's index in the dataset listing (``None`` for a stacked batch).
        file: the file's path, for messages.
        rng: a generator for this sample and stage alone, derived from the seed, the epoch, the
            file index and the stage index; ``None`` for stages that draw nothing.
    """

    spec: ValueSpec | None = None
    subset: str | None = None
    epoch: int = 0
    index: int | None = None
    file: str | None = None
    rng: np.random.Generator | None = None


@dataclass(frozen=True)
class StageTraits:
    """Facts about a stage that the check and the batch generator act on.

    Attributes:
        clips: discards what lies outside its expected range on purpose (no overflow finding).
        stretches: rescales each image to its own min and max (no underuse finding).
        changes_scale: moves values to a new scale, so a later rescale compounds it.
        input_kind: ``"float"`` or ``"integer"`` when only one dtype kind is accepted.
        elementwise: each output value depends only on its input value, with parameters fixed
            before the batch is seen, so one call may process a whole stacked batch.
        random: draws from ``RunContext.rng``; runs on the training subset only unless
            the config opts other subsets in.
    """

    clips: bool = False
    stretches: bool = False
    changes_scale: bool = False
    input_kind: str | None = None
    elementwise: bool = False
    random: bool = False


class Stage:
    """Base class of every stage. Subclass, set the class facts, implement infer and apply."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]]
    #: the class's facts; a stage whose facts depend on its params overrides :meth:`traits`
    TRAITS: ClassVar[StageTraits] = StageTraits()
    summary: ClassVar[str] = ""
    #: params and input specs the contract test (preproc.testing.check_stage) runs on
    examples: ClassVar[list[dict[str, Any]]] = []
    #: the validated parameters; a subclass narrows this to its own ``Params`` model
    params: BaseModel

    def __init__(
        self,
        params: BaseModel | dict[str, Any] | None = None,
        *,
        expects: Expects | None = None,
        index: int = 0,
        line: int | None = None,
        column: int | None = None,
        context: StageContext | None = None,
    ) -> None:
        if params is None or isinstance(params, dict):
            params = self.Params.model_validate(params or {})
        self.params = params
        self.expects = expects
        self.index = index
        self.line = line
        self.column = column
        self.context = context or StageContext()
        self.setup()
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"{type(self).__name__} is immutable after construction; build a new stage "
                f"instead of setting {name!r}"
            )
        object.__setattr__(self, name, value)

    def traits(self) -> StageTraits:
        """The facts the check and the batch generator read (see :class:`StageTraits`)."""
        return self.TRAITS

    def setup(self) -> None:
        """Hook for derived values computed once from the params (e.g. loading a stats file)."""

    # --- to implement ---------------------------------------------------------------------
    def implied_input(self, spec: ValueSpec) -> Interval | None:
        """The input interval the stage implies by itself (E), or ``None`` for none."""
        return None

    def infer(self, spec: ValueSpec) -> ValueSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, x: Array, ctx: RunContext) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_findings(self, spec: ValueSpec) -> list[Finding]:
        """Stage-specific findings beyond the range rules (normalize-units, clipping, ...)."""
        return []

    # --- provided ---------------------------------------------------------------------------
    def apply_alone(self, x: Array) -> Array:
        """``apply`` with an empty context: the arithmetic of a deterministic stage by itself."""
        return self.apply(x, RunContext())

    def expected_input(self, spec: ValueSpec) -> Interval | None:
        if self.expects is not None and self.expects.range is not None:
            return Interval.of(self.expects.range)
        return self.implied_input(spec)

    def required_kind(self) -> str | None:
        if self.expects is not None:
            if self.expects.dtype is not None:
                return self.expects.dtype
            if self.expects.kind is not None:
                return self.expects.kind
        return self.traits().input_kind

    @property
    def step(self) -> ScaleStep:
        return ScaleStep(self.index, self.name, self.line)

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"stage {self.index} `{self.name}`{where}"

    def output_spec(
        self, spec: ValueSpec, interval: Interval, dtype: str | None = None, **kw: Any
    ) -> ValueSpec:
        """Build the output spec, recording this stage when it changes the scale."""
        changes: dict[str, Any] = {"interval": interval, "dtype": dtype or spec.dtype, **kw}
        if not spec.known and not changes.get("known"):
            changes["interval"] = spec.interval  # unknown in, unknown out
        if self.traits().changes_scale:
            return spec.scaled(self.step, **changes)
        return spec.with_(**changes)

    def __call__(
        self, x: Array, ctx: RunContext | None = None, *, guard: bool = False
    ) -> Array:
        """Apply the stage to one image; with ``guard``, check the output against ``ctx.spec``.

        Do not override: subclasses implement :meth:`apply`.
        """
        ctx = ctx if ctx is not None else RunContext()
        file, spec = ctx.file, (ctx.spec if guard else None)
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise StageError(
                f"expects an array of shape (H, W, C), got {getattr(x, 'shape', type(x))}",
                stage=self.index,
                stage_name=self.name,
                file=file,
            )
        try:
            out = self.apply(x, ctx)
        except PreprocError:
            raise
        except Exception as exc:  # name the stage and the file, keep the cause
            raise StageError(f"failed: {type(exc).__name__}: {exc}", stage=self.index,
                             stage_name=self.name, file=file) from exc
        if spec is not None:
            expected = self.infer(spec)
            lo, hi = _finite_minmax(out)
            if lo != lo:  # NaN
                raise StageError(
                    "produced NaN values", stage=self.index, stage_name=self.name, file=file
                )
            if not expected.interval.contains(Interval(lo, hi)):
                raise StageError(
                    f"produced values in [{lo:g}, {hi:g}] outside its inferred {expected.interval}",
                    stage=self.index,
                    stage_name=self.name,
                    file=file,
                )
            if expected.dtype is not None and dtypes.normalize_dtype(out.dtype) != expected.dtype:
                raise StageError(
                    f"produced dtype {out.dtype} but infers {expected.dtype}",
                    stage=self.index,
                    stage_name=self.name,
                    file=file,
                )
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


@runtime_checkable
class FitsStatistics(Protocol):
    """A stage that learns dataset statistics (featurewise ``normalize``).

    While :attr:`needs_fit` is true, the pipeline measures per-channel mean and std at the
    stage's position and puts ``fitted(mean, std)``, a new stage, in its place.
    """

    @property
    def needs_fit(self) -> bool: ...

    def fitted(self, mean: list[float], std: list[float]) -> Stage: ...


def _finite_minmax(x: Array) -> tuple[float, float]:
    if x.size == 0:
        return (0.0, 0.0)
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        return (float("nan"), float("nan"))
    return (float(x.min()), float(x.max()))
