"""The ledger's tables of open lots and trades, built column by column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.account import LOT_COLUMNS

TRADE_COLUMNS = ("asset", "date", "side", "quantity", "price", "realized_gain")
Trade = tuple[str, pd.Timestamp, str, float, float, float]
LotRow = tuple[str, str, float, float, pd.Timestamp]


def lot_table(rows: list[LotRow]) -> pd.DataFrame:
    """Return open lots as the ``lots`` table columns, one row per lot."""
    return _table(rows, LOT_COLUMNS, ("str", "str", "float64", "float64", "M8[ns]"))


def trade_table(rows: list[Trade]) -> pd.DataFrame:
    """Return trades as :data:`TRADE_COLUMNS`; ``realized_gain`` NaN for buys."""
    types = ("str", "M8[ns]", "str", "float64", "float64", "float64")
    return _table(rows, TRADE_COLUMNS, types)


def _table(
    rows: list[Any], names: tuple[str, ...], types: tuple[str, ...]
) -> pd.DataFrame:
    """Build a typed table from row tuples without a per-column ``astype``."""
    columns = zip(*rows, strict=True) if rows else [()] * len(names)
    data = {
        name: pd.array(values, dtype="str") if kind == "str" else np.array(values, kind)
        for name, kind, values in zip(names, types, columns, strict=True)
    }
    return pd.DataFrame(data, columns=list(names))
