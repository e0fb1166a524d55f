"""Walk an account through a daily price history under a rebalancing policy.

Each day: settle a year's tax once its last wash-sale window has closed
(the first trading day after January 30 for a 30-day window), add the
periodic contribution on the first day of a month, let the policy decide,
then trade at the day's close with a linear cost and real lot accounting
(:class:`solver.dynamic.ledger.Ledger`: holding periods, short/long-term gains,
wash sales across days). Prices are total-return closes, so dividends are
reinvested through the price and are not taxed as income: a simplification
that favours no policy over another.

The loop works on arrays (prices, shares, target weights); pandas tables are
built once, at the end. Returns are measured after costs; taxes and
contributions are flows, so the realized tracking error compares investment
decisions only. The target portfolio is the costless daily-rebalanced target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import InputError
from models.risk_estimation import shrunk_covariance_matrix
from solver.dynamic.ledger import Ledger
from solver.dynamic.metrics import TRADING_DAYS, metrics
from solver.dynamic.policies import (
    Day,
    Orders,
    Policy,
    Risk,
    fifo_sells,
    orders_to_weights,
)


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
    loss_deduction_limit : float
        Net capital loss used against other income each year (US: $3,000);
        ``math.inf`` uses every net loss in its year, as against gains made
        outside the account, at the short-term rate.
    """

    initial_value: float = 1_000_000.0
    cost_bps: float = 10.0
    tax_rate_short: float = 0.408
    tax_rate_long: float = 0.238
    contribution: float = 0.0
    risk_lookback: int = TRADING_DAYS
    loss_deduction_limit: float = 3000.0


@dataclass(frozen=True)
class BacktestResult:
    """The path and the metrics of one policy.

    ``daily`` (index date): ``value`` (cash and positions less tax owed),
    ``cash``, ``contribution``, ``tax`` (settled that day, negative for a
    refund), ``cost`` and ``traded`` (fraction of the value before trading;
    both with the sales that fund a withdrawal), ``rebalanced`` (the policy
    traded), ``return`` (pre-tax: taxes count as withdrawals),
    ``after_tax_return`` and ``target_return``. ``metrics``: see
    :func:`solver.dynamic.metrics.metrics`.
    """

    policy: str
    daily: pd.DataFrame
    weights: pd.DataFrame  # index date, columns asset: weights after trading
    metrics: pd.Series


def backtest(
    prices: pd.DataFrame,
    target: pd.Series,
    policy: Policy,
    config: BacktestConfig | None = None,
) -> BacktestResult:
    """Run ``policy`` over ``prices`` (index date, columns asset) towards ``target``.

    Only the target's assets are traded (the other columns are ignored).
    """
    config = config or BacktestConfig()
    prices, target = _checked(prices, target, config)
    returns = prices.pct_change()
    dates = prices.index[config.risk_lookback :]
    assets = target.index
    history = returns[assets].to_numpy()
    table = prices.loc[dates, assets].to_numpy()
    weights = target.to_numpy()
    ledger = Ledger(
        config.initial_value,
        tax_rate_short=config.tax_rate_short,
        tax_rate_long=config.tax_rate_long,
        loss_deduction_limit=config.loss_deduction_limit,
    )
    cost_rate = config.cost_bps / 1e4
    n = len(dates)
    path = {c: np.zeros(n) for c in ("value", "cash", "contribution", "tax", "cost")}
    path |= {"traded": np.zeros(n), "rebalanced": np.zeros(n)}
    held = np.zeros((n, len(assets)))
    shares = np.zeros(len(assets))
    last_rebalance: pd.Timestamp | None = dates[0]
    pending = dates[0].year  # the first year not settled
    settles_on = ledger.settles_on(pending)
    months = pd.DatetimeIndex(dates).month.to_numpy()
    risk = _risk(history, config.risk_lookback, assets, config.risk_lookback)
    for k, date in enumerate(dates):
        p = table[k]
        flow_cost = flow_traded = 0.0  # of the sales that fund a withdrawal
        if date >= settles_on:
            path["tax"][k] = ledger.settle_year(pending)
            pending += 1
            settles_on = ledger.settles_on(pending)
        if k and months[k] != months[k - 1]:
            risk = _risk(
                history, config.risk_lookback + k, assets, config.risk_lookback
            )
            if config.contribution:
                path["contribution"][k], flow_cost, flow_traded = _contribute(
                    ledger, config.contribution, date, assets, p, cost_rate
                )
                shares = _shares(ledger, assets)
        value = float(shares @ p) + ledger.cash - ledger.tax_owed
        day = Day(
            date,
            k,
            assets,
            p,
            weights,
            shares,
            value,
            ledger,
            risk,
            last_rebalance,
            config.cost_bps,
        )
        orders = orders_to_weights(day, weights) if k == 0 else policy.decide(day)
        cost, traded = _execute(ledger, orders, date, assets, p, cost_rate)
        if traded > 0:
            shares = _shares(ledger, assets)
            last_rebalance = date
            path["rebalanced"][k] = float(k > 0)
        path["traded"][k] = (
            (traded + flow_traded) / value if k else 0.0
        )  # not the first buy
        path["cost"][k] = cost + flow_cost
        path["value"][k] = float(shares @ p) + ledger.cash - ledger.tax_owed
        path["cash"][k] = ledger.cash
        held[k] = shares * p / path["value"][k]
    daily = pd.DataFrame(path, index=dates)
    before = daily["value"].shift()
    invested = daily["value"] - daily["contribution"]
    daily["return"] = (invested + daily["tax"]) / before - 1
    daily["after_tax_return"] = invested / before - 1
    daily["target_return"] = returns.loc[dates, assets].to_numpy() @ weights
    frame = pd.DataFrame(held, index=dates, columns=assets)
    closing = pd.Series(table[-1], index=assets)
    return BacktestResult(
        policy.name, daily, frame, metrics(daily, ledger, closing, config)
    )


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


def _risk(history: np.ndarray, row: int, assets: pd.Index, lookback: int) -> Risk:
    """Annualised shrunk covariance of the ``lookback`` returns before ``row``."""
    past = history[max(row - lookback, 0) : row]
    past = past[np.isfinite(past).all(axis=1)]
    centred = past - past.mean(axis=0)
    return Risk(assets, shrunk_covariance_matrix(centred, None) * TRADING_DAYS)


def _shares(ledger: Ledger, assets: pd.Index) -> np.ndarray:
    """Return the shares held of each of ``assets``."""
    held = ledger.shares()
    return np.array([held.get(str(a), 0.0) for a in assets])


def _execute(
    ledger: Ledger,
    orders: Orders | None,
    date: pd.Timestamp,
    assets: pd.Index,
    prices: np.ndarray,
    cost_rate: float,
) -> tuple[float, float]:
    """Trade at today's prices, sales first; return the cost and traded value.

    Buys are scaled down together if cash (after the sales) cannot pay for
    them and their costs, so cash never goes negative.
    """
    if orders is None or orders.empty:
        return 0.0, 0.0
    names = assets.tolist()
    price_of = dict(zip(names, prices.tolist(), strict=True))
    cost = traded = 0.0
    shortfall = np.zeros(len(assets))
    for lot_id, shares in orders.sells.items():
        lot = ledger.lot(lot_id)
        if lot is None:
            continue
        # an earlier sale's wash may have split this lot: sell the rest below
        sold = min(float(shares), lot.quantity)
        if shares - sold > 1e-12:
            shortfall[names.index(lot.asset)] += shares - sold
        c, t = _sell(ledger, date, lot_id, sold, price_of[lot.asset], cost_rate)
        cost, traded = cost + c, traded + t
    for lot_id, shares in fifo_sells(ledger, assets, shortfall).items():
        asset = ledger.lot(lot_id).asset  # type: ignore[union-attr]
        c, t = _sell(ledger, date, lot_id, shares, price_of[asset], cost_rate)
        cost, traded = cost + c, traded + t
    buys = np.maximum(orders.buys, 0.0)
    needed = float(buys @ prices) * (1 + cost_rate)
    scale = min(1.0, ledger.cash / needed * (1 - 1e-12)) if needed > 0 else 0.0
    for k in np.flatnonzero(buys * scale > 1e-12):
        quantity, price = float(buys[k] * scale), float(prices[k])
        value = quantity * price
        ledger.buy(date, str(names[k]), quantity, price, value * cost_rate)
        cost, traded = cost + value * cost_rate, traded + value
    return cost, traded


def _contribute(
    ledger: Ledger,
    amount: float,
    date: pd.Timestamp,
    assets: pd.Index,
    prices: np.ndarray,
    cost_rate: float,
) -> tuple[float, float, float]:
    """Deposit ``amount``, or withdraw it, selling pro rata (FIFO lots) if short.

    Returns the amount that left or entered the account (a withdrawal is
    capped at the account's value), and the cost and traded value of the
    sales that fund it.
    """
    short = -amount - ledger.cash
    cost = traded = 0.0
    if short > 0:
        held = _shares(ledger, assets)
        value = float(held @ prices)
        fraction = min(1.0, short / (value * (1 - cost_rate))) if value > 0 else 0.0
        sells = fifo_sells(ledger, assets, fraction * held)
        orders = Orders(0 * held, sells)
        cost, traded = _execute(ledger, orders, date, assets, prices, cost_rate)
        amount = max(amount, -ledger.cash)
    ledger.deposit(amount)
    return amount, cost, traded


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
