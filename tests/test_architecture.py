"""The package's shape: sub-packages whose imports only point down, no import circle, no project import
hidden in a function (unless it defers a heavy library and says so)."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline

PACKAGE = Path(pipeline.__file__).parent
# Floors, bottom up: a module imports from its own floor or below, never above.
FLOORS = {
    "core": 0,
    "parallel": 1,
    "read": 2,
    "stages": 3,
    "outputs": 4, "mail": 4, "handout": 4,
    "run": 5,
    "nightly": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 0,
}
ORCHESTRATORS = {"pipeline.run", "pipeline.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


KNOWN = modules()


def resolve(name: str) -> str:
    """The module an import names: `pipeline.core.issues`, or for `from pipeline.core import issues`
    the submodule when there is one."""
    return name if name in KNOWN else name.rsplit(".", 1)[0]


def project_imports(path: Path):
    """(module imported, line, inside a function, comment line above) of every project import, except
    under `if TYPE_CHECKING:` (types only, never executed)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))

    def visit(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names if a.name.startswith("pipeline")]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module \
                    and child.module.split(".")[0] == "pipeline":
                targets = [resolve(f"{child.module}.{a.name}") for a in child.names]
            for target in targets:
                above = lines[child.lineno - 2].strip() if child.lineno >= 2 else ""
                yield target, child.lineno, in_function, above
            yield from visit(child, inside)

    yield from visit(tree, False)


def graph() -> dict[str, set[str]]:
    return {name: {t for t, *_ in project_imports(path) if t != name} for name, path in KNOWN.items()}


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1]] if len(parts) > 1 else 0


def test_every_module_sits_in_a_known_floor():
    assert {m.split(".")[1] for m in KNOWN if "." in m} <= set(FLOORS)
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    assert top_level == {"__init__", "__main__", "cli", "run"}, top_level


def test_imports_only_point_down():
    upward = [f"{module} → {imported}" for module, imported_all in graph().items() for imported in imported_all
              if imported != "pipeline" and floor(imported) > floor(module)]
    assert not upward, upward


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(edges.get(module, ())):
            if state.get(imported) == 1:
                circles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                walk(imported, path)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [])
    assert not circles, "import circles: " + "; ".join(" → ".join(c) for c in circles)


def test_no_project_import_hidden_in_a_function():
    """Only one that defers a heavy library, with a comment right above it saying so."""
    hidden = [f"{name}:{line} imports {target}" for name, path in KNOWN.items()
              for target, line, in_function, above in project_imports(path)
              if in_function and not (above.startswith("#") and "deferred" in above.lower())]
    assert not hidden, hidden


def test_the_stages_and_outputs_never_reach_the_orchestrators():
    for module, imported in graph().items():
        if floor(module) <= FLOORS["outputs"]:
            assert not imported & (ORCHESTRATORS | {m for m in KNOWN if m.startswith("pipeline.nightly")}), module
