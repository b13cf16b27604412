"""The package's shape: no import circles, the engine never imports bpy, each engine stage imports
only what its ``__init__`` docstring allows (its "May import:" line), and no function over 80 lines.

Imports are read from the source (every ``import`` statement, also those inside functions, since a
function-level import is still a dependency), so the test needs neither bpy nor torch.
"""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "blender_latentwalk"
ENGINE = f"{PACKAGE}.engine"
MAX_FUNCTION_LINES = 80


def _modules(root=ROOT, package=PACKAGE):
    """{dotted module name: path} for every .py file of the package."""
    found = {}
    for folder, _, files in os.walk(os.path.join(root, package)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(module, path, modules):
    """Modules of the package that `module` imports (resolved, deepest existing module)."""
    is_package = path.endswith("__init__.py")
    base = module.split(".") if is_package else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                stem = ".".join(anchor + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph(root=ROOT, package=PACKAGE):
    modules = _modules(root, package)
    return {module: _imported(module, path, modules) for module, path in modules.items()}


def _without_parent_packages(graph):
    """Importing a.b.c runs a/__init__ and a/b/__init__: that is not an edge of the design, drop it."""
    return {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}


def import_circles(graph):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circle():
    circles = import_circles(_without_parent_packages(import_graph()))
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_finds_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")  # a function-level import counts
    (pkg / "c.py").write_text("from . import a\n")
    graph = _without_parent_packages(import_graph(str(tmp_path), "pkg"))
    assert import_circles(graph) == [["pkg.a", "pkg.sub.b"]]


def test_engine_never_imports_bpy():
    offenders = []
    for module, path in _modules().items():
        if not module.startswith(ENGINE):
            continue
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "bpy" or n.startswith(("bpy.", "bpy_extras")) for n in names):
                offenders.append(module)
    assert offenders == []


def _allowed_imports(package_path):
    """The stage names listed on the "May import:" line of a stage's __init__ docstring."""
    docstring = ast.get_docstring(ast.parse(open(package_path, encoding="utf-8").read())) or ""
    match = re.search(r"^May import:(.*)$", docstring, re.M)
    assert match, f"{package_path}: the docstring has no 'May import:' line"
    listed = match.group(1).strip().rstrip(".")
    return set() if listed in ("", "nothing else") else {name.strip() for name in listed.split(",")}


def _engine_stages():
    folder = os.path.join(ROOT, PACKAGE, "engine")
    return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n, "__init__.py")))


@pytest.mark.parametrize("stage", _engine_stages())
def test_each_engine_stage_imports_only_what_its_docstring_allows(stage):
    allowed = _allowed_imports(os.path.join(ROOT, PACKAGE, "engine", stage, "__init__.py"))
    top_level = {os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, PACKAGE, "engine"))
                 if n.endswith(".py")} - {"__init__", "__main__", "cli"}
    used = set()
    for module, targets in import_graph().items():
        if not module.startswith(f"{ENGINE}.{stage}"):
            continue
        for target in targets:
            if not target.startswith(ENGINE + ".") or target.startswith(f"{ENGINE}.{stage}"):
                continue
            used.add(target[len(ENGINE) + 1:].split(".")[0])
    assert used - top_level <= allowed, f"engine/{stage} imports {sorted(used - top_level - allowed)} too"


def test_functions_stay_short():
    """A function of the package (engine, add-on, shipped scripts) reads on one screen; nested functions
    count towards their parent."""
    long_ones = []
    for module, path in _modules().items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_ones.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long_ones == []
