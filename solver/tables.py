"""Reading and writing the DATA.md tables: Parquet or CSV, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from models.errors import InputError

FORMATS = ("parquet", "csv")
REQUIRED_TABLES = (
    "accounts",
    "lots",
    "targets",
    "prices",
    "factor_loadings",
    "factor_covariance",
    "specific_risk",
)
OPTIONAL_TABLES = ("restrictions", "recent_trades")
TEXT_COLUMNS = ("account_id", "model_id", "asset", "lot_id", "factor", "rule", "side")


def read_table(
    directory: Path, name: str, *, required: bool = True
) -> pd.DataFrame | None:
    """Read ``name.parquet`` or ``name.csv`` from ``directory``.

    Identifier columns are read as strings, so ``007`` stays ``007``.
    """
    for fmt in FORMATS:
        path = directory / f"{name}.{fmt}"
        if path.exists():
            try:
                if fmt == "parquet":
                    frame = pd.read_parquet(path)
                else:
                    frame = pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read {path.name}: {exc}", field=name) from exc
            for column in TEXT_COLUMNS:
                if column in frame:
                    frame[column] = frame[column].astype(str)
            return frame
    if required:
        raise InputError(f"no {name}.parquet or {name}.csv in {directory}", field=name)
    return None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` (format by suffix) so it is never half-written.

    The data goes to a temporary file in the same directory, is flushed to
    disk, and replaces ``path`` in one rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if path.suffix == ".csv":
                frame.to_csv(handle, index=False)
            else:
                frame.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
