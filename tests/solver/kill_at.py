"""Run ``rebalance batch`` and SIGKILL it just before its N-th file-system change.

``python -m tests.solver.kill_at N ARGS...`` counts every call that creates,
renames or removes a file or directory (``os.open`` with ``O_CREAT``,
``os.mkdir``, ``os.replace``, ``os.rename``, ``os.unlink``, ``os.rmdir``)
and kills its own process with SIGKILL before the N-th one runs, so no
``finally`` or handler runs: what a power cut or ``kill -9`` at that
instruction leaves. With N = 0 it runs to the end and prints the count.
"""

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from solver.batch.cli import main

CHANGES = ("mkdir", "replace", "rename", "unlink", "rmdir")


def _arm(limit: int) -> Callable[[], int]:
    """Patch ``os``; return a function giving the number of changes seen."""
    seen = 0

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen == limit:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(name: str) -> None:
        real = getattr(os, name)

        def changed(*args: Any, **kwargs: Any) -> Any:
            count()
            return real(*args, **kwargs)

        setattr(os, name, changed)

    for name in CHANGES:
        wrap(name)
    real_open = os.open

    def opened(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            count()
        return real_open(path, flags, *args, **kwargs)

    os.open = opened
    return lambda: seen


if __name__ == "__main__":
    counter = _arm(int(sys.argv[1]))
    code = main(sys.argv[2:])
    sys.stdout.write(f"changes {counter()}\n")
    sys.exit(code)
