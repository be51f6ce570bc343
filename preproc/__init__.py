"""preproc: image preprocessing for machine learning, correct by construction.

Check a pipeline statically, audit a dataset, and emit lossless batches::

    import preproc
    cfg = preproc.load_config("configs/xray-clahe.yaml")
    report = preproc.check(cfg)
"""


from ._version import __version__

from .auditing import AuditReport, audit
from .analysis import CheckWarning, check
from .config.model import Config, load_config
from .errors import (
    CheckFailed,
    ConfigError,
    DecodeError,
    LossyDecodeError,
    MissingDependencyError,
    PluginError,
    PreprocError,
    StageError,
)
from .findings import CODES, Finding, Report, Severity
from .batches.flow import BatchIterator, DecodeSkipWarning, RuntimeRangeWarning, flow
from .stages.pipeline import Pipeline
from .spec import Interval, ValueSpec
from .stages import (
    RunContext,
    Stage,
    StageRegistry,
    StageTraits,
    get_stage,
    register_stage,
    registered_stages,
)

__all__ = [
    "AuditReport",
    "BatchIterator",
    "CODES",
    "CheckFailed",
    "CheckWarning",
    "Config",
    "ConfigError",
    "DecodeError",
    "DecodeSkipWarning",
    "Finding",
    "Interval",
    "LossyDecodeError",
    "MissingDependencyError",
    "Pipeline",
    "PluginError",
    "PreprocError",
    "Report",
    "RunContext",
    "RuntimeRangeWarning",
    "Severity",
    "Stage",
    "StageError",
    "StageRegistry",
    "StageTraits",
    "ValueSpec",
    "__version__",
    "audit",
    "check",
    "flow",
    "get_stage",
    "load_config",
    "register_stage",
    "registered_stages",
]
