"""What a batch iterator is built from: its listing, its pipeline, its per-image job, its
cache, and the checks that refuse a setting before any worker starts.

:mod:`preproc.batches.flow` runs these once per iterator; ``preproc cache`` builds its shards
from the same listing, pipeline and job, so cached samples are the samples ``flow`` would make.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dtypes
from ..dataset import discovery
from ..errors import PreprocError

if TYPE_CHECKING:
    from ..config.model import Config
    from ..spec import ValueSpec
    from ..stages.pipeline import Pipeline
    from .cache import Cache
    from .workers import ImageJob

__all__ = ["available_memory", "batch_dtype", "can_fork", "check_batch_memory", "check_mode",
           "check_shard", "list_subset", "make_job", "open_cache_for", "pipeline_for"]


def open_cache_for(config: Config, cache: str | Path | None, pipeline: Pipeline,
                   listing: discovery.Discovered) -> Cache | None:
    """The cache the batches of ``listing`` read (``cache``, else ``batches.cache`` relative to
    the config), or ``None``; opening it sets its fitted statistics on ``pipeline``."""
    if cache is None and config.batches.cache is not None:
        cache = Path(config.base_dir) / config.batches.cache  # a config's paths are its own
    if cache is None:
        return None
    from .cache import open_cache

    return open_cache(cache, config, pipeline, listing)


def list_subset(config: Config, subset: str | None) -> discovery.Discovered:
    """The files of ``subset`` as the batches list them: split by ``validation_split`` (whole
    groups with ``split_by``), DICOM frames expanded with ``source.dicom.frames: all``."""
    b = config.batches
    if config.source.directory is None:
        raise PreprocError("the config has no source.directory to read batches from")
    split_by = b.split_by
    listing = discovery.list_files(config.source.directory, classes=b.classes,
                                   extensions=config.source.extensions,
                                   follow_links=b.follow_links,
                                   validation_split=b.validation_split,
                                   subset=None if split_by else subset)
    if split_by is not None:  # whole groups per subset; a file's frames follow the file
        from ..dataset.splits import select_subset

        listing = select_subset(listing, split_by, b.validation_split, subset, b.seed)
    if config.source.dicom.frames == "all":
        from ..dataset.frames import expand_frames

        expand: Callable[[discovery.Discovered], discovery.Discovered] = expand_frames
        listing = expand(listing)
    return listing


def check_mode(subset: str | None, mode: str | None) -> None:
    """An explicit ``mode`` the subset cannot follow (the mode's own values are checked where
    the pipeline is chosen, :func:`~preproc.stages.pipeline.pipeline_mode`)."""
    if subset == "validation" and mode == "training":
        raise PreprocError("the validation subset runs the evaluation pipeline; to augment "
                           "it, give the random stages `apply_to: [training, validation]`")


def pipeline_for(config: Config, subset: str | None = None, seed: int = 0,
                  source: ValueSpec | None = None, mode: str | None = None) -> Pipeline:
    """The config's pipeline for ``subset``; where ``source.expect`` is silent, built on sampled
    headers (as ``preproc check`` does) so the runtime guard has intervals to check against.
    ``source``: a source spec already resolved (by the check), used as it is."""
    from ..dataset.sampling import source_spec
    from ..stages.pipeline import Pipeline

    if source is not None:
        return Pipeline.from_config(config, source=source, subset=subset, seed=seed, mode=mode)
    src = source_spec(config)
    # header findings are check's business; flow only needs the spec (with `voi: header` the
    # DICOM files arrive in [0, 1] whatever source.expect says of the stored values)
    if not src.known or config.source.dicom.voi == "header":
        from ..dataset.sampling import resolve_source

        src, _ = resolve_source(config)
    return Pipeline.from_config(config, source=src, subset=subset, seed=seed, mode=mode)


def make_job(config: Config, paths: list[str], pipeline: Pipeline, *,
             run_stages: bool) -> ImageJob:
    """The per-image work on ``paths`` (decode, colour, resize; the stages with
    ``run_stages``), as the config's batches do it."""
    from .workers import ImageJob

    b, expect = config.batches, config.source.expect
    draft = b.decode.jpeg_draft
    h, w = b.target_size
    return ImageJob(paths, b.color_mode, (h, w), b.interpolation,
                    b.keep_aspect_ratio, pipeline.stages, specs=pipeline.inputs,
                    bit_depth=expect.bit_depth if expect is not None else None,
                    run_stages=run_stages, dicom=config.source.dicom, seed=pipeline.seed,
                    subset=pipeline.subset, jpeg_draft=draft)


def check_shard(shard: Sequence[int] | None, b: Any) -> tuple[int, int] | None:
    """``shard`` as ``(rank, world_size)``, checked against the batches' settings ``b``."""
    if shard is None:
        return None
    rank, world = (int(v) for v in shard)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}")
    if b.shuffle and b.seed is None:
        raise ValueError("sharded shuffling needs batches.seed, so every rank draws the same order")
    return (rank, world)


def batch_dtype(pipeline: Pipeline, probed: np.dtype[Any]) -> np.dtype[Any]:
    """The batch dtype: the pipeline's output; float32 without stages (as Keras)."""
    if pipeline.stages:
        declared = pipeline.out_dtype
        return np.dtype(declared if declared is not None else probed)
    return np.dtype(np.float32 if dtypes.is_exact_in_float32(probed) else np.float64)


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    from ..config.model import physical_memory

    return physical_memory()


def check_batch_memory(shape: tuple[int, ...], slot_dtype: np.dtype[Any],
                        batch_dtype: np.dtype[Any], slots: int) -> None:
    """Refuse, as a config error naming the keys, batches that cannot fit in memory."""
    from ..errors import ConfigError

    per_batch = int(np.prod(shape))
    need = per_batch * (np.dtype(slot_dtype).itemsize * slots + np.dtype(batch_dtype).itemsize)
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"batches of {shape[0]} x {'x'.join(map(str, shape[1:]))} need {need} bytes "
            f"({slots} slot(s) of {np.dtype(slot_dtype).name} plus the {np.dtype(batch_dtype).name} "
            f"batch), but only {have} bytes of memory are available",
            path="batches.target_size",
            hint="lower batches.batch_size, batches.target_size or batches.prefetch")


def can_fork() -> bool:
    """Whether worker processes can be forked here (they inherit the job, not a pickle)."""
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()
