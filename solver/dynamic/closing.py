"""What an account is worth after tax at the end: sold out, or kept.

Both work on a copy of the ledger (:meth:`Ledger.copy`) and settle every
year through the closing date's by :meth:`Ledger.settle_year`, those
without sales too (a loss carried forward is deducted in each).
Liquidation sells every lot first in first out at the given cost, by the
rules of :meth:`Ledger.sell`: a loss washed by shares bought in the window
before it moves into them and is realised when they are sold in turn. The
lots held when it starts go first, then the parts their own wash sales
split off (replacement shares, which wash nothing more). Loss
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
    return sold_out(ledger, date, prices, cost_rate).market_value(prices)


def sold_out(
    ledger: Ledger, date: pd.Timestamp, prices: pd.Series, cost_rate: float = 0.0
) -> Ledger:
    """Return a copy with every lot sold at ``prices`` on ``date``, years settled."""
    return _closed(ledger, date, prices, cost_rate, liquidate=True)


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
        price_of = prices.to_dict()
        while lots := closed.fifo():  # the lots, then what their washes split off
            for lot in lots:
                held = closed.lot(lot.lot_id)  # a wash may have split or sold it
                if held is not None:
                    price = float(price_of[held.asset])
                    cost = held.quantity * price * cost_rate
                    closed.sell(day, held.lot_id, held.quantity, price, cost)
    done = closed.settled_through  # every year after it, with sales or not
    first = min([*closed.unsettled_years(), day.year]) if done is None else done + 1
    for year in range(first, day.year + 1):
        closed.settle_year(year)
    return closed
