"""What every finding code means, a minimal example and the fix.

One source for ``preproc explain CODE`` and the README's list of finding codes
(``python -m preproc.commands._catalogue --markdown`` prints that section; a test keeps the README in step).
Pipeline codes carry a config that triggers them (tests check that it does); data codes carry
the situation in a dataset that triggers them.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

from ..findings import CODES

__all__ = ["EXPLANATIONS", "Explanation", "explain", "markdown"]


@dataclass(frozen=True)
class Explanation:
    code: str
    example: str  # a YAML config (pipeline codes) or a description of data (data codes)
    fix: str
    is_config: bool = True


def _cfg(expect: str, stages: str, extra: str = "") -> str:
    return f"version: 1\nsource:\n  expect: {expect}\nstages:\n{stages}{extra}"


_ROWS = [
    Explanation(
        "range-overflow",
        _cfg("{dtype: uint16}", "  - rescale: {factor: 1/255}     # 16-bit data: values up to 257\n"),
        "Scale by the data's true range: `rescale: {factor: 1/65535}`, or "
        "`rescale_intensity: {in_range: bit_depth}` which reads the bit depth for you.",
    ),
    Explanation(
        "compounded-scaling",
        _cfg("{dtype: uint8}", "  - clahe: {}                     # already returns [0, 1]\n"
             "  - rescale: {factor: 1/255}     # squeezes it into [0, 0.004]\n"),
        "Remove the second scaling stage, or move it before the stage that already scaled.",
    ),
    Explanation(
        "range-underuse",
        _cfg("{dtype: uint16, bit_depth: 12}",
             "  - rescale: {factor: 1/65535}   # 12-bit data lands in [0, 0.0625]\n"),
        "Scale by the stored bit depth: `rescale: {factor: 1/4095}` or "
        "`rescale_intensity: {in_range: bit_depth}`.",
    ),
    Explanation(
        "normalize-units",
        _cfg("{dtype: uint8}",
             "  - normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}\n"),
        "Rescale to [0, 1] before normalizing with [0, 1] statistics, or give mean and std in "
        "the units the stage receives.",
    ),
    Explanation(
        "dtype-mismatch",
        _cfg("{dtype: uint8, range: [0, 1]}", "  - gamma: {gamma: 2.2}          # needs floats\n"),
        "Convert first: `rescale: {factor: 1/255}` or `to_dtype: {dtype: float32, scale: true}`.",
    ),
    Explanation(
        "clipping",
        _cfg("{dtype: uint16, bit_depth: 12}", "  - to_dtype: {dtype: uint8}     # 4095 saturates at 255\n"),
        "Map the range explicitly before casting (`to_dtype: {dtype: uint8, scale: true}` "
        "or `rescale_intensity`).",
    ),
    Explanation(
        "degenerate-output",
        _cfg("{dtype: uint8}", "  - rescale: {factor: 1/255}\n"
             "  - window: {center: 400, width: 200}  # bone window on [0, 1] data\n"),
        "Give the window or clip bounds in the units the stage receives, or move it before "
        "the rescale.",
    ),
    Explanation(
        "precision-loss",
        _cfg("{dtype: uint16}", "  - to_dtype: {dtype: uint8, scale: true}   # 65536 levels to 256\n"),
        "Keep a wider dtype (uint16 or float32), or accept the loss with "
        "`checks: {ignore: [precision-loss]}`.",
    ),
    Explanation(
        "unbounded-input",
        _cfg("{dtype: uint8}", "  - normalize: {mode: samplewise}   # unbounded output\n"
             "  - gamma: {gamma: 2.2}\n"),
        "Bound the values first with a `clip` stage, or declare `source.expect.range`.",
    ),
    Explanation(
        "source-unknown",
        "version: 1\nstages:\n  - rescale: {factor: 1/255}\n",
        "Declare `source.expect` (dtype, bit_depth, range), or point `source.directory` at "
        "the data so `preproc check` samples file headers.",
    ),
    Explanation(
        "bit-depth-mismatch",
        "`source.expect: {dtype: uint8}` but the folder holds 16-bit PNGs "
        "(or a PNG's sBIT says 10 bits where `bit_depth: 12` is declared).",
        "Fix the declaration (run `preproc audit DIR`, which prints a matching `source.expect` "
        "block) or convert the odd files.",
        is_config=False,
    ),
    Explanation(
        "mixed-bit-depth",
        "One class folder holds 8-bit PNGs, another 16-bit TIFFs.",
        "Convert the dataset to one dtype and bit depth, or split it; a single rescale cannot "
        "be right for both.",
        is_config=False,
    ),
    Explanation(
        "effective-bit-depth",
        "uint16 files whose largest value is 4095: 12 bits of content in a 16-bit container.",
        "Declare `bit_depth: 12` and scale by 1/4095 (or `rescale_intensity: {in_range: "
        "bit_depth}`).",
        is_config=False,
    ),
    Explanation(
        "out-of-declared-range",
        "`source.expect: {dtype: uint16, bit_depth: 12}` but some files hold values above 4095.",
        "Find the files in the report's `files.csv`; fix the declaration or the files.",
        is_config=False,
    ),
    Explanation(
        "lossy-decode",
        "A 12-bit JPEG or an image mode that can only be read through an 8-bit conversion.",
        "Convert the file losslessly (16-bit PNG or TIFF) or accept the loss by excluding it.",
        is_config=False,
    ),
    Explanation(
        "unreadable-file",
        "A truncated PNG, a zero-byte file, or a text file named `.png`.",
        "Replace or remove the file; `batches.on_error: skip` drops it at run time.",
        is_config=False,
    ),
    Explanation(
        "no-images",
        "`source.directory` points at an empty folder, or at folders whose files all have "
        "extensions outside `source.extensions`.",
        "Point `source.directory` at the dataset (one sub-folder per class) and list the "
        "extensions its files have.",
        is_config=False,
    ),
    Explanation(
        "files-ignored",
        "A folder of `.dcm` files with the default `source.extensions` (Keras' list, which has "
        "no `dcm`): every DICOM file is silently left out.",
        "Add the extension to `source.extensions`, e.g. `extensions: [dcm]`.",
        is_config=False,
    ),
    Explanation(
        "empty-class",
        "A class folder with no image in it (or only unreadable ones).",
        "Add images, remove the folder, or list the wanted classes in `batches.classes`.",
        is_config=False,
    ),
    Explanation(
        "class-imbalance",
        "One class has 5,000 images and another 300.",
        "Rebalance, or weight the loss; the audit's per-class table shows the counts.",
        is_config=False,
    ),
    Explanation(
        "duplicate-image",
        "The same pixels appear as `a/001.png` and `b/017.png`.",
        "Remove duplicates, especially across classes and across the validation split.",
        is_config=False,
    ),
    Explanation(
        "constant-image",
        "An image whose every pixel is 0 (a blank export).",
        "Remove it; it carries no signal and breaks per-image stretching.",
        is_config=False,
    ),
    Explanation(
        "near-duplicate",
        "`train/cat/001.png` and `train/cat/001_small.jpg`: the same photo saved at half size "
        "as a JPEG (quality 60); or a 16-bit X-ray and its 8-bit export.",
        "Keep one file per cluster (files.csv gives the `cluster` number); tune "
        "`checks.audit.near_duplicate_distance` if pictures that differ are grouped.",
        is_config=False,
    ),
    Explanation(
        "split-leakage",
        "`batches.validation_split: 0.2` on DICOM files with several slices per PatientID: "
        "the per-file split puts one patient in both subsets; or `cat/0003.png` (validation) is "
        "a re-encoded copy of `cat/0871.png` (training).",
        "Split by patient with `batches.split_by: {dicom: PatientID}` (or `{pattern: REGEX}` "
        "with a named group `group` in the file path); remove one of two copies of a picture. "
        "Validation scores are inflated while a patient or a picture is in both subsets.",
        is_config=False,
    ),
    Explanation(
        "label-conflict",
        "`cat/017.png` and `dog/203.png` hold the same picture (identical or resized).",
        "Decide the right class and delete the other copy.",
        is_config=False,
    ),
    Explanation(
        "blurry",
        "One image of a sharp class is out of focus: its sharpness (Laplacian variance over "
        "image variance) is 10x below the class median.",
        "Remove or re-acquire it; tune `checks.audit.blur_factor` or `checks.audit.k` if the "
        "class is meant to vary.",
        is_config=False,
    ),
    Explanation(
        "dark",
        "A 12-bit X-ray whose values reach only 800 of 4095 in a class whose median image is "
        "at 45% of the range.",
        "Check exposure or windowing of these files; tune `checks.audit.brightness_factor`.",
        is_config=False,
    ),
    Explanation(
        "light",
        "An over-exposed 8-bit photo at 90% brightness in a class whose median is 45%.",
        "Check exposure of these files; tune `checks.audit.brightness_factor`.",
        is_config=False,
    ),
    Explanation(
        "low-information",
        "A blank placeholder of one grey level with faint noise: about 1 bit of entropy where "
        "the class has 6.",
        "Remove failed exports and placeholders; tune `checks.audit.entropy_margin`.",
        is_config=False,
    ),
    Explanation(
        "odd-size",
        "A 28x28 thumbnail among 224x224 images.",
        "Check the file belongs to the dataset; tune `checks.audit.size_factor`.",
        is_config=False,
    ),
    Explanation(
        "odd-aspect-ratio",
        "A 448x112 strip among square images.",
        "Check the file belongs to the dataset, or pad instead of resizing; tune "
        "`checks.audit.aspect_factor`.",
        is_config=False,
    ),
    Explanation(
        "grayscale-in-rgb",
        "An RGB PNG whose red, green and blue channels are equal at every pixel.",
        "Store it with one channel, or check the colour export.",
        is_config=False,
    ),
    Explanation(
        "runtime-range-violation",
        "A plugin stage whose real output leaves the interval its `infer` announced, seen by "
        "the runtime guard on a sampled batch.",
        "Fix the stage's `infer` (the contract test `preproc.testing.check_stage` finds it), or "
        "the data that breaks the declared source.",
        is_config=False,
    ),
    Explanation(
        "dicom-stored-units",
        "CT files with RescaleIntercept -1024 read with `source.dicom: {modality_lut: false}`, "
        "then `- window: {center: 40, width: 400}`: a window in HU applied to stored values.",
        "Leave `source.dicom.modality_lut: true` (the default) so the stage sees HU, or scale "
        "stored values by bit depth with `rescale_intensity: {in_range: bit_depth}`.",
        is_config=False,
    ),
    Explanation(
        "mixed-rescale",
        "DICOM files with RescaleSlope 1 / RescaleIntercept -1024 next to files with "
        "RescaleIntercept 0, read with `source.dicom: {modality_lut: false}`.",
        "Leave `source.dicom.modality_lut: true` (the default): every file then arrives in "
        "modality units whatever its slope and intercept.",
        is_config=False,
    ),
    Explanation(
        "non-finite-output",
        _cfg("{dtype: uint8}", "  - rescale: {factor: 1.0, offset: 1e308}   # past float32's 3.4e38\n"),
        "Keep factors, offsets, mean and std within floating point: the output must stay "
        "finite (float32 holds magnitudes up to 3.4e38; a std near 0 divides by almost zero).",
    ),
    Explanation(
        "non-finite-values",
        "A float32 TIFF in which some pixels are NaN or infinite (a failed reconstruction or a "
        "division by zero upstream); the audit counts them per file, and a batch holding them "
        "stops the run.",
        "Repair or drop the files; or replace the values on purpose before they reach preproc "
        "(NaN has no place in a range check or a mean).",
        is_config=False,
    ),
    Explanation(
        "fill-out-of-range",
        _cfg("{dtype: uint8}", "  - rescale: {factor: 1/255}\n"
             "  - random_affine: {rotation: 20, fill_mode: constant, cval: 255}  # raw units\n"),
        "Give `cval` in the units the stage receives (1.0 after a 1/255 rescale), move the "
        "augmentation before the rescale, or use `fill_mode: nearest | reflect | wrap`.",
    ),
    Explanation(
        "augment-units",
        _cfg("{dtype: uint8}", "  - rescale: {factor: 1/255}\n"
             "  - channel_shift: {intensity: 30}   # Keras' raw 0-255 units, after the rescale\n"),
        "Give the amount in the units the stage receives (30/255 after the rescale), or move "
        "the stage before the rescale, where Keras applies it.",
    ),
    Explanation(
        "pipeline-mismatch",
        _cfg("{dtype: uint8}", "  - center_crop: {size: [200, 200], apply_to: [training]}\n"
             "  - rescale: {factor: 1/255}\n",
             "batches:\n  validation_split: 0.2     # validation images stay 256x256\n"),
        "Give every random stage that changes the size or channels an evaluation twin "
        "(`random_crop` has `center_crop`), drop `apply_to` from size-changing stages, or add "
        "a `to_dtype` after the random stages so both pipelines hand the model one dtype.",
    ),
    Explanation(
        "cache-stale",
        "`batches.cache` names a folder written by `preproc cache` for another config (other "
        "target_size, colour mode, stages before the cut), another preproc version, or before "
        "a source file changed (size or mtime; its content with `preproc cache --verify`).",
        "Rebuild it with `preproc cache CONFIG DIR` (complete shards of unchanged files are "
        "kept), or remove `batches.cache` to read the files.",
        is_config=False,
    ),
    Explanation(
        "jpeg-draft",
        _cfg("{dtype: uint8}", "  - rescale: {factor: 1/255}\n",
             "batches:\n  decode: {jpeg_draft: true}   # DCT-domain downscaling\n"),
        "Informational: keep it for speed on large JPEGs; set `jpeg_draft: false` where batches "
        "must equal Keras' element for element.",
    ),
    Explanation(
        "class-confound",
        "Class `a` holds 3 MONOCHROME1 radiographs, class `b` 4 MONOCHROME2 ones: "
        "\"MONOCHROME1: class a 3/3, class b 0/4\" (an error: the property alone separates "
        "the classes). Also for modality, manufacturer, transfer syntax, bit depth, pixel "
        "spacing, image size and lossy compression.",
        "Balance the property across classes (collect each class from the same scanners and "
        "exports) or harmonise the files; the report's per-class DICOM table shows the split.",
        is_config=False,
    ),
    Explanation(
        "lossy-source",
        "A CT stored as JPEG 2000 (1.2.840.10008.1.2.4.91) with LossyImageCompression = 01, "
        "found from the header, in `audit --quick` too.",
        "Prefer the original lossless studies; if lossy files must stay, make sure they are "
        "spread evenly over the classes (see `class-confound` on `lossy`).",
        is_config=False,
    ),
    Explanation(
        "multi-frame",
        "An RT dose or ultrasound file with NumberOfFrames = 15 under the default "
        "`source.dicom.frames: first`: 14 frames are dropped.",
        "Set `source.dicom.frames: all` to make every frame a sample, or keep `first` "
        "knowingly and ignore the code.",
        is_config=False,
    ),
    Explanation(
        "mixed-photometric",
        "With `source.dicom.monochrome1: keep`, class `a` holds MONOCHROME1 and MONOCHROME2 "
        "files: bone is bright in some and dark in others.",
        "Use `source.dicom.monochrome1: invert` (the default), which turns MONOCHROME1 into "
        "MONOCHROME2.",
        is_config=False,
    ),
    Explanation(
        "inverted-twice",
        "CR radiographs stored MONOCHROME1 (white is low) under the default "
        "`source.dicom.monochrome1: invert`, and a pipeline with `- invert: {max: source}` "
        "written for the raw files: decode already made them MONOCHROME2, the stage flips "
        "them back.",
        "Remove the `invert` stage, or set `source.dicom.monochrome1: keep` and invert in the "
        "pipeline (one inversion, in one place).",
        is_config=False,
    ),
    Explanation(
        "config-invalid",
        "version: 1\nstages:\n  - rescal: {factor: 1/255}    # typo: did you mean `rescale`?\n",
        "Fix the key the message names at its line; `preproc schema` gives editors completion.",
    ),

]

EXPLANATIONS: dict[str, Explanation] = {row.code: row for row in _ROWS}


def explain(code: str) -> str:
    """Terminal text for one code. Raises KeyError for an unknown code."""
    info, ex = CODES[code], EXPLANATIONS[code]
    label = "Minimal config that triggers it" if ex.is_config else "When it shows up"
    body = textwrap.indent(ex.example.rstrip(), "    ")
    return (
        f"{code} (default severity: {info.severity})\n\n{info.meaning}.\n\n{label}:\n{body}\n\n"
        f"Fix: {ex.fix}\n"
    )


def markdown() -> str:
    """The README's finding-code section."""
    lines = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    for code, info in CODES.items():
        fix = EXPLANATIONS[code].fix.replace("|", "\\|")
        lines.append(f"| `{code}` | {info.severity} | {info.meaning} | {fix} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    if "--markdown" in sys.argv:
        sys.stdout.write(markdown())
