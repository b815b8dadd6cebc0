"""The shape of the source tree: modules stay small, functions short, imports one-way.

Each module sits on a layer and may import only from its own layer and the ones below, so
that a change low in the stack never needs one higher up, and there are no cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "indoorseg"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50  # the whole def, decorators and docstring included

# Bottom to top. A module is on the layer of the longest entry it equals or lies inside.
LAYERS = [
    [
        "indoorseg",
        "indoorseg.errors",
        "indoorseg.files",
        "indoorseg.markdown",
        "indoorseg.progress",
        "indoorseg.workers",
    ],
    [
        "indoorseg.classes",
        "indoorseg.images",
        "indoorseg.machine",
        "indoorseg.metrics",
        "indoorseg.runtime",
        "indoorseg.models",
        "indoorseg.pretrained",
        "indoorseg.distributed",
        "indoorseg.regions",
    ],
    ["indoorseg.config"],
    ["indoorseg.data"],
    ["indoorseg.checkpoint", "indoorseg.onnx_file", "indoorseg.runlog", "indoorseg.scorecard"],
    ["indoorseg.backends"],
    ["indoorseg.inference"],
    ["indoorseg.evaluation"],
    ["indoorseg.epoch_time"],
    ["indoorseg.engine"],
    ["indoorseg.training"],
    ["indoorseg.adaptation"],
    ["indoorseg.deploy.sources", "indoorseg.deploy.parity", "indoorseg.deploy.predict"],
    ["indoorseg.deploy.export"],
    ["indoorseg.deploy.benchmark"],
    ["indoorseg.deploy"],
    ["indoorseg.reproduce.budgets", "indoorseg.reproduce.results", "indoorseg.reproduce.report"],
    ["indoorseg.reproduce.floors", "indoorseg.reproduce.plots", "indoorseg.reproduce.runs"],
    ["indoorseg.reproduce.study"],
    ["indoorseg.reproduce"],
    ["indoorseg.app.server"],
    ["indoorseg.app"],
    ["indoorseg.cli", "indoorseg.__main__"],
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(SRC.rglob("*.py"))}


def layer_of(name: str) -> int:
    """The layer of the longest entry that ``name`` is or lies inside."""
    matches = [
        (len(entry), level)
        for level, entries in enumerate(LAYERS)
        for entry in entries
        if name == entry or name.startswith(entry + ".")
    ]
    assert matches, f"{name} is on no layer: add it to LAYERS in {__file__}"
    return max(matches)[1]


def imports(tree: ast.Module, name: str) -> set[str]:
    """Modules of the package that ``name`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from indoorseg.data import prepared` imports the module indoorseg.data.prepared;
            # `from indoorseg.data.prepared import read_info` the module itself
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules_cache else node.module)
    return {m for m in found if m in modules_cache and m != name}


modules_cache = modules()


def test_no_module_is_too_long():
    too_long = {
        name: len(path.read_text().splitlines())
        for path in SRC.rglob("*.py")
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
        for name in [module_name(path)]
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_function_is_too_long():
    too_long = []
    for name, tree in modules_cache.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {node.end_lineno - start + 1}")
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


@pytest.mark.parametrize("name", sorted(modules_cache))
def test_imports_go_down_the_layers(name):
    upward = [m for m in imports(modules_cache[name], name) if layer_of(m) > layer_of(name)]
    assert not upward, f"{name} (layer {layer_of(name)}) imports from above: {upward}"


def test_no_import_cycles():
    graph = {name: imports(tree, name) for name, tree in modules_cache.items()}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_formatting_is_switched_off_to_squeeze_lines():
    """The formatter has the last word on layout: a line kept long by ``fmt: skip`` (or
    ``fmt: off``) hides a function or a module that should be split instead."""
    root = SRC.parents[1]
    marker = "# fmt: " + "skip"  # spelled in two parts so that this file does not match
    switched_off = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("src", "tests", "scripts")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if marker in line or "# fmt: " + "off" in line
    ]
    assert not switched_off, f"formatting switched off at {switched_off}"
