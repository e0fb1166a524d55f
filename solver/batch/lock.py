"""One batch run per output directory, held by an advisory file lock.

The lock is ``flock`` on ``OUT_DIR/.lock``: the kernel releases it when the
holding process ends, however it ends, so a killed run never leaves it
stuck. The file itself stays; it names the holder for the next one's
message. Locks of this kind are reliable on local file systems; on network
file systems they depend on the server.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from solver.errors import OutputInUseError

LOCK = ".lock"


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` for this process, or raise at once if another holds it.

    Raises
    ------
    OutputInUseError
        Another run (this machine or another sharing the directory) holds it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise OutputInUseError(
                f"{out_dir} is in use by another batch run ({holder or 'unknown'}); "
                "wait for it to finish, or give another --out"
            ) from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(),
            0,
        )
        yield
    finally:
        os.close(fd)  # releases the lock
