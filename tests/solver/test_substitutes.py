"""Buying a correlated substitute for a harvested loss (``buy_any``)."""

from __future__ import annotations

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
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from solver.result import SolveOptions
from tests.conftest import lots

AS_OF = pd.Timestamp("2026-06-30")
TE_WEIGHT, COST_BPS, RATE_SHORT = 100.0, 5.0, 0.408
SPECIFIC = np.array([0.0004, 0.0004, 0.01])  # A and B: near twins; C apart
V = 100_000.0


def _market() -> tuple[Market, np.ndarray]:
    assets = ["A", "B", "C"]
    loadings = np.array([[1.0, 0.0], [1.0, 0.0], [0.3, 1.0]])
    factor_var = np.array([0.04, 0.02])
    risk = FactorRiskModel(
        loadings=pd.DataFrame(loadings, index=assets, columns=["m", "s"]),
        factor_covariance=pd.DataFrame(
            np.diag(factor_var), index=["m", "s"], columns=["m", "s"]
        ),
        specific_variance=pd.Series(SPECIFIC, index=assets),
    )
    sigma = loadings @ np.diag(factor_var) @ loadings.T + np.diag(SPECIFIC)
    prices = pd.DataFrame({"asset": assets, "price": 100.0, "cost_bps": COST_BPS})
    return Market(as_of=AS_OF, prices=prices, risk_model=risk), sigma


def _account(acquired: str) -> Account:
    """950 shares of A at 100 (95% of V), bought at 166.67: a 40% loss."""
    lots = pd.DataFrame(
        {
            "asset": ["A"],
            "lot_id": ["a1"],
            "quantity": [950.0],
            "cost_basis": [100.0 / 0.6],
            "acquired": [acquired],
        }
    )
    return Account("S1", 5_000.0, lots)


def _rebalance(acct: Account, market: Market, buy_any: bool) -> solver.RebalanceResult:
    return solver.rebalance(
        acct,
        targets=pd.Series({"A": 0.95, "CASH": 0.05}),
        market=market,
        objective=(TrackingError(TE_WEIGHT), LinearCost(), TaxCost()),
        constraints=(NoBuyAndSell(), WashSaleRule(), MinCash(0.0)),
        options=SolveOptions(buy_any=buy_any),
    )


def _objective(weights: np.ndarray, sigma: np.ndarray, sold_a: float, traded: float):
    """Objective by hand: weights of A, B, C after the trades (fractions of V)."""
    active = weights - np.array([0.95, 0.0, 0.0])
    loss = (1 - 1 / 0.6) * sold_a  # gain per dollar sold: 1 - basis / price
    return (
        TE_WEIGHT * active @ sigma @ active
        + COST_BPS / 1e4 * traded
        + RATE_SHORT * loss
    )


def test_harvesting_a_and_buying_its_twin_beats_holding_and_selling():
    market, sigma = _market()
    hold = _objective(np.array([0.95, 0, 0]), sigma, 0.0, 0.0)
    to_cash = _objective(np.zeros(3), sigma, 0.95, 0.95)
    result = _rebalance(_account("2026-03-01"), market, buy_any=True)
    assert result.status == "optimal", result.message
    trades = result.trades.set_index(["asset", "side"])["quantity"]
    assert trades[("A", "sell")] == 950.0  # the whole loss harvested
    assert ("A", "buy") not in trades.index  # no wash sale: A is not bought back
    bought = np.array([trades.get((a, "buy"), 0.0) for a in "ABC"]) * 100 / V
    assert bought[1] > 0.9  # the twin replaces A
    cash_left = result.summary["cash_after"] / V
    twin = _objective(bought, sigma, 0.95, 0.95 + bought.sum())
    assert result.summary["objective_discrete"] == pytest.approx(twin, abs=1e-9)
    assert twin < min(hold, to_cash) - 0.05
    assert cash_left >= 0
    default = _rebalance(_account("2026-03-01"), market, buy_any=False)
    assert "B" not in set(default.trades["asset"])  # only held or targeted assets
    assert default.summary["objective_discrete"] >= twin + 0.05


def test_the_wash_sale_rule_still_holds_the_loss_lot_bought_in_the_window():
    """A was bought 10 days ago: selling its loss lot would wash, twin or not."""
    market, _ = _market()
    result = _rebalance(_account("2026-06-20"), market, buy_any=True)
    assert result.status == "optimal", result.message
    sold = result.trades[result.trades["side"] == "sell"]
    assert "A" not in set(sold["asset"])


@pytest.mark.parametrize("bad", ["price", "specific_risk"])
def test_buy_any_leaves_out_an_unusable_asset_nobody_holds(bad):
    """Z has a zero price, or no specific variance: buy_any may not buy it,
    but the account neither holds nor targets it, so it is solved (every
    account of a batch became invalid_input)."""
    assets = ["X", "Y", "Z"]
    loadings = pd.DataFrame({"m": [1.0, 0.8, 0.9]}, index=assets)
    specific = pd.Series(
        [0.02, 0.03, np.nan if bad == "specific_risk" else 0.02], index=assets
    )
    prices = pd.Series({"X": 10.0, "Y": 20.0, "Z": 0.0 if bad == "price" else 5.0})
    market = Market(
        as_of=pd.Timestamp("2026-06-30"),
        prices=prices,
        risk_model=FactorRiskModel(
            loadings, pd.DataFrame([[0.04]], index=["m"], columns=["m"]), specific
        ),
    )
    result = solver.rebalance(
        Account("A1", 1_000.0, lots(("X", "x1", 50, 12.0, "2026-01-05"))),
        targets={"X": 0.5, "Y": 0.5},
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        options=SolveOptions(buy_any=True),
    )
    assert result.status is solver.Status.OPTIMAL
    assert "Z" not in set(result.trades["asset"])
