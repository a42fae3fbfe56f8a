"""The project's import rules, read from the source (the last one alone imports `hooks`):

- other apps reach the engine only through `hooks` (its public API) and `hooks.models`;
- the engine imports nothing from the project's other packages;
- inside the engine, imports go one way, down its layers (`ENGINE_LAYERS`);
- no import circle anywhere, counting imports inside functions too;
- an import inside a function says why in a comment (app loading, usually);
- `hooks.__all__` is what hooks/__init__.py imports, each name from the module that
  defines it under that name.

`python tests/test_layout.py [ROOT]` prints the violations found under ROOT.
Tests and the benchmark are harnesses: they may reach into the engine's modules.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESSES = {"tests", "bench"}
ENGINE = "hooks"
OPEN_TO_APPS = {"hooks", "hooks.models"}
# The engine's layers, lowest first: a module imports from its own layer and the ones
# below it, never from one above. The lowest is the top-level modules (hooks/*.py:
# models, catalog, conf, checks, slots, ssrf, encryption, ...).
ENGINE_LAYERS = ("hooks", "hooks.outgoing", "hooks.outbox", "hooks.worker", "hooks.tools")
# Entry points: the public API (hooks/__init__.py) and Django's fixed places (admin.py,
# apps.py, urls.py, management/), where Django and the other apps come in. They may import
# from any layer; no layer imports them.
ENTRY_POINTS = ("hooks.admin", "hooks.apps", "hooks.urls", "hooks.management")
# Known arrows back up, each with what removes it: (importing module, imported module).
ALLOWED_BACK_UP: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    in_function: bool
    commented: bool


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party(root: Path) -> dict[str, Path]:
    """Every module of the project's packages (folders with an __init__.py), migrations
    left out."""
    modules = {}
    for init in sorted(root.glob("*/__init__.py")):
        package = init.parent
        if package.name.startswith("."):
            continue
        for path in package.rglob("*.py"):
            if "migrations" in path.parts or ".venv" in path.parts:
                continue
            modules[_module_name(path, root)] = path
    return modules


def _resolve(module: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """`from module import a, b`: the submodules a and b when they are modules, else
    the module itself."""
    targets = {f"{module}.{n}" if f"{module}.{n}" in known else module for n in names}
    return sorted(targets)


def _has_comment(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import's line(s), or just above the block of imports it is in."""
    span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
    above = node.lineno - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        above -= 1
    return any("#" in line for line in span) or (
        above >= 0 and lines[above].strip().startswith("#")
    )


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    text = path.read_text()
    lines = text.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                targets = _resolve(child.module, [a.name for a in child.names], known)
            for target in targets:
                if target.split(".")[0] in {m.split(".")[0] for m in known}:
                    found.append(
                        Import(
                            module, target, child.lineno, in_function, _has_comment(lines, child)
                        )
                    )
            visit(child, inside)

    visit(ast.parse(text), False)
    return found


def all_imports(root: Path) -> list[Import]:
    known = first_party(root)
    return [imp for module, path in known.items() for imp in imports_of(module, path, known)]


def private_engine_imports(root: Path) -> list[str]:
    """Modules outside hooks/ (harnesses aside) importing hooks.<x> other than models."""
    return [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in all_imports(root)
        if imp.source.split(".")[0] not in {ENGINE, *HARNESSES}
        and imp.target.split(".")[0] == ENGINE
        and imp.target not in OPEN_TO_APPS
    ]


def engine_imports_of_other_packages(root: Path) -> list[str]:
    """Modules of the engine importing any module of the project outside hooks/."""
    return [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in all_imports(root)
        if imp.source.split(".")[0] == ENGINE and imp.target.split(".")[0] != ENGINE
    ]


def _is_entry_point(module: str) -> bool:
    return module == ENGINE or any(module == e or module.startswith(e + ".") for e in ENTRY_POINTS)


def layer(module: str) -> int:
    """The engine layer `module` belongs to (an index into ENGINE_LAYERS)."""
    return max(
        i for i, name in enumerate(ENGINE_LAYERS) if module == name or module.startswith(name + ".")
    )


def arrows_back_up(root: Path) -> list[str]:
    """Imports inside the engine that go up its layers, or into an entry point."""
    found = []
    for imp in all_imports(root):
        if imp.source.split(".")[0] != ENGINE or imp.target.split(".")[0] != ENGINE:
            continue
        if _is_entry_point(imp.source) or (imp.source, imp.target) in ALLOWED_BACK_UP:
            continue
        if _is_entry_point(imp.target) or layer(imp.target) > layer(imp.source):
            found.append(f"{imp.source}:{imp.line} imports {imp.target} (up)")
    return found


def public_imports(root: Path) -> list[tuple[str, str, str | None]]:
    """(module, name, alias) of each import under `if TYPE_CHECKING:` in hooks/__init__.py:
    the public names."""
    tree = ast.parse((root / ENGINE / "__init__.py").read_text())
    return [
        (imp.module or "", alias.name, alias.asname)
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    ]


def defines(path: Path, name: str) -> bool:
    """Whether the module at `path` defines `name` itself (a def, class or assignment at
    its top level), rather than importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def circles(root: Path) -> list[list[str]]:
    """Import circles between modules (strongly connected components, Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in all_imports(root):
        if imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def unexplained_function_imports(root: Path) -> list[str]:
    return [
        f"{imp.source}:{imp.line} imports {imp.target} inside a function without saying why"
        for imp in all_imports(root)
        if imp.in_function and not imp.commented and imp.source.split(".")[0] not in HARNESSES
    ]


def test_other_apps_use_only_the_public_api_and_models():
    assert private_engine_imports(ROOT) == []


def test_the_engine_imports_nothing_of_the_other_packages():
    assert engine_imports_of_other_packages(ROOT) == []


def test_imports_in_the_engine_go_down_its_layers():
    """tools → worker → outbox → outgoing → the top-level modules, never back up; the
    entry points (hooks/__init__.py, admin, apps, urls, management) import from any."""
    assert arrows_back_up(ROOT) == []


def test_hooks_exports_its_public_names_each_under_its_own_name():
    """`hooks.__all__` is exactly the names hooks/__init__.py imports for type checkers;
    each is imported under the name its module defines it by (grep finds `def name` or
    `name =`), resolves on first use to that very object, and is in the docstring."""
    import importlib

    import hooks

    imported = public_imports(ROOT)
    names = [name for _, name, _ in imported]
    assert [alias for _, _, alias in imported if alias] == []  # no `import x as y`
    assert sorted(hooks.__all__) == sorted(names) and len(set(names)) == len(names)
    assert hooks._MODULES == {name: module for module, name, _ in imported}
    first_party_modules = first_party(ROOT)
    for module, name, _ in imported:
        assert defines(first_party_modules[module], name), f"{module} does not define {name}"
        assert getattr(hooks, name) is getattr(importlib.import_module(module), name)
        assert re.search(rf"\b{name}\b", hooks.__doc__), f"{name} is not in the docstring"
    assert sorted(dir(hooks)) == sorted(names)


def test_no_import_circle():
    assert circles(ROOT) == []


def test_imports_inside_functions_say_why():
    assert unexplained_function_imports(ROOT) == []


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    """The rules are not vacuous: a small tree that breaks each of them is caught."""
    for package, files in {
        "hooks": {"__init__.py": "", "a.py": "from hooks import b\n", "b.py": "def f():\n    from hooks import a\n",
                  "c.py": "def f():\n    from hooks.worker import w  # at run time\n",
                  "admin.py": "from hooks.tools import t\n", "apps.py": ""},  # entry points
        "hooks/worker": {"__init__.py": "", "w.py": "from hooks import apps\nfrom jobs import y\n"},
        "hooks/tools": {"__init__.py": "", "t.py": "from hooks.worker import w\n"},
        "jobs": {"__init__.py": "", "x.py": "from hooks.a import thing\nfrom hooks.models import M\n",
                 "y.py": ""},
    }.items():  # fmt: skip
        (tmp_path / package).mkdir()
        for name, text in files.items():
            (tmp_path / package / name).write_text(text)
    assert circles(tmp_path) == [["hooks.a", "hooks.b"]]
    assert private_engine_imports(tmp_path) == ["jobs.x:1 imports hooks.a"]
    assert unexplained_function_imports(tmp_path) == [
        "hooks.b:2 imports hooks.a inside a function without saying why"
    ]
    assert engine_imports_of_other_packages(tmp_path) == ["hooks.worker.w:2 imports jobs.y"]
    assert arrows_back_up(tmp_path) == [
        "hooks.c:2 imports hooks.worker.w (up)",
        "hooks.worker.w:1 imports hooks.apps (up)",
    ]


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    problems = [
        *private_engine_imports(root),
        *engine_imports_of_other_packages(root),
        *arrows_back_up(root),
        *(" → ".join(c) + " (circle)" for c in circles(root)),
        *unexplained_function_imports(root),
    ]
    print("\n".join(problems) or "No violations.")
    sys.exit(1 if problems else 0)
