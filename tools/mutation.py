"""Mutation score of the modules that carry preproc's promises (not part of CI: minutes per module).

Each module is mutated by mutmut 3 in a scratch copy of the working tree, against only the test
files that exercise it, so one run takes minutes instead of hours. mutmut runs, per mutant, only
the tests that reach the mutated function.

Usage (mutmut is not a project dependency; keep it in its own environment)::

    python -m venv .venv-mutmut && . .venv-mutmut/bin/activate
    pip install -e '.[dev]' 'mutmut>=3.8,<4'
    python tools/mutation.py                  # every module in MODULES
    python tools/mutation.py guard dtypes     # some of them
    python tools/mutation.py --jobs 2 --keep  # parallel mutants; keep the scratch copies

It prints, per module, the mutants killed, survived and timed out and the score. Survivors are
listed by name; ``cd <scratch> && mutmut show NAME`` prints the diff of one. The survivors known
to be equivalent are listed with their reasons in ``tools/mutation-equivalents.md``; any other
survivor is a promise without a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# module -> the test files that hold its promises
MODULES: dict[str, tuple[str, list[str]]] = {
    "spec": ("preproc/spec.py", ["tests/test_mutation_spec.py", "tests/test_spec.py",
                                 "tests/test_stages.py", "tests/test_check.py"]),
    "check": ("preproc/analysis.py", ["tests/test_mutation_analysis.py", "tests/test_check.py",
                                      "tests/test_check_messages.py", "tests/test_edge_cases.py",
                                      "tests/test_joints.py", "tests/test_augment_check.py"]),
    "builtin": ("preproc/stages/builtin.py", ["tests/test_mutation_builtin.py",
                                              "tests/test_stages.py", "tests/test_check.py",
                                              "tests/test_edge_cases.py"]),
    "scaling": ("preproc/stages/scaling.py", ["tests/test_mutation_scaling.py",
                                              "tests/test_stages.py", "tests/test_check.py",
                                              "tests/test_edge_cases.py"]),
    "functional": ("preproc/stages/functional.py", ["tests/test_mutation_functional.py",
                                                    "tests/test_stages.py",
                                                    "tests/test_edge_cases.py"]),
    "dtypes": ("preproc/dtypes.py", ["tests/test_dtypes.py", "tests/test_check.py",
                                     "tests/test_stages.py"]),
    "png": ("preproc/io/png.py", ["tests/test_mutation_png.py", "tests/test_io_png.py",
                                  "tests/test_io_formats.py", "tests/test_io_read.py",
                                  "tests/test_io_errors.py", "tests/test_io_inflate.py"]),
    "pngfilter": ("preproc/io/pngfilter.py", ["tests/test_mutation_pngfilter.py",
                                              "tests/test_io_png.py", "tests/test_io_formats.py",
                                              "tests/test_io_read.py"]),
    "tiff": ("preproc/io/tiff.py", ["tests/test_mutation_tiff.py", "tests/test_io_tiff.py",
                                    "tests/test_io_formats.py", "tests/test_io_read.py",
                                    "tests/test_io_errors.py"]),
    "discovery": ("preproc/dataset/discovery.py", ["tests/test_mutation_discovery.py",
                                                   "tests/test_discovery.py",
                                                   "tests/test_sampling.py"]),
    "guard": ("preproc/batches/guard.py", ["tests/test_mutation_guard.py", "tests/test_guard.py",
                                           "tests/test_flow_fastpath.py", "tests/test_flow.py"]),
    "tally": ("preproc/dataset/tally.py", ["tests/test_mutation_tally.py", "tests/test_audit.py",
                                           "tests/test_audit_rules.py",
                                           "tests/test_audit_bad_input.py"]),
}


def _copy_tree(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def run_module(name: str, jobs: int, keep: bool) -> dict[str, Any]:
    target, tests = MODULES[name]
    tests = [t for t in tests if (ROOT / t).exists()]
    work = Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    _copy_tree(work)
    (work / "setup.cfg").write_text(
        "[mutmut]\nsource_paths = preproc\n"
        f"only_mutate = {target}\n"
        "also_copy =\n    configs\n    plugins\n"
        "pytest_add_cli_args_test_selection =\n" + "".join(f"    {t}\n" for t in tests)
        + "pytest_add_cli_args = -p no:cacheprovider -q\n", encoding="utf-8")
    # mutmut reads pyproject.toml first when it has a [tool.mutmut] table; it has none.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    print(f"{target}: mutating in {work} (progress in {work / 'mutmut-run.log'})", flush=True)
    with open(work / "mutmut-run.log", "w", encoding="utf-8") as log:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
                       cwd=work, env=env, check=False, stdout=log, stderr=subprocess.STDOUT)
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=work, env=env,
                   check=False, capture_output=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=work, env=env,
                             check=False, capture_output=True, text=True).stdout
    survivors = [line.split(":")[0].strip() for line in listing.splitlines()
                 if line.strip().endswith(": survived")]
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {"module": target, "work": str(work) if keep else None, "survivors": survivors,
            **{k: stats.get(k, 0) for k in ("killed", "survived", "timeout", "suspicious",
                                            "no_tests", "skipped", "total")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    print(f"{'module':32} {'killed':>6} {'surv':>5} {'t/o':>4} {'none':>5} {'score':>6}")
    for name in args.modules or list(MODULES):
        r = run_module(name, args.jobs, args.keep)
        tried = r["killed"] + r["survived"] + r["timeout"] + r["suspicious"] + r["no_tests"]
        caught = r["killed"] + r["timeout"]
        score = f"{100 * caught / tried:.1f}%" if tried else "-"
        print(f"{r['module']:32} {r['killed']:6} {r['survived']:5} {r['timeout']:4} "
              f"{r['no_tests']:5} {score:>6}", flush=True)
        for s in r["survivors"]:
            print(f"    survived: {s}")
        if r["work"]:
            print(f"    kept: {r['work']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
