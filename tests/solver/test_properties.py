"""Invariants on random small accounts (hypothesis)."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solver
from models import (
    Account,
    CovarianceRiskModel,
    LinearCost,
    LongOnly,
    Market,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from solver.result import SolveOptions
from tests.conftest import account_value

AS_OF = pd.Timestamp("2026-06-30")
TOL = 1e-7  # fraction of V
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def problems(draw):
    n = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    assets = [f"S{i}" for i in range(n)]
    prices = rng.uniform(1, 500, n).round(2)
    rows = []
    for i, asset in enumerate(assets):
        for k in range(int(rng.integers(0, 4))):
            rows.append(
                {
                    "asset": asset,
                    "lot_id": f"{asset}-{k}",
                    "quantity": float(rng.integers(1, 200)),
                    "cost_basis": float(prices[i] * rng.uniform(0.5, 1.5)),
                    "acquired": AS_OF - pd.Timedelta(days=int(rng.integers(1, 2000))),
                }
            )
    lots = pd.DataFrame(
        rows, columns=["asset", "lot_id", "quantity", "cost_basis", "acquired"]
    )
    A = rng.normal(size=(n, n)) * 0.1
    sigma = A @ A.T + np.diag(rng.uniform(0.005, 0.05, n))
    market = Market(
        as_of=AS_OF,
        prices=pd.DataFrame(
            {"asset": assets, "price": prices, "cost_bps": rng.uniform(1, 30, n)}
        ),
        risk_model=CovarianceRiskModel(
            pd.DataFrame(sigma, index=assets, columns=assets)
        ),
    )
    cash = float(draw(st.sampled_from([0.0, 100.0, 5000.0, 1e5])))
    if lots.empty and cash == 0:
        cash = 1000.0
    targets = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
    objective = (
        TrackingError(draw(st.sampled_from([1.0, 50.0, 1000.0]))),
        LinearCost(),
        TaxCost(loss_factor=draw(st.sampled_from([0.0, 0.5, 1.0]))),
    )
    constraints = (
        MinCash(draw(st.sampled_from([0.0, 0.01, 0.05]))),
        MaxTurnover(draw(st.sampled_from([0.02, 0.1, 1.0]))),
        NoBuyAndSell(),
        LongOnly(),
    )
    return Account("P", cash, lots), market, targets, objective, constraints


CONTINUOUS = SolveOptions(rounding="none")


def _run(acct, market, targets, objective, constraints, options=None):
    return solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=objective,
        constraints=constraints,
        options=options,
    )


@PROPERTY_SETTINGS
@given(problems())
def test_rebalance_invariants_hold_on_random_accounts(problem):
    acct, market, _, _, constraints = problem
    result = _run(*problem)
    if result.status == "infeasible":
        assert result.conflicting
        return
    assert result.status in ("optimal", "optimal_inaccurate")
    trades = result.trades
    V = account_value(acct, market)
    floor, limit = constraints[0].fraction, constraints[1].limit
    assert result.summary["cash_after"] >= floor * V - TOL * V
    assert result.summary["cash_after"] >= -TOL * V
    assert (trades["quantity"] > 0).all()
    buys = set(trades.loc[trades["side"] == "buy", "asset"])
    assert buys.isdisjoint(trades.loc[trades["side"] == "sell", "asset"])
    sold = trades[trades["side"] == "sell"].groupby("lot_id")["quantity"].sum()
    held = acct.lots.set_index("lot_id")["quantity"]
    assert (sold <= held.reindex(sold.index) * (1 + 1e-12)).all()
    assert (result.weights["after"] >= -TOL).all()
    assert result.summary["turnover"] <= limit + TOL


@PROPERTY_SETTINGS
@given(problems())
def test_rebalance_does_not_depend_on_asset_order(problem):
    acct, market, targets, objective, constraints = problem
    base = _run(*problem)
    rename = {a: f"Z{99 - int(a[1:])}" for a in market.prices.index}  # reverses order
    lots = acct.lots.assign(asset=acct.lots["asset"].map(rename))
    sigma = market.risk_model.covariance.rename(index=rename, columns=rename)
    renamed_market = Market(
        as_of=market.as_of,
        prices=market.prices.reset_index().assign(
            asset=lambda t: t["asset"].map(rename)
        ),
        risk_model=CovarianceRiskModel(sigma),
    )
    other = _run(
        Account("P", acct.cash, lots),
        renamed_market,
        targets.rename(index=rename),
        objective,
        constraints,
    )
    assert other.status == base.status
    if base.status == "infeasible":
        return
    back = other.weights.rename(index={v: k for k, v in rename.items()})
    np.testing.assert_allclose(
        back.loc[base.weights.index, "continuous"],
        base.weights["continuous"],
        atol=1e-6,
    )


@PROPERTY_SETTINGS
@given(problems(), st.sampled_from([0.5, 3.0, 1000.0]))
def test_continuous_rebalance_scales_trades_with_account_size(problem, k):
    acct, market, targets, objective, constraints = problem
    base = _run(*problem, CONTINUOUS)
    scaled_lots = acct.lots.assign(quantity=acct.lots["quantity"] * k)
    scaled = _run(
        Account("P", acct.cash * k, scaled_lots),
        market,
        targets,
        objective,
        constraints,
        CONTINUOUS,
    )
    assert scaled.status == base.status
    if base.status == "infeasible":
        return
    np.testing.assert_allclose(
        scaled.weights["continuous"], base.weights["continuous"], atol=1e-6
    )
    value = account_value(acct, market)
    # an account with no trades has an empty (object) table: sums as floats
    traded = base.trades.groupby("asset")["value"].sum().astype(float) / value
    scaled_traded = scaled.trades.groupby("asset")["value"].sum().astype(float) / (
        k * value
    )
    assets = traded.index.union(scaled_traded.index)
    np.testing.assert_allclose(
        scaled_traded.reindex(assets, fill_value=0.0),
        traded.reindex(assets, fill_value=0.0),
        atol=1e-6,
    )
