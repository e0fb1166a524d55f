"""Reading and writing the docs/DATA.md tables: files (Parquet or CSV) or DataFrames."""

from __future__ import annotations

import csv
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import pandas as pd

from models.errors import InputError
from solver.batch.files import atomic_path

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("parquet", "csv")
REQUIRED_TABLES = ("accounts", "lots", "targets", "prices")
FACTOR_TABLES = ("factor_loadings", "factor_covariance", "specific_risk")
COVARIANCE = "covariance"  # the other risk model: one full covariance table
OPTIONAL_TABLES = ("restrictions", "recent_trades")
TABLES = (*REQUIRED_TABLES, *FACTOR_TABLES, COVARIANCE, *OPTIONAL_TABLES)
TEXT_COLUMNS = (
    "account_id",
    "model_id",
    "household_id",
    "account_type",
    "asset",
    "lot_id",
    "factor",
    "rule",
    "side",
)
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


def risk_tables(given: Collection[str], where: str) -> tuple[str, ...]:
    """Return the risk tables a batch reads: the covariance or the factor tables.

    Parameters
    ----------
    given : collection of str
        The names of the tables present.
    where : str
        Where they are, for the message (``"in DIR"``).

    Returns
    -------
    tuple of str
        ``("covariance",)``, or ``FACTOR_TABLES`` when no covariance table
        is given (each of them is then required).

    Raises
    ------
    InputError
        Both forms are given, or neither.
    """
    factor = [name for name in FACTOR_TABLES if name in given]
    if COVARIANCE in given and factor:
        raise InputError(
            f"two risk models {where}: the covariance table and "
            f"{', '.join(factor)}; give either the covariance table or the three "
            f"factor tables ({', '.join(FACTOR_TABLES)}), not both",
            field=COVARIANCE,
        )
    if COVARIANCE in given:
        return (COVARIANCE,)
    if not factor:
        raise InputError(
            f"no risk model {where}: give either the covariance table or the "
            f"three factor tables ({', '.join(FACTOR_TABLES)})",
            field=FACTOR_TABLES[0],
        )
    return FACTOR_TABLES


def table_files(directory: Path) -> dict[str, Path]:
    """Return the file of every table a batch of ``directory`` reads.

    The required tables, then the one risk model's (``risk_tables``), then
    the optional tables present.

    Raises
    ------
    InputError
        A required table is missing, a table is given in both formats, or
        the risk model is given in both forms or in neither.
    """
    files = {
        name: find_table(directory, name, required=True) for name in REQUIRED_TABLES
    }
    risk = (*FACTOR_TABLES, COVARIANCE)
    present = {name for name in risk if find_table(directory, name, required=False)}
    for name in risk_tables(present, f"in {directory}"):
        files[name] = find_table(directory, name, required=True)
    for name in OPTIONAL_TABLES:
        path = find_table(directory, name, required=False)
        if path is not None:
            files[name] = path
    return files


def frame_tables(frames: Mapping[str, object]) -> tuple[str, ...]:
    """Return the names of the tables a batch of DataFrames reads.

    As ``table_files``, and stricter: an unknown name, a value that is not
    a DataFrame, or a required table without rows (but ``lots``: a batch of
    cash-only accounts has none) is an error naming the table.

    Raises
    ------
    InputError
        ``field`` names the table.
    """
    unknown = [name for name in frames if name not in TABLES]
    if unknown:
        raise InputError(
            f"unknown table {unknown[0]!r}; the tables are {', '.join(TABLES)}",
            field=str(unknown[0]),
        )
    for name in REQUIRED_TABLES:
        _check_frame(frames, name)
    names = [*REQUIRED_TABLES, *risk_tables(set(frames), "among the tables given")]
    for name in names[len(REQUIRED_TABLES) :]:
        _check_frame(frames, name)
    for name in OPTIONAL_TABLES:
        if name in frames:
            _check_frame(frames, name)
            names.append(name)
    return tuple(names)


def _check_frame(frames: Mapping[str, object], name: str) -> None:
    """Check that table ``name`` is given as a DataFrame, with rows if required."""
    frame = frames.get(name)
    if frame is None:
        raise InputError(f"no table {name!r} given", field=name)
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"table {name!r} must be a pandas DataFrame, got {type(frame).__name__}",
            field=name,
        )
    require_rows(frame, name)


def require_rows(frame: pd.DataFrame, name: str) -> None:
    """Refuse a table without rows: an empty read is an error, not a batch.

    ``lots`` (a batch of cash-only accounts has none) and the optional
    tables may be empty.
    """
    if not len(frame) and name != "lots" and name not in OPTIONAL_TABLES:
        raise InputError(f"table {name!r} has no rows", field=name)


def arrow_table(frame: pd.DataFrame, name: str) -> pa.Table:
    """Return ``frame`` as Arrow, as it would be written to ``NAME.parquet``.

    Its index is left out. An object column Arrow cannot type (numbers and
    text mixed, as a bad cell makes them) becomes text, nulls kept, as a
    CSV's column would be: its bad values then reach validation intact.

    Raises
    ------
    InputError
        Two columns have one name, or a column cannot be converted even as
        text.
    """
    import pyarrow as pa

    names = pd.Index(frame.columns.astype(str))
    if names.has_duplicates:
        raise InputError(
            f"duplicate column {names[names.duplicated()][0]!r} in table {name!r}",
            field=name,
        )
    columns = {}
    for column in frame.columns:
        values = frame[column]
        try:
            columns[str(column)] = pa.array(values, from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError):
            text = values.where(values.isna(), values.astype(str))
            try:
                columns[str(column)] = pa.array(
                    text, from_pandas=True, type=pa.string()
                )
            except (pa.ArrowException, ValueError, TypeError) as exc:
                raise InputError(
                    f"cannot read column {column!r} of table {name!r}: {exc}",
                    field=name,
                ) from exc
    return pa.table(columns)


def read_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return the DataFrame of table ``name`` as ``read_path`` reads its Parquet.

    Parameters
    ----------
    frame : pd.DataFrame
        The table, with the docs/DATA.md columns (its index is ignored).
    name : str
        The table's name, given as ``field`` of an error.

    Returns
    -------
    pd.DataFrame
        The table, identifier columns (``TEXT_COLUMNS``) as text.

    Raises
    ------
    InputError
        When the frame cannot be read (``arrow_table``), or an identifier
        column cannot be text.
    """
    arrow = arrow_table(frame, name)
    try:
        arrow = _text_identifiers(arrow)
    except ValueError as exc:
        raise InputError(f"cannot read table {name!r}: {exc}", field=name) from exc
    table: pd.DataFrame = arrow.to_pandas()
    return table


def read_path(path: Path, name: str) -> pd.DataFrame:
    """Read the table file ``path`` (format by suffix).

    Identifier columns (``TEXT_COLUMNS``) are text, read the same from either
    format: ``007`` stays ``007``, ``NA`` or ``null`` in a CSV is an
    identifier, not a missing value, and an integer column in Parquet becomes
    its digits. A null in Parquet stays missing, as does an empty cell of any
    other CSV column.

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
    """Read a CSV; identifiers verbatim, other columns with pandas' NA strings.

    Raises
    ------
    ValueError
        Two columns have one name (pandas would rename the second).
    """
    with path.open(newline="", encoding="utf-8-sig") as file:
        names = pd.Index(next(csv.reader(file), []))
    if names.has_duplicates:
        raise ValueError(f"duplicate column {names[names.duplicated()][0]!r}")
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(TEXT_COLUMNS, str),
        keep_default_na=False,
        na_values={c: NA_STRINGS for c in header if c not in TEXT_COLUMNS},
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet file, casting identifier columns to text (nulls stay null)."""
    import pyarrow.parquet as pq

    frame: pd.DataFrame = _text_identifiers(pq.read_table(path)).to_pandas()
    return frame


def _text_identifiers(table: pa.Table) -> pa.Table:
    """Cast the identifier columns (``TEXT_COLUMNS``) to text; nulls stay null.

    Raises
    ------
    ValueError
        An identifier column cannot be text (e.g. a nested type).
    """
    import pyarrow as pa

    for i, column in enumerate(table.column_names):
        if column in TEXT_COLUMNS:
            try:
                text = table.column(i).cast(pa.string())
            except pa.ArrowException as exc:  # e.g. a nested type
                raise ValueError(f"column {column!r} is not text: {exc}") from exc
            table = table.set_column(i, column, text)
    return table


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
