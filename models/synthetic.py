"""Reproducible synthetic markets and accounts for examples, tests and benchmarks.

Realistic in the ways that matter to the optimizer: a factor risk model,
per-asset costs, 1-8 tax lots per asset (4.5 on average) with gains and
losses, short- and long-term lots, and holdings drifted from the target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.account import Account
from models.market import Market
from models.risk import FactorRiskModel

SECTORS = (
    "energy",
    "materials",
    "industrials",
    "consumer",
    "health",
    "financials",
    "tech",
)


def synthetic_market(
    n_assets: int,
    *,
    n_factors: int = 20,
    seed: int = 0,
    as_of: str = "2026-11-24",
) -> Market:
    """Return a market of ``n_assets`` assets with a factor risk model."""
    rng = np.random.default_rng(seed)
    assets = pd.Index([f"A{i:04d}" for i in range(n_assets)], name="asset")
    factors = [f"f{j:02d}" for j in range(n_factors)]
    loadings = rng.normal(0.0, 1.0, (n_assets, n_factors)) * 0.3
    loadings[:, 0] = rng.normal(1.0, 0.25, n_assets)  # a market factor
    factor_vol = np.r_[0.16, rng.uniform(0.02, 0.06, n_factors - 1)]
    specific_vol = rng.uniform(0.10, 0.35, n_assets)
    prices = pd.DataFrame(
        {
            "asset": assets,
            "price": np.round(np.exp(rng.uniform(np.log(5), np.log(500), n_assets)), 2),
            "cost_bps": rng.uniform(5, 20, n_assets),
            "adv": np.round(10 ** rng.uniform(5, 7, n_assets)),
            "volatility": np.sqrt(
                ((loadings * factor_vol) ** 2).sum(axis=1) + specific_vol**2
            )
            / np.sqrt(252),
            "sector": rng.choice(SECTORS, n_assets),
        }
    )
    risk = FactorRiskModel(
        loadings=pd.DataFrame(loadings, index=assets, columns=factors),
        factor_covariance=pd.DataFrame(
            np.diag(factor_vol**2), index=factors, columns=factors
        ),
        specific_variance=pd.Series(specific_vol**2, index=assets),
    )
    return Market(as_of=pd.Timestamp(as_of), prices=prices, risk_model=risk)


def synthetic_targets(
    market: Market, *, seed: int = 0, n_holdings: int | None = None
) -> pd.Series:
    """Return random target weights over ``n_holdings`` assets (all by default)."""
    rng = np.random.default_rng(seed)
    assets = market.prices.index
    chosen = (
        assets
        if n_holdings is None
        else pd.Index(rng.choice(assets, n_holdings, replace=False))
    )
    weights = rng.dirichlet(np.full(len(chosen), 2.0))
    return pd.Series(
        weights / weights.sum(), index=pd.Index(chosen, name="asset"), name="weight"
    )


def synthetic_account(
    market: Market,
    targets: pd.Series,
    *,
    account_id: str = "ACC0001",
    value: float = 1_000_000.0,
    cash_fraction: float = 0.01,
    seed: int = 0,
) -> Account:
    """Return an account that held ``targets`` once and has drifted since."""
    rng = np.random.default_rng(seed)
    as_of = market.as_of
    prices = market.prices.loc[targets.index, "price"].to_numpy()
    drifted = targets.to_numpy() * rng.lognormal(0.0, 0.25, len(targets))
    invested = drifted / drifted.sum() * value * (1 - cash_fraction)
    rows = []
    for asset, price, amount in zip(targets.index, prices, invested, strict=True):
        shares = max(1, round(amount / price))
        n_lots = min(int(rng.integers(1, 9)), shares)
        split = rng.multinomial(shares - n_lots, rng.dirichlet(np.ones(n_lots))) + 1
        for k, quantity in enumerate(split):
            age_days = (
                int(rng.uniform(40, 5 * 365))
                if rng.random() > 0.23
                else int(rng.uniform(31, 360))
            )
            gain = (
                rng.normal(0.08, 0.25)
                if rng.random() < 0.6
                else -abs(rng.normal(0.1, 0.1))
            )
            rows.append(
                {
                    "asset": asset,
                    "lot_id": f"{account_id}-{asset}-{k}",
                    "quantity": float(quantity),
                    "cost_basis": round(price / (1 + gain), 4)
                    if gain > -0.95
                    else price,
                    "acquired": as_of - pd.Timedelta(days=age_days),
                }
            )
    return Account(
        account_id=account_id,
        cash=value * cash_fraction,
        lots=pd.DataFrame(rows),
    )
