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
