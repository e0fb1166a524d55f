"""Whole-share orders against a brute force over every integer quantity.

The oracle is written from the raw inputs (prices, cash, target weights,
the dense covariance), not from the package's snapshot or ladders: it lists
every affordable quantity of every asset, computes each allocation's
objective with numpy, and keeps the best.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import solver
from models import (
    Account,
    FactorRiskModel,
    LinearCost,
    Market,
    MinCash,
    TrackingError,
)

AS_OF = pd.Timestamp("2026-06-30")
LOT_COLUMNS = {
    "asset": pd.Series(dtype=str),
    "lot_id": pd.Series(dtype=str),
    "quantity": pd.Series(dtype=float),
    "cost_basis": pd.Series(dtype=float),
    "acquired": pd.Series(dtype="datetime64[ns]"),
}
SAME = 1e-12  # objective units (variance): two allocations this close are equal


def _factor_market(
    prices: np.ndarray,
    loadings: np.ndarray,
    factor_vol: np.ndarray,
    specific: np.ndarray,
) -> tuple[Market, np.ndarray]:
    """Return a market with a factor model, and its dense covariance."""
    assets = [f"S{i}" for i in range(len(prices))]
    factors = [f"f{j}" for j in range(loadings.shape[1])]
    risk = FactorRiskModel(
        loadings=pd.DataFrame(loadings, index=assets, columns=factors),
        factor_covariance=pd.DataFrame(
            np.diag(factor_vol**2), index=factors, columns=factors
        ),
        specific_variance=pd.Series(specific, index=assets),
    )
    sigma = loadings @ np.diag(factor_vol**2) @ loadings.T + np.diag(specific)
    table = pd.DataFrame({"asset": assets, "price": prices, "cost_bps": 0.0})
    return Market(as_of=AS_OF, prices=table, risk_model=risk), sigma


def _from_cash(
    cash: float, market: Market, target: np.ndarray, objective: tuple
) -> np.ndarray:
    """Return the shares ``solver.rebalance`` buys for an all-cash account."""
    assets = list(market.prices.index)
    result = solver.rebalance(
        Account("C", cash, pd.DataFrame(LOT_COLUMNS)),
        targets=pd.Series(target, index=assets),
        market=market,
        objective=objective,
        constraints=(MinCash(0.0),),
    )
    assert result.status == "optimal", result.message
    bought = result.trades.groupby("asset")["quantity"].sum()
    return bought.reindex(assets, fill_value=0.0).to_numpy()


def _brute_force(
    cash: float, prices: np.ndarray, target: np.ndarray, sigma: np.ndarray, te: float
) -> tuple[float, np.ndarray]:
    """Return the least ``te * variance`` over every affordable allocation."""
    grid = np.array(
        list(itertools.product(*(range(int(cash // p) + 1) for p in prices))),
        dtype=float,
    )
    grid = grid[grid @ prices <= cash]
    active = grid * prices / cash - target
    values = te * np.einsum("ij,jk,ik->i", active, sigma, active)
    best = int(np.argmin(values))
    return float(values[best]), grid[best]


def _variance(q: np.ndarray, cash: float, prices, target, sigma) -> float:
    active = q * prices / cash - target
    return float(active @ sigma @ active)


def test_issue_case_reaches_the_best_whole_share_allocation():
    """$1,000 of cash, five names, a 2-factor model: the brute-force optimum."""
    prices = np.array([10.41, 162.23, 204.47, 39.0, 564.74])
    target = np.array([0.2578, 0.0304, 0.2213, 0.0824, 0.4081])
    rng = np.random.default_rng(0)
    loadings = np.c_[np.ones(5), rng.normal(0, 0.2, 5)]
    market, sigma = _factor_market(
        prices, loadings, np.array([0.16, 0.05]), rng.uniform(0.1, 0.3, 5) ** 2
    )
    got = _from_cash(1000.0, market, target, (TrackingError(1.0),))
    best, allocation = _brute_force(1000.0, prices, target, sigma, 1.0)
    np.testing.assert_array_equal(got, allocation)  # [22, 0, 1, 0, 1]
    assert _variance(got, 1000.0, prices, target, sigma) == pytest.approx(best)
    assert got @ prices <= 1000.0


@pytest.mark.parametrize("seed", range(24))
def test_tiny_accounts_from_cash_equal_the_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    prices = np.round(np.exp(rng.uniform(np.log(8), np.log(600), n)), 2)
    loadings = np.c_[rng.normal(1.0, 0.25, n), rng.normal(0, 0.3, (n, 1))]
    market, sigma = _factor_market(
        prices, loadings, np.array([0.16, 0.04]), rng.uniform(0.1, 0.35, n) ** 2
    )
    target = rng.dirichlet(np.ones(n))
    # small enough for the brute force: at most about 200,000 allocations
    cash = float(np.round(rng.uniform(300, 1500), 2))
    while np.prod(cash // prices + 1) > 200_000:
        cash *= 0.8
    te = float(np.exp(rng.uniform(0, np.log(1000))))
    got = _from_cash(cash, market, target, (TrackingError(te), LinearCost()))
    best, _ = _brute_force(cash, prices, target, sigma, te)
    assert got @ prices <= cash + 1e-9
    assert te * _variance(got, cash, prices, target, sigma) <= best + SAME
