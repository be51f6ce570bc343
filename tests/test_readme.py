"""Every example in README.md runs as printed.

The README's fenced code blocks are read in order and run:

* ``python`` blocks run in a fresh interpreter, in a scratch folder that holds the quick start's
  ``pipeline.yaml`` (the README's own block) and a small 12-bit dataset built here;
* ``bash``/``text`` lines that start with ``preproc`` or ``$ preproc`` run through
  ``preproc.commands.main`` in the same folder, where ``configs/`` and ``plugins/`` are copies of the
  repository's own. The exit code must be 0 unless the line
  says otherwise with a trailing ``# exit N``; a ``text`` block's lines after the command are what
  the command must print (stdout, then stderr);
* ``yaml`` and ``toml`` blocks must parse.

A block that only illustrates (it needs a trained model, a cluster, ...) is marked, visibly in
the README's source, with ``<!-- not run: REASON -->`` on the line before its fence. Dotted names
``preproc.x.y`` the README mentions anywhere must import, so a moved module cannot linger there.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from builders import write_png

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->")
EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: str | None  # the reason given in a "not run" marker

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the "not run" marker just above each."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        above = lines[start - 1] if start else ""
        marker = NOT_RUN.search(above)
        out.append(Block(fence.group(1), "\n".join(body) + "\n", start + 1,
                         marker.group("reason") if marker else None))
        i += 1
    return out


BLOCKS = blocks(README.read_text(encoding="utf-8"))


def _of(*langs: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang in langs]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    exit_code: int
    output: str | None  # expected stdout for ``text`` blocks


def commands(block: Block) -> list[Command]:
    """The ``preproc ...`` command lines of a shell or text block."""
    found: list[Command] = []
    lines = block.code.splitlines()
    for k, raw in enumerate(lines):
        line = raw.strip().removeprefix("$ ")
        if not line.startswith("preproc "):
            continue
        wanted = EXIT.search(line)
        argv = shlex.split(line, comments=True)[1:]
        output = None
        if block.lang == "text":
            rest = []
            for nxt in lines[k + 1:]:
                if nxt.startswith("$ "):
                    break
                rest.append(nxt)
            output = "\n".join(rest).strip("\n")
        found.append(Command(argv, int(wanted.group("code")) if wanted else 0, output))
    return found


# ------------------------------------------------------------------------------- the scratch folder
def quick_start_yaml() -> str:
    """The README's quick-start ``pipeline.yaml``: the first yaml block that names ``version``."""
    for b in _of("yaml"):
        if b.code.startswith("version: 1\nname: chest-xray"):
            return b.code
    raise AssertionError("README.md has no quick-start pipeline.yaml block")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder with the quick start's pipeline.yaml and the 12-bit chest dataset it points at."""
    root = tmp_path_factory.mktemp("readme")
    (root / "pipeline.yaml").write_text(quick_start_yaml(), encoding="utf-8")
    for shipped in ("configs", "plugins"):  # examples may name the repository's own files
        shutil.copytree(ROOT / shipped, root / shipped, ignore=shutil.ignore_patterns("__pycache__"))
    rng = np.random.default_rng(0)
    for label in ("normal", "pneumonia"):
        folder = root / "data" / "chest" / label
        folder.mkdir(parents=True)
        for k in range(5):
            img = rng.integers(0, 4096, (48, 40), dtype=np.uint16)
            img[0, 0], img[-1, -1] = 0, 4095  # the whole 12-bit range, as scans have
            write_png(folder / f"{label}-{k}.png", img, sbit=12)
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# ------------------------------------------------------------------------------------ the tests
def test_the_readme_has_examples_of_each_kind():
    assert _of("python") and _of("yaml") and _of("text")
    assert sum(len(commands(b)) for b in _of("bash", "text")) >= 4
    skipped = [b for b in BLOCKS if b.skip]
    assert len(skipped) <= 5, f"too many blocks marked 'not run': {[str(b) for b in skipped]}"


def test_a_not_run_marker_names_a_reason():
    for b in BLOCKS:
        if b.skip is not None:
            assert b.skip, f"{b}: say why the block is not run"


@pytest.mark.parametrize("block", _of("python"), ids=str)
def test_python_block_runs(block: Block, scratch: Path):
    if block.skip:
        tree = ast.parse(block.code, str(block))  # still valid Python, and its imports exist
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(imports, []), str(block), "exec"), {})
        pytest.skip(block.skip)
    done = subprocess.run([sys.executable, "-c", block.code], cwd=scratch, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{block} failed:\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("block", _of("bash", "text"), ids=str)
def test_command_lines_run(block: Block, scratch: Path, capsys, monkeypatch):
    found = commands(block)
    if block.skip:
        pytest.skip(block.skip)
    if not found:
        pytest.skip("no preproc command line in this block")
    from preproc.commands import main

    for cmd in found:
        monkeypatch.chdir(scratch)
        capsys.readouterr()
        code = main(cmd.argv)
        out, err = capsys.readouterr()
        shown = " ".join(cmd.argv)
        assert code == cmd.exit_code, (
            f"{block}: `preproc {shown}` exited {code}, the README says {cmd.exit_code}\n"
            f"{out[-2000:]}{err[-2000:]}")
        if cmd.output is not None:
            printed = (out + err).strip("\n")  # a terminal shows both streams
            assert printed == cmd.output, f"{block}: `preproc {shown}` prints otherwise"


@pytest.mark.parametrize("block", _of("yaml"), ids=str)
def test_yaml_block_parses(block: Block):
    from preproc.config.yamlsafe import load_yaml

    assert isinstance(load_yaml(str(block), block.code).data, dict)


@pytest.mark.parametrize("block", _of("toml"), ids=str)
def test_toml_block_parses(block: Block):
    tomllib.loads(block.code)


def test_the_quick_start_config_is_clean(scratch: Path):
    import preproc

    report = preproc.check(scratch / "pipeline.yaml")
    assert not report.failed, report.format_text()


def test_dotted_names_in_the_readme_exist():
    text = README.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"\bpreproc(?:\.[A-Za-z_]\w*)+", text)))
    assert names
    missing = []
    for name in names:
        parts = name.split(".")
        obj, k = None, len(parts)
        while k:
            try:
                obj = importlib.import_module(".".join(parts[:k]))
                break
            except ModuleNotFoundError:
                k -= 1
        for attr in parts[k:]:
            obj = getattr(obj, attr, None)
        if obj is None:
            missing.append(name)
    assert not missing, f"README.md names what does not exist: {missing}"
