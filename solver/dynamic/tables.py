"""The ledger's tables of open lots and trades, built column by column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models._align import text
from models.account import LOT_COLUMNS

TRADE_COLUMNS = ("asset", "date", "side", "quantity", "price", "realized_gain")
TRADE_TYPES = ("str", "M8[ns]", "str", "float64", "float64", "float64")
LOT_TYPES = ("str", "str", "float64", "float64", "M8[ns]")  # of LOT_COLUMNS
Trade = tuple[str, pd.Timestamp, str, float, float, float]
LotRow = tuple[str, str, float, float, pd.Timestamp]


def lot_table(rows: list[LotRow]) -> pd.DataFrame:
    """Return open lots as the ``lots`` table columns, one row per lot."""
    return _table(rows, LOT_COLUMNS, LOT_TYPES)


def trade_table(
    rows: list[Trade], columns: tuple[str, ...] = TRADE_COLUMNS
) -> pd.DataFrame:
    """Return trades as ``columns`` of :data:`TRADE_COLUMNS`.

    ``realized_gain`` is NaN for buys.
    """
    return _table(rows, TRADE_COLUMNS, TRADE_TYPES, keep=columns)


def _table(
    rows: list[Any],
    names: tuple[str, ...],
    types: tuple[str, ...],
    keep: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Build a typed table from row tuples without a per-column ``astype``.

    ``keep`` names the columns wanted, in order (default: all of ``names``).
    """
    keep = names if keep is None else keep
    columns = zip(*rows, strict=True) if rows else [()] * len(names)
    data = {
        name: _column(values, kind)
        for name, kind, values in zip(names, types, columns, strict=True)
        if name in keep
    }
    return pd.DataFrame(data, columns=list(keep), copy=False)


def _column(values: tuple[Any, ...], kind: str) -> Any:
    """Return one column's values as an array of ``kind``.

    Dates (``pd.Timestamp``, as the ledger keeps them) go through their
    nanoseconds: numpy and pandas convert timestamps one by one, 10 times
    slower (the ledger's tables are built every decision).
    """
    if kind == "str":
        return text(values)
    if kind == "M8[ns]":
        ns = np.fromiter((day.value for day in values), np.int64, len(values))
        return ns.view(kind)
    return np.array(values, kind)
