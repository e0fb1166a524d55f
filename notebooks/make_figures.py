"""Write the figures the README shows by running the notebooks that draw them.

Run ``python notebooks/make_figures.py`` from the repository root (with the
``dev`` extra installed). Each notebook runs in a fresh kernel, and one more
cell then saves its figure to ``notebooks/figures``. The notebooks themselves
never write files, so running them (as the tests do) leaves the tree as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
FIGURES = {  # notebook -> {figure variable in it: file written}
    "dynamic_rebalancing.ipynb": {"frontier_fig": "backtest_frontier.png"},
    "tradeoffs.ipynb": {"tradeoff_fig": "tradeoffs.png"},
}
DPI = 110
CELL_TIMEOUT_SECONDS = 900


def save_figures(notebook: str, figures: dict[str, str]) -> list[Path]:
    """Run ``notebook``, then save its ``figures``; return the files written."""
    nb = nbformat.read(HERE / notebook, as_version=4)
    saves = [
        f"{name}.savefig('figures/{file}', dpi={DPI})" for name, file in figures.items()
    ]
    nb.cells.append(nbformat.v4.new_code_cell("\n".join(saves)))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(HERE)}},  # the kernel's directory
    )
    client.execute()
    return [HERE / "figures" / file for file in figures.values()]


def main() -> None:
    """Save every figure listed in ``FIGURES``."""
    root = HERE.parent
    paths = [str(root), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ["MPLBACKEND"] = "Agg"
    (HERE / "figures").mkdir(exist_ok=True)
    for notebook, figures in FIGURES.items():
        for path in save_figures(notebook, figures):
            sys.stdout.write(f"wrote {path.relative_to(root)}\n")


if __name__ == "__main__":
    main()
