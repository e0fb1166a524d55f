"""Reading and writing the docs/DATA.md tables: Parquet or CSV, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, overload

import pandas as pd

from models.errors import InputError
from solver.batch.files import atomic_path

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
NA_STRINGS = (  # pandas' default missing-value strings (read_csv ``na_values``)
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


@overload
def find_table(directory: Path, name: str, *, required: Literal[True]) -> Path: ...
@overload
def find_table(directory: Path, name: str, *, required: bool) -> Path | None: ...
def find_table(directory: Path, name: str, *, required: bool) -> Path | None:
    """Return the file of table ``name`` in ``directory``: Parquet or CSV.

    Parameters
    ----------
    directory : Path
        The directory holding the tables.
    name : str
        The table's name, such as ``"lots"``.
    required : bool
        Whether a missing table is an error (else None is returned).

    Returns
    -------
    Path or None
        ``name.parquet`` or ``name.csv``; None when neither exists and the
        table is not required.

    Raises
    ------
    InputError
        When both files exist (which one is meant is unknown), or when a
        required table has neither.
    """
    found = [directory / f"{name}.{fmt}" for fmt in FORMATS]
    found = [path for path in found if path.exists()]
    if len(found) > 1:
        raise InputError(
            f"both {name}.parquet and {name}.csv exist in {directory}; "
            "remove the one that should not be read",
            field=name,
        )
    if not found and required:
        raise InputError(f"no {name}.parquet or {name}.csv in {directory}", field=name)
    return found[0] if found else None


def read_table(
    directory: Path, name: str, *, required: bool = True
) -> pd.DataFrame | None:
    """Read ``name.parquet`` or ``name.csv`` from ``directory`` (``find_table``).

    Identifier columns (``TEXT_COLUMNS``) are text, read the same from either
    format: ``007`` stays ``007``, ``NA`` or ``null`` in a CSV is an
    identifier, not a missing value, and an integer column in Parquet becomes
    its digits. A null in Parquet stays missing, as does an empty cell of any
    other CSV column.
    """
    path = find_table(directory, name, required=required)
    return None if path is None else read_path(path, name)


def read_path(path: Path, name: str) -> pd.DataFrame:
    """Read the table file ``path`` (format by suffix) as ``read_table`` does.

    Parameters
    ----------
    path : Path
        A ``.parquet`` or ``.csv`` file.
    name : str
        The table's name, given as ``field`` of an error.

    Returns
    -------
    pd.DataFrame
        The table, identifier columns (``TEXT_COLUMNS``) as text.

    Raises
    ------
    InputError
        When the file cannot be read.
    """
    try:
        return _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path.name}: {exc}", field=name) from exc


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV; identifiers verbatim, other columns with pandas' NA strings."""
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(TEXT_COLUMNS, str),
        keep_default_na=False,
        na_values={c: NA_STRINGS for c in header if c not in TEXT_COLUMNS},
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file, casting identifier columns to text (nulls stay null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for i, column in enumerate(table.column_names):
        if column in TEXT_COLUMNS:
            try:
                text = table.column(i).cast(pa.string())
            except pa.ArrowException as exc:  # e.g. a nested type
                raise ValueError(f"column {column!r} is not text: {exc}") from exc
            table = table.set_column(i, column, text)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write ``frame`` to ``path`` in ``fmt`` (``FORMATS``), without its index.

    Not atomic: for a temporary path the caller renames into place.

    Raises
    ------
    InputError
        When ``fmt`` is not one of ``FORMATS``.
    """
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        raise InputError(
            f"format must be one of {FORMATS}, got {fmt!r}", field="format"
        )


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` (format by suffix) so it is never half-written.

    The data goes to a temporary file in the same directory, is flushed to
    disk, and replaces ``path`` in one rename (``files.atomic_path``).
    """
    with atomic_path(path) as tmp:
        write_frame(frame, tmp, path.suffix.removeprefix("."))
