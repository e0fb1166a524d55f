"""Daily price histories for backtests: real (offline) and synthetic.

Prices are total-return closes: dividends are reinvested in the price, so a
backtest on them takes dividends into account without paying them out (and
without taxing them; see ``solver.dynamic.simulation``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.errors import InputError


def sp500_prices(start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Return daily adjusted closes of 20 S&P 500 stocks, 1990-2022.

    The data ship inside the ``skfolio`` package (BSD-3; "for testing and
    example purposes"), installed with this project's ``data`` or ``dev``
    extra, and load offline. They are split- and dividend-adjusted, so share
    counts on them are notional (fractional shares).
    """
    try:
        from skfolio.datasets import load_sp500_dataset
    except ImportError as exc:
        raise InputError(
            "the S&P 500 history needs skfolio: pip install '.[data]'",
            field="prices",
        ) from exc
    prices: pd.DataFrame = load_sp500_dataset().loc[start:end]
    prices.index = pd.DatetimeIndex(prices.index).as_unit("ns").rename("date")
    prices.columns = prices.columns.astype(str).rename("asset")
    return prices.astype(float)


def synthetic_prices(
    n_assets: int,
    n_days: int,
    *,
    seed: int = 0,
    start: str = "2015-01-02",
    annual_return: float = 0.07,
    annual_volatility: float = 0.25,
    correlation: float = 0.3,
) -> pd.DataFrame:
    """Return geometric Brownian motion closes on business days (one factor)."""
    if n_assets < 1 or n_days < 2:
        raise InputError("need at least one asset and two days", field="prices")
    rng = np.random.default_rng(seed)
    daily_vol = annual_volatility / np.sqrt(252)
    market = rng.normal(0.0, 1.0, (n_days - 1, 1))
    own = rng.normal(0.0, 1.0, (n_days - 1, n_assets))
    shocks = np.sqrt(correlation) * market + np.sqrt(1 - correlation) * own
    drift = annual_return / 252 - daily_vol**2 / 2
    log_returns = drift + daily_vol * shocks
    start_prices = rng.uniform(20.0, 200.0, n_assets)
    paths = start_prices * np.exp(
        np.vstack([np.zeros(n_assets), log_returns.cumsum(0)])
    )
    dates = pd.bdate_range(start, periods=n_days, name="date")
    columns = pd.Index([f"S{i:02d}" for i in range(n_assets)], name="asset")
    return pd.DataFrame(paths, index=dates, columns=columns)
