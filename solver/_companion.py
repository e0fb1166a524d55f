"""Check that ``models`` is this project's package before importing it.

``solver`` and ``models`` are installed side by side. A ``models.py`` file
or ``models/`` folder in the working directory comes first on ``sys.path``
and hides the package; Python then fails deep inside with "'models' is not a
package". This says what happened instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXPECTED = Path(__file__).resolve().parent.parent / "models" / "__init__.py"


def check_models_package() -> None:
    """Raise ImportError naming the file that shadows the ``models`` package."""
    try:
        spec = importlib.util.find_spec("models")
    except ValueError:  # a module in sys.modules without a spec
        spec = None
    origin = None if spec is None or spec.origin is None else Path(spec.origin)
    if origin is not None and origin.resolve() == EXPECTED:
        return
    raise ImportError(
        f"'models' resolves to {origin or 'something without a file'}, not the "
        f"package installed with solver ({EXPECTED.parent}). A file or folder "
        "named 'models' in the working directory (or earlier on sys.path) hides "
        "it: rename it, or run from another directory."
    )
