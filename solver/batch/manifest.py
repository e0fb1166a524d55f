"""The record of a batch run, and the fingerprint that says what its answers depend on.

``OUT_DIR/manifest.json`` is written when a run starts (``state``
``running``) and again when it ends (``complete``, with the outputs'
checksums and the counts by status). Its ``key`` holds everything that
determines an answer: the content hash of every input file, the effective
settings, ``as_of`` and the versions of this package and of the solvers.
A run reuses parts or final tables of a directory only when the key stored
there equals its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from solver.batch.config import RunConfig
from solver.batch.files import sha256_of, write_json
from solver.batch.tables import table_files

MANIFEST = "manifest.json"
PACKAGE = "rebalance-engine"
LIBRARIES = (PACKAGE, "cvxpy", "clarabel", "highspy", "numpy", "scipy", "pandas")


@dataclass(frozen=True)
class RunKey:
    """What a batch's answers depend on; equal keys give equal answers."""

    inputs: dict[str, str]  # input file name -> SHA-256 of its bytes
    settings: dict[str, Any]  # the effective RunConfig
    as_of: str
    versions: dict[str, str]

    @classmethod
    def of(cls, in_dir: Path, config: RunConfig) -> RunKey:
        """Hash the input files of ``in_dir`` and record ``config``."""
        if config.as_of is None:
            raise ValueError("resolve as_of before fingerprinting a run")
        inputs = {path.name: sha256_of(path) for path in input_files(in_dir)}
        settings = json.loads(json.dumps(asdict(config)))  # tuples as lists
        return cls(inputs, settings, config.as_of, library_versions())

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunKey:
        """Rebuild a key stored in a manifest."""
        return cls(**record)

    def fingerprint(self) -> str:
        """Return the SHA-256 of the key, in hex."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def changes_from(self, earlier: RunKey) -> list[str]:
        """Describe what differs from ``earlier``, one line per difference."""
        out = []
        for name in sorted(earlier.inputs.keys() | self.inputs.keys()):
            old, new = earlier.inputs.get(name), self.inputs.get(name)
            if old != new:
                what = (
                    "added" if old is None else "removed" if new is None else "changed"
                )
                out.append(f"input {name} {what}")
        for name in sorted(earlier.settings.keys() | self.settings.keys()):
            old, new = earlier.settings.get(name), self.settings.get(name)
            if old != new:
                out.append(f"setting {name}: {old!r} -> {new!r}")
        if earlier.as_of != self.as_of:
            out.append(f"as_of: {earlier.as_of} -> {self.as_of}")
        for name in sorted(earlier.versions.keys() | self.versions.keys()):
            old, new = earlier.versions.get(name), self.versions.get(name)
            if old != new:
                out.append(f"version of {name}: {old} -> {new}")
        return out


def input_files(in_dir: Path) -> list[Path]:
    """Return the input tables present in ``in_dir`` (settings are keyed apart)."""
    return list(table_files(in_dir).values())


def input_stats(in_dir: Path) -> dict[str, tuple[int, int]]:
    """Return each input file's size and modification time, to notice a change."""
    return {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns)
        for path in input_files(in_dir)
    }


def library_versions() -> dict[str, str]:
    """Return the installed versions of this package and its solvers."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """Return the manifest of ``out_dir``, or None when there is none.

    Raises
    ------
    ValueError
        The file exists but is not a manifest (damaged or foreign).
    """
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or "key" not in record:
        raise ValueError(f"{path} is not a batch manifest")
    return record


def write_manifest(out_dir: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as ``OUT_DIR/manifest.json``, atomically."""
    write_json(record, out_dir / MANIFEST)


def now() -> str:
    """Return the current UTC time, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_record(path: Path, rows: int | None = None) -> dict[str, Any]:
    """Describe one file: name, bytes, SHA-256 and, if known, rows."""
    record: dict[str, Any] = {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
    }
    if rows is not None:
        record["rows"] = rows
    return record
