"""Check an order list against every constraint, from the trades table alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, TradeRule
from solver.formulation import CASH_NON_NEGATIVE, LOT_QUANTITY
from solver.orders import outcome_from_trades

VIOLATION_TOLERANCE = 1e-7  # fraction of V, or tracking-error units
VIOLATION_COLUMNS = ("constraint", "amount", "is_soft", "detail")


def verify(
    snapshot: Snapshot,
    trades: pd.DataFrame,
    constraints: Sequence[Constraint],
    rules: Sequence[TradeRule],
) -> tuple[Outcome | None, pd.DataFrame]:
    """Return the outcome of ``trades`` and every constraint it breaks.

    Each check recomputes post-trade holdings, cash and gains from the
    quantities and prices in ``trades``, not from the solver's variables.
    """
    rows: list[tuple[str, float, bool, str]] = []
    try:
        o = outcome_from_trades(snapshot, trades)
    except KeyError as exc:
        rows.append(("trades", np.inf, False, str(exc)))
        return None, _frame(rows)
    rows.extend(_physical(snapshot, trades, o))
    for constraint in constraints:
        amount = constraint.violation(o)
        if amount > VIOLATION_TOLERANCE:
            rows.append((constraint.name, amount, constraint.is_soft, ""))
    for rule in rules:
        amount = rule.mask(snapshot).violation(o)
        if amount > VIOLATION_TOLERANCE:
            rows.append((rule.name, amount, False, ""))
    return o, _frame(rows)


def _physical(
    s: Snapshot, trades: pd.DataFrame, o: Outcome
) -> list[tuple[str, float, bool, str]]:
    """Check what holds for every order list: quantities and cash."""
    rows = []
    quantity = trades["quantity"].to_numpy(dtype=float)
    if len(quantity) and (not np.isfinite(quantity).all() or quantity.min() < 0):
        rows.append(("trades", np.inf, False, "negative or non-finite quantity"))
    excess = (o.lot_sales - s.lot_capacity) / s.lot_capacity
    if len(excess) and excess.max() > VIOLATION_TOLERANCE:
        lot = s.lots["lot_id"].iloc[int(excess.argmax())]
        rows.append((LOT_QUANTITY, float(excess.max()), False, f"lot {lot!r} oversold"))
    if o.cash < -VIOLATION_TOLERANCE:
        rows.append((CASH_NON_NEGATIVE, -o.cash, False, "negative cash"))
    return rows


def _frame(rows: list[tuple[str, float, bool, str]]) -> pd.DataFrame:
    """Return violations as a DataFrame with fixed columns."""
    return pd.DataFrame(rows, columns=list(VIOLATION_COLUMNS))
