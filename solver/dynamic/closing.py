"""What an account is worth after tax at the end: sold out, or kept.

Both work on a copy of the ledger (:meth:`Ledger.copy`) and settle every
unsettled year through the closing date's by :meth:`Ledger.settle_year`.
Liquidation sells every lot first in first out at the given cost
(:meth:`Ledger.sell_all`): a loss washed by shares bought in the window
before it moves into them and is realised when they are sold in turn. Loss
carry-forward left after the last year is worth nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from solver.dynamic.ledger import Ledger


def liquidation_value_after_tax(
    ledger: Ledger, date: pd.Timestamp, prices: pd.Series, cost_rate: float = 0.0
) -> float:
    """Return the value left after selling every lot at ``prices`` on ``date``."""
    closed = _closed(ledger, date, prices, cost_rate, liquidate=True)
    return closed.market_value(prices)


def kept_after_tax(
    ledger: Ledger, date: pd.Timestamp, prices: pd.Series
) -> tuple[float, float]:
    """Return the value and the loss carry-forward with nothing sold.

    The value is after the tax on gains realised so far; the carry-forward is
    what is left once ``date``'s year is settled. One copy serves both.
    """
    closed = _closed(ledger, date, prices, 0.0, liquidate=False)
    return closed.market_value(prices), float(sum(closed.loss_carryforward))


def _closed(
    ledger: Ledger,
    date: pd.Timestamp,
    prices: pd.Series,
    cost_rate: float,
    *,
    liquidate: bool,
) -> Ledger:
    """Return a copy with every lot sold (if ``liquidate``) and years settled."""
    ledger.market_value(prices)  # every price checked
    closed, day = ledger.copy(), pd.Timestamp(date).normalize()
    if liquidate:
        closed.sell_all(day, prices, cost_rate)
    done = closed.settled_through
    for year in sorted({*closed.unsettled_years(), day.year}):
        if done is None or year > done:
            closed.settle_year(year)
    return closed
