"""A backtest's figures: tracking, trading, taxes and returns before and after tax.

Returns follow performance-measurement practice: time-weighted (each day's
return chained, contributions removed) and, when money flows in or out,
money-weighted (the internal rate of return of the flows). Pre-tax returns
count each tax payment as a withdrawal; after-tax returns count it as a loss.
"After tax" is given two ways: the account kept (tax due on gains realised so
far, nothing sold) and the account liquidated at the end (every lot sold at
the last prices, paying costs and the tax on the sales).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from solver.dynamic.closing import kept_after_tax, liquidation_value_after_tax

if TYPE_CHECKING:
    from solver.dynamic.ledger import Ledger
    from solver.dynamic.simulation import BacktestConfig

TRADING_DAYS = 252


def metrics(
    daily: pd.DataFrame, ledger: Ledger, closing: pd.Series, config: BacktestConfig
) -> pd.Series:
    """Return a backtest's metrics (annualised fractions and currency).

    - ``years`` simulated; ``tracking_error``: annualised std of the daily
      pre-tax return minus the daily-rebalanced target's;
      ``turnover_per_year``: half the traded value
      over the value, summed, per year (the sales that fund a withdrawal
      included); ``rebalances``: days the policy traded.
    - ``costs`` (of every trade, withdrawals' sales included),
      ``taxes_paid`` (settled, refunds negative), ``deferred_tax``
      (the tax the open lots would add if sold at the end, after the cost of
      selling them; negative for a net unrealised loss), ``exit_cost`` (that
      cost),
      ``loss_carryforward`` (left once the last year is settled),
      ``harvested_losses``, ``wash_sale_disallowed``, ``realized_gains``.
    - ``final_value`` (after the taxes paid), ``after_tax_value`` (liquidated).
    - ``pre_tax_return``, ``after_tax_return`` (liquidated) and
      ``after_tax_return_kept``: time-weighted, a year; ``tax_drag`` and
      ``tax_drag_kept``: pre-tax minus after-tax (``tax_drag`` also holds
      the final sale's cost, ``exit_cost``: about cost_bps / years, 0.6 bp
      a year over 17 years at 10 bp); ``pre_tax_irr`` and
      ``after_tax_irr``: money-weighted, a year, NaN without contributions.
    """
    years = (len(daily) - 1) / TRADING_DAYS
    last, value = daily.index[-1], float(daily["value"].iloc[-1])
    cost_rate = config.cost_bps / 1e4
    liquidated = liquidation_value_after_tax(ledger, last, closing, cost_rate)
    kept, carryforward = kept_after_tax(ledger, last, closing)
    held = ledger.market_value(closing) - ledger.cash + ledger.tax_owed
    exit_cost = cost_rate * held
    active = (daily["return"] - daily["target_return"]).iloc[1:]
    gains = np.array([r.gain + r.disallowed for r in ledger.realizations])
    pre_tax = _annual(_growth(daily["return"]), years)
    after_tax = _annual(_growth(daily["after_tax_return"]) * liquidated / value, years)
    after_kept = _annual(_growth(daily["after_tax_return"]) * kept / value, years)
    flows = daily["contribution"].to_numpy()
    money = bool(np.any(flows != 0))
    paid = daily["tax"].to_numpy()
    return pd.Series(
        {
            "years": years,
            "tracking_error": float(active.std() * np.sqrt(TRADING_DAYS)),
            "turnover_per_year": float(daily["traded"].sum() / 2 / years),
            "rebalances": int(daily["rebalanced"].iloc[1:].sum()),
            "costs": float(daily["cost"].sum()),
            "taxes_paid": float(paid.sum()),
            "deferred_tax": kept - liquidated - exit_cost,
            "exit_cost": exit_cost,
            "loss_carryforward": carryforward,
            "harvested_losses": float(-gains[gains < 0].sum()),
            "wash_sale_disallowed": float(
                sum(r.disallowed for r in ledger.realizations)
            ),
            "realized_gains": float(gains[gains > 0].sum()),
            "final_value": value,
            "after_tax_value": liquidated,
            "pre_tax_return": pre_tax,
            "after_tax_return": after_tax,
            "after_tax_return_kept": after_kept,
            "tax_drag": pre_tax - after_tax,
            "tax_drag_kept": pre_tax - after_kept,
            "pre_tax_irr": _irr(daily, paid, value) if money else np.nan,
            "after_tax_irr": _irr(daily, 0 * paid, liquidated) if money else np.nan,
        }
    )


def _growth(returns: pd.Series) -> float:
    """Return the chained growth of daily returns, the first day left out."""
    return float(np.prod(1.0 + returns.to_numpy()[1:]))


def _annual(growth: float, years: float) -> float:
    """Return ``growth`` over ``years`` as a yearly rate."""
    return float(growth ** (1 / years) - 1)


def _irr(daily: pd.DataFrame, withdrawn: np.ndarray, final: float) -> float:
    """Return the yearly rate at which the account's flows have zero value.

    The investor pays the first day's value and each contribution, and
    receives ``withdrawn`` on its days and ``final`` at the end.
    """
    flows = withdrawn - daily["contribution"].to_numpy()
    flows[0] -= float(daily["value"].iloc[0])
    flows[-1] += final
    times = np.arange(len(flows)) / TRADING_DAYS

    def value(rate: float) -> float:
        return float(flows @ (1.0 + rate) ** -times)

    return float(brentq(value, -0.99, 10.0, xtol=1e-12))
