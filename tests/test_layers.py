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
