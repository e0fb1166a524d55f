"""``models`` never imports ``solver`` (DESIGN.md layering)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_models_never_import_solver():
    offenders = []
    for path in (ROOT / "models").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] == "solver"
            ]
    assert offenders == []


def test_no_module_over_400_lines():
    long = [
        str(p.relative_to(ROOT))
        for pkg in ("models", "solver")
        for p in (ROOT / pkg).rglob("*.py")
        if len(p.read_text().splitlines()) > 400
    ]
    assert long == []


def _imports(package: str) -> dict[str, set[str]]:
    """Map each module of ``package`` to the modules of ``package`` it imports.

    Imports under ``if TYPE_CHECKING:`` count: they are a circle all the same.
    """
    graph: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
        graph[module] = {n for n in found if n.split(".")[0] == package} - {module}
    return graph


def test_models_have_no_import_circle():
    graph = _imports("models")
    graph.pop("models", None)  # the package's __init__ re-exports everything
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(" -> ".join((*path, module)))
        if module in done:
            return
        for child in graph.get(module, ()):
            visit(child, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


# Which parts of solver each part may import: the program knows nothing of
# orders, batches or time; orders build on the program; the batch and the
# dynamic code sit on top. ``solver.api`` composes program, orders and
# triggers; the top-level modules are the shared types and old paths.
MAY_IMPORT = {
    "solver.program": {"solver.program", "solver.result", "solver.errors"},
    "solver.orders": {
        "solver.orders",
        "solver.program",
        "solver.result",
        "solver.errors",
    },
    "solver.triggers": set(),
    "solver.result": {"solver.display"},  # a result draws itself on request
    "solver.display": {"solver.result"},  # for its type only
    "solver.errors": set(),
    "solver.api": {
        "solver.program",
        "solver.orders",
        "solver.triggers",
        "solver.result",
        "solver.errors",
    },
    "solver.dynamic": {
        "solver.dynamic",
        "solver.api",
        "solver.result",
        "solver.triggers",
    },
}


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_solver_parts_import_only_the_layers_below():
    broken = []
    for module, imported in _imports("solver").items():
        allowed = MAY_IMPORT.get(_part(module))
        if allowed is None:
            continue  # batch and the top level may use every part
        broken += [
            f"{module} -> {name}"
            for name in imported
            if _part(name) not in allowed | {"solver"}
        ]
    assert broken == []


def test_nothing_below_the_batch_imports_it():
    users = [
        f"{module} -> {name}"
        for module, imported in _imports("solver").items()
        for name in imported
        if _part(name) == "solver.batch"
        and _part(module) not in {"solver.batch", "solver"}
    ]
    assert users == []


def test_every_solver_package_declares_its_exports():
    missing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "solver").rglob("__init__.py")
        if "__all__" not in path.read_text()
    ]
    assert missing == []
