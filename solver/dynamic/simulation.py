"""Walk an account through a daily price history under a rebalancing policy.

Each day: settle last year's tax on the first day of a year, add the
periodic contribution on the first day of a month, let the policy decide,
then trade at the day's close with a linear cost and real lot accounting
(:class:`solver.dynamic.ledger.Ledger`: holding periods, short/long-term gains,
wash sales across days). Prices are total-return closes, so dividends are
reinvested through the price and are not taxed as income: a simplification
that favours no policy over another.

Returns are measured after costs; taxes and contributions are flows, so the
realized tracking error compares investment decisions only. The target
portfolio is the costless daily-rebalanced target weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import InputError
from models.risk import CovarianceRiskModel
from models.risk_estimation import shrunk_covariance
from solver.dynamic.ledger import Ledger
from solver.dynamic.policies import Day, Orders, Policy, orders_to_weights

TRADING_DAYS = 252


@dataclass(frozen=True)
class BacktestConfig:
    """Money, costs, taxes and risk estimation of a backtest.

    Parameters
    ----------
    initial_value : float
        Cash at the start, invested in the target on the first day.
    cost_bps : float
        Linear cost of every trade, bps of traded value.
    tax_rate_short, tax_rate_long : float
        Rates on short- and long-term net gains.
    contribution : float
        Deposited on the first trading day of each month (negative: withdrawn).
    risk_lookback : int
        Trading days of past returns in the covariance estimate (Ledoit-Wolf,
        re-estimated monthly); the backtest starts after them.
    """

    initial_value: float = 1_000_000.0
    cost_bps: float = 10.0
    tax_rate_short: float = 0.408
    tax_rate_long: float = 0.238
    contribution: float = 0.0
    risk_lookback: int = TRADING_DAYS


@dataclass(frozen=True)
class BacktestResult:
    """The path and the metrics of one policy."""

    policy: str
    daily: pd.DataFrame  # index date: value, cash, flow, cost, tax, traded, returns
    weights: pd.DataFrame  # index date, columns asset: weights after trading
    metrics: pd.Series


def backtest(
    prices: pd.DataFrame,
    target: pd.Series,
    policy: Policy,
    config: BacktestConfig | None = None,
) -> BacktestResult:
    """Run ``policy`` over ``prices`` (index date, columns asset) towards ``target``."""
    config = config or BacktestConfig()
    prices, target = _checked(prices, target, config)
    returns = prices.pct_change()
    dates = prices.index[config.risk_lookback :]
    ledger = Ledger(
        config.initial_value,
        tax_rate_short=config.tax_rate_short,
        tax_rate_long=config.tax_rate_long,
    )
    cost_rate = config.cost_bps / 1e4
    rows: list[dict[str, float]] = []
    weights: list[pd.Series] = []
    last_rebalance: pd.Timestamp | None = None
    risk = _risk(returns, dates[0], config.risk_lookback)
    previous: pd.Timestamp | None = None
    for k, date in enumerate(dates):
        p = prices.loc[date]
        flow = 0.0
        tax = 0.0
        if previous is not None and date.year != previous.year:
            tax = ledger.settle_year(previous.year)
            flow -= tax
        if previous is not None and date.month != previous.month:
            risk = _risk(returns, date, config.risk_lookback)
            if config.contribution:
                flow += _contribute(ledger, config.contribution, date, p, cost_rate)
        day = Day(date, k, p, target, ledger, risk, last_rebalance, config.cost_bps)
        value_before = day.value
        orders = orders_to_weights(day, target) if k == 0 else policy.decide(day)
        cost, traded = _execute(ledger, orders, date, p, cost_rate)
        if traded > 0 and k > 0:
            last_rebalance = date
        if k == 0:
            last_rebalance = date
            traded = 0.0  # the initial purchase is not turnover
        value = ledger.market_value(p)
        rows.append(
            {
                "value": value,
                "cash": ledger.cash,
                "flow": flow,
                "cost": cost,
                "tax": tax,
                "traded": traded / value_before,
                "rebalanced": float(traded > 0),
            }
        )
        held = ledger.positions().reindex(prices.columns, fill_value=0.0)
        weights.append(held * p / value)
        previous = date
    daily = pd.DataFrame(rows, index=dates)
    daily["return"] = (daily["value"] - daily["flow"]) / daily["value"].shift() - 1
    daily["target_return"] = returns.loc[dates, target.index] @ target
    frame = pd.DataFrame(weights, index=dates)
    metrics = _metrics(daily, ledger, prices.loc[dates[-1]], config)
    return BacktestResult(policy.name, daily, frame, metrics)


def compare(
    prices: pd.DataFrame,
    target: pd.Series,
    policies: Sequence[Policy],
    config: BacktestConfig | None = None,
) -> pd.DataFrame:
    """Return one row of metrics per policy, index the policy's name."""
    rows = [backtest(prices, target, p, config).metrics for p in policies]
    return pd.DataFrame(rows, index=pd.Index([p.name for p in policies], name="policy"))


def _checked(
    prices: pd.DataFrame, target: pd.Series, config: BacktestConfig
) -> tuple[pd.DataFrame, pd.Series]:
    """Reject histories a backtest cannot run on."""
    missing = target.index.difference(prices.columns)
    if len(missing):
        raise InputError("no price history", asset=str(missing[0]), field="prices")
    values = prices.to_numpy(dtype=float)
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise InputError("prices must be finite and > 0", field="prices")
    if len(prices) <= config.risk_lookback + 1:
        raise InputError(
            f"need more than {config.risk_lookback + 1} days of prices", field="prices"
        )
    if (target < 0).any() or target.sum() > 1 + 1e-9:
        raise InputError("target weights must be >= 0 and sum to <= 1", field="target")
    return prices.sort_index().astype(float), target.astype(float)


def _risk(
    returns: pd.DataFrame, date: pd.Timestamp, lookback: int
) -> CovarianceRiskModel:
    """Annualised shrunk covariance of the ``lookback`` returns before ``date``."""
    past = returns.loc[:date].iloc[-lookback - 1 : -1].dropna()
    return shrunk_covariance(past, periods_per_year=TRADING_DAYS)


def _execute(
    ledger: Ledger,
    orders: Orders | None,
    date: pd.Timestamp,
    prices: pd.Series,
    cost_rate: float,
) -> tuple[float, float]:
    """Trade at today's prices, sales first; return the cost and traded value.

    Buys are scaled down together if cash (after the sales) cannot pay for
    them and their costs, so cash never goes negative.
    """
    if orders is None or orders.empty:
        return 0.0, 0.0
    cost = traded = 0.0
    shortfall: dict[str, float] = {}
    for lot_id, shares in orders.sells.items():
        lot = ledger.lot(str(lot_id))
        if lot is None:
            continue
        # an earlier sale's wash may have split this lot: sell the rest below
        sold = min(float(shares), lot.quantity)
        if shares - sold > 1e-12:
            shortfall[lot.asset] = shortfall.get(lot.asset, 0.0) + shares - sold
        c, t = _sell(
            ledger, date, lot.lot_id, sold, float(prices[lot.asset]), cost_rate
        )
        cost, traded = cost + c, traded + t
    for asset, shares in shortfall.items():
        lots = ledger.lots()
        held = lots[lots["asset"] == asset].sort_values(["acquired", "lot_id"])
        for held_id, quantity in zip(held["lot_id"], held["quantity"], strict=True):
            sold = min(shares, float(quantity))
            c, t = _sell(ledger, date, held_id, sold, float(prices[asset]), cost_rate)
            cost, traded, shares = cost + c, traded + t, shares - sold
            if shares <= 1e-12:
                break
    buys = orders.buys[orders.buys > 0]
    needed = float((buys * prices[buys.index]).sum() * (1 + cost_rate))
    scale = min(1.0, ledger.cash / needed * (1 - 1e-12)) if needed > 0 else 0.0
    scaled = buys * scale
    for name, quantity in scaled[scaled > 1e-12].items():
        price = float(prices[str(name)])
        value = float(quantity) * price
        ledger.buy(date, str(name), float(quantity), price, value * cost_rate)
        cost, traded = cost + value * cost_rate, traded + value
    return cost, traded


def _contribute(
    ledger: Ledger,
    amount: float,
    date: pd.Timestamp,
    prices: pd.Series,
    cost_rate: float,
) -> float:
    """Deposit ``amount``, or withdraw it, selling pro rata if cash is short.

    Returns the amount that left or entered the account (a withdrawal is
    capped at the account's value).
    """
    short = -amount - ledger.cash
    if short > 0:
        held = ledger.positions()
        value = float((held * prices[held.index]).sum())
        fraction = min(1.0, short / (value * (1 - cost_rate))) if value > 0 else 0.0
        lots = ledger.lots().sort_values(["acquired", "lot_id"], kind="stable")
        for lot_id, asset, quantity in zip(
            lots["lot_id"], lots["asset"], lots["quantity"], strict=True
        ):
            _sell(
                ledger,
                date,
                lot_id,
                fraction * quantity,
                float(prices[asset]),
                cost_rate,
            )
        amount = max(amount, -ledger.cash)
    ledger.deposit(amount)
    return amount


def _sell(
    ledger: Ledger,
    date: pd.Timestamp,
    lot_id: str,
    shares: float,
    price: float,
    cost_rate: float,
) -> tuple[float, float]:
    """Sell ``shares`` of a lot; return the cost and the traded value."""
    if shares <= 1e-12:
        return 0.0, 0.0
    value = shares * price
    ledger.sell(date, lot_id, shares, price, value * cost_rate)
    return value * cost_rate, value


def _metrics(
    daily: pd.DataFrame, ledger: Ledger, last_prices: pd.Series, config: BacktestConfig
) -> pd.Series:
    """Return realized tracking error, turnover, costs, taxes and wealth."""
    years = (len(daily) - 1) / TRADING_DAYS
    active = (daily["return"] - daily["target_return"]).iloc[1:]
    gains = np.array([r.gain + r.disallowed for r in ledger.realizations])
    after_tax = ledger.liquidation_value_after_tax(daily.index[-1], last_prices)
    growth = np.nan
    if not config.contribution:
        growth = (after_tax / config.initial_value) ** (1 / years) - 1
    return pd.Series(
        {
            "tracking_error": float(active.std() * np.sqrt(TRADING_DAYS)),
            "turnover_per_year": float(daily["traded"].sum() / 2 / years),
            "rebalances": int(daily["rebalanced"].iloc[1:].sum()),
            "costs": float(daily["cost"].sum()),
            "taxes_paid": float(daily["tax"].sum()),
            "harvested_losses": float(-gains[gains < 0].sum()),
            "wash_sale_disallowed": float(
                sum(r.disallowed for r in ledger.realizations)
            ),
            "realized_gains": float(gains[gains > 0].sum()),
            "pre_tax_wealth": float(daily["value"].iloc[-1]),
            "after_tax_wealth": float(after_tax),
            "after_tax_return": float(growth),
        }
    )
