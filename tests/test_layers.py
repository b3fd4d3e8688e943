"""The package's layers: core -> experiments -> analysis -> book, command lines beside.

Each layer imports only from itself and the layers before it; no module imports a
package module inside a function; the module graph has no cycle; ``core`` stays small
enough to read; no chapter imports a command-line module; the README stays short.
"""

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "bijepa_nb"
LAYERS = ("core", "experiments", "analysis", "book")
COMMANDS = ("reproduce", "sweep", "cluster", "bench", "run", "peers")
CORE_MAX_LINES = 1600
README_MAX_LINES = 150


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PKG).with_suffix("").parts)


def package_imports(path: Path) -> list[tuple[ast.ImportFrom | ast.Import, bool, str]]:
    """(node, at module level, imported module) for every import of a bijepa_nb module."""
    parts = path.relative_to(PKG).with_suffix("").parts
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:-1])[: len(parts) - node.level]
                mod = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "bijepa_nb":
                mod = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                full = [*mod, alias.name]
                is_mod = (PKG.joinpath(*full).with_suffix(".py")).exists() or (
                    PKG.joinpath(*full) / "__init__.py"
                ).exists()
                out.append((node, id(node) in top, ".".join(full if is_mod else mod)))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "bijepa_nb":
                    out.append((node, id(node) in top, alias.name[len("bijepa_nb.") :]))
    return out


MODULES = sorted(PKG.rglob("*.py"))


def layer(mod: str) -> int | None:
    head = mod.split(".")[0]
    return LAYERS.index(head) if head in LAYERS and "." in mod else None


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_package_import_inside_a_function(path):
    local = [n.lineno for n, at_top, _ in package_imports(path) if not at_top]
    assert not local, (
        f"{module_name(path)}: package imports inside functions, lines {local}"
    )


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_layers_import_only_downward(path):
    here = layer(module_name(path))
    if here is None:
        return  # the package's __init__ and the command lines may import any layer
    for node, _, mod in package_imports(path):
        there = layer(mod)
        assert mod.split(".")[0] not in COMMANDS, (
            f"{module_name(path)} imports the command line {mod} (line {node.lineno})"
        )
        if there is not None:
            assert there <= here, (
                f"{module_name(path)} ({LAYERS[here]}) imports {mod} "
                f"({LAYERS[there]}), a later layer (line {node.lineno})"
            )


def test_the_module_graph_has_no_cycle():
    graph = {}
    for path in MODULES:
        me = module_name(path)
        graph[me] = {m for _, _, m in package_imports(path) if m and m != me}
    state: dict[str, int] = {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in graph.get(u, ()):
            v = v if v in graph else f"{v}.__init__"
            if state.get(v) == 1:
                pytest.fail(
                    "import cycle: " + " -> ".join([*stack[stack.index(v) :], v])
                )
            if v in graph and v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for u in graph:
        if u not in state:
            visit(u, [])


def test_core_is_small():
    lines = sum(len(p.read_text().splitlines()) for p in (PKG / "core").glob("*.py"))
    assert lines <= CORE_MAX_LINES, f"bijepa_nb/core has {lines} lines"


def test_checker_sees_a_local_import(tmp_path, monkeypatch):
    """The checks above can fail: a module with a function-local import is caught."""
    fake = tmp_path / "bijepa_nb" / "core"
    fake.mkdir(parents=True)
    bad = fake / "bad.py"
    bad.write_text("def f():\n    from .data import Split\n    return Split\n")
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path / "bijepa_nb")
    assert [at_top for _, at_top, _ in package_imports(bad)] == [False]


def test_no_chapter_imports_a_command_line():
    for nb in sorted((REPO / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for name in COMMANDS:
            assert f"from bijepa_nb import {name}" not in src, (nb.name, name)
            assert f"from bijepa_nb.{name} import" not in src, (nb.name, name)


def test_readme_is_short():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines"


MAX_LINES, MAX_PARAMS = 80, 8


def _oversized(path: Path) -> list[str]:
    """Functions over MAX_LINES lines or MAX_PARAMS parameters whose docstring does not
    say why ("Why so long:" / "Why so many parameters:")."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
        params -= bool(a.args) and a.args[0].arg in ("self", "cls")
        lines = node.end_lineno - node.lineno + 1
        doc = ast.get_docstring(node) or ""
        if lines > MAX_LINES and "Why so long:" not in doc:
            bad.append(f"{node.name} ({lines} lines)")
        if params > MAX_PARAMS and "Why so many parameters:" not in doc:
            bad.append(f"{node.name} ({params} parameters)")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_long_functions_say_why(path):
    bad = _oversized(path)
    assert not bad, f"{module_name(path)}: {', '.join(bad)} without a stated reason"


def test_the_size_check_can_fail(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(90))
    (tmp_path / "m.py").write_text(
        f"def f(a, b, c, d, e, f, g, h, i):\n    '''Short.'''\n{body}\n"
    )
    assert _oversized(tmp_path / "m.py") == ["f (92 lines)", "f (9 parameters)"]
