"""The package's import arrows point down only, and nothing imports in a circle.

Layers, bottom to top: the floor (dtypes, errors, types, spec, findings, version), ``io``,
``dataset``, ``stages``, ``testing`` (the stage contract for plugin authors), ``config``,
``analysis`` (the static check), the capabilities ``batches`` and ``audit`` side by side,
``commands``, and the package root. Imports made inside functions count as much as those at the
top of a module; only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "preproc"

LAYERS = {
    "preproc._version": 0, "preproc.dtypes": 0, "preproc.errors": 0, "preproc.types": 0,
    "preproc.spec": 0, "preproc.findings": 0,
    "preproc.io": 1,
    "preproc.dataset": 2,
    "preproc.stages": 3, "preproc.testing": 3.5,
    "preproc.config": 4,
    "preproc.analysis": 5,
    "preproc.batches": 6, "preproc.auditing": 6,
    "preproc.commands": 7,
    "preproc": 8, "preproc.__main__": 9,
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = path
    return out


MODULES = modules()


def room(module: str) -> str:
    """The layer entry a module belongs to: its top-level sub-package or its own name."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def arrows(module: str, path: Path) -> set[str]:
    """Modules of this package that ``module`` imports, anywhere in its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("preproc") and target != module:
                found.add(target)
    return found


GRAPH = {m: arrows(m, p) for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if room(m) not in LAYERS]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrows_point_down(module):
    here = room(module)
    # floor modules may use each other (the cycle test keeps them apart); every other room may
    # only import rooms strictly below it
    upward = [t for t in GRAPH[module] if room(t) != here and LAYERS[room(t)] >= LAYERS[here]
              and not LAYERS[here] == LAYERS[room(t)] == 0]
    assert not upward, f"{module} imports {upward}, which are not below it"


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_top_level_stays_small():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, sorted(top)


def test_root_does_not_shadow_its_modules():
    import preproc

    shadowed = [name for name in preproc.__all__
                if f"preproc.{name}" in MODULES and callable(getattr(preproc, name))]
    assert not shadowed
