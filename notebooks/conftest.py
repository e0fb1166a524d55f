"""Run the notebooks headless, importing this checkout's packages.

Each notebook runs in a kernel started in this directory; the kernel gets
the repository root on its import path and the non-interactive Agg
matplotlib backend.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
)
os.environ["MPLBACKEND"] = "Agg"
