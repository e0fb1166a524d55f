"""What an output directory holds, and whether a run may reuse it.

A run reuses the parts or final tables of ``OUT_DIR`` only when the key of
the manifest there equals its own (``manifest.RunKey``); anything it cannot
prove current stops the run, unless ``--restart`` deletes it first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from solver.batch.manifest import MANIFEST, RunKey, read_manifest
from solver.batch.parts import PARTS, PartStore
from solver.batch.tables import FORMATS
from solver.errors import StaleOutputError

logger = logging.getLogger(__name__)
PROBLEMS = "problems.csv"


def check_output(out_dir: Path, key: RunKey, *, restart: bool) -> dict[str, Any] | None:
    """Make sure the work in ``out_dir`` is this run's; return its final tables.

    Returns the manifest's record of final tables that an earlier run with
    the same key wrote (reusable), or None.
    """
    work = [*(out_dir / PARTS).glob("*"), *final_tables(out_dir)]
    if restart:
        if work:
            logger.warning("--restart: deleting the earlier outputs in %s", out_dir)
        delete_outputs(out_dir)
        return None
    try:
        earlier = read_manifest(out_dir)
    except (OSError, ValueError) as exc:
        if not work:
            return None
        raise StaleOutputError(
            f"{out_dir} holds outputs, but its {MANIFEST} is unreadable ({exc}), so "
            "they cannot be proved current; start afresh with --restart"
        ) from exc
    if earlier is None:
        if not work:
            return None
        raise StaleOutputError(
            f"{out_dir} holds outputs without a {MANIFEST}, so they cannot be "
            "proved current; start afresh with --restart, or give another --out"
        )
    changes = key.changes_from(RunKey.from_record(earlier["key"]))
    if changes and work:
        raise StaleOutputError(
            f"{out_dir} holds a run with other inputs or settings ("
            + "; ".join(changes)
            + "); start afresh with --restart (deletes its outputs), or give "
            "another --out"
        )
    outputs: dict[str, Any] | None = None if changes else earlier.get("outputs")
    return outputs


def final_tables(out_dir: Path) -> list[Path]:
    """Return the final tables present in ``out_dir``, summaries first."""
    return [
        out_dir / f"{name}.{fmt}"
        for name in ("summary", "trades")
        for fmt in FORMATS
        if (out_dir / f"{name}.{fmt}").exists()
    ]


def delete_outputs(out_dir: Path) -> None:
    """Delete an earlier run's outputs: summaries first, so none looks complete."""
    for path in final_tables(out_dir):
        path.unlink()
    (out_dir / PROBLEMS).unlink(missing_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    PartStore(out_dir, None).clear()
