"""The DICOM step of ``preproc demo``: a CT window on stored values, then on Hounsfield units.

Uses pydicom's own CT test file (``CT_small``, RescaleIntercept -1024) when pydicom is
installed; otherwise says how to get it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

__all__ = ["dicom_step"]

_CONFIG = """\
# A CT soft-tissue window (center 40, width 400 HU).
version: 1
name: {name}
source:
  directory: ct
  extensions: [dcm]
  dicom: {{modality_lut: {lut}}}
stages:
  - window: {{center: 40, width: 400}}
batches: {{target_size: [128, 128], color_mode: grayscale, class_mode: null, workers: 0}}
"""


def _ct_file() -> Path | None:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return None
    found = get_testdata_file("CT_small.dcm", download=False)
    return Path(found) if found else None


def _white(config: Path) -> float:
    from ..batches.flow import flow

    with flow(config, check=False) as it:  # the wrong config too: show what it would produce
        x = it.batch_with_indices(0)[0]  # the x of batch 0 (class_mode: null yields x alone)
    return float((x >= 1).mean())


def dicom_step(root: Path, cli: Callable[[list[str]], int]) -> bool:
    """Run the DICOM step in ``root``; ``True`` when it showed what it should (or was skipped)."""
    source = _ct_file()
    if source is None:
        print("    skipped: needs pydicom (pip install 'preproc[dicom]')")
        return True
    (root / "ct" / "scan").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, root / "ct" / "scan" / source.name)
    stored, hu = root / "ct-stored.yaml", root / "ct-hu.yaml"
    stored.write_text(_CONFIG.format(name="ct-stored-values", lut="false"))
    hu.write_text(_CONFIG.format(name="ct-hounsfield", lut="true"))
    rc_stored = cli(["check", str(stored)])
    rc_hu = cli(["check", str(hu), "--trace"])
    white_stored, white_hu = _white(stored), _white(hu)
    print(f"\n    -> the window on stored values would be {white_stored:.1%} white; "
          f"in HU (source.dicom.modality_lut, the default) it is {white_hu:.1%} white.")
    return rc_stored == 1 and rc_hu == 0 and white_hu < white_stored
