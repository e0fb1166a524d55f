"""Output files that no reader sees half-written, created like any program's.

A file is written under a temporary name beside its final one, flushed to
disk, then renamed over it: the rename is atomic, so the final name holds
either the old file or the whole new one. Temporary files are created with
mode 0o666 less the process's umask, as ``open`` would, so a downstream
reader can read the outputs the user's umask allows.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY = ".*.tmp"  # the names temporary files take


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The caller writes the whole file at the yielded path (the file exists,
    empty, with the umask's mode). On an exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(record: dict[str, Any], path: Path) -> None:
    """Write ``record`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")


def sha256_of(path: Path) -> str:
    """Return the SHA-256 of a file's bytes, in hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def remove_temporary(directory: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory``."""
    stray = sorted(directory.glob(TEMPORARY)) if directory.is_dir() else []
    for path in stray:
        path.unlink(missing_ok=True)
    return stray
