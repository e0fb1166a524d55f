"""Results checked against independent computations."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import solver
from models import (
    Account,
    CovarianceRiskModel,
    LinearCost,
    Market,
    MarketImpact,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from models.snapshot import build_snapshot
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from models.terms import TradeMask
from solver.program.formulation import build_program
from solver.program.solve import solve_program
from solver.result import SolveOptions
from tests.conftest import ATOL_OBJECTIVE, RTOL_OBJECTIVE

AS_OF = pd.Timestamp("2026-06-30")
RATE_SHORT, RATE_LONG = 0.408, 0.238


def _dense_copy(market: Market) -> Market:
    risk = market.risk_model
    B = risk.loadings.to_numpy()
    sigma = B @ risk.factor_covariance.to_numpy() @ B.T + np.diag(
        risk.specific_variance
    )
    assets = risk.loadings.index
    dense = CovarianceRiskModel(pd.DataFrame(sigma, index=assets, columns=assets))
    return Market(
        as_of=market.as_of, prices=market.prices.reset_index(), risk_model=dense
    )


def test_factor_form_matches_dense_covariance_formulation():
    market = synthetic_market(40, n_factors=5, seed=11)
    targets = synthetic_targets(market, seed=11)
    acct = synthetic_account(market, targets, seed=11)
    kwargs = {
        "targets": targets,
        "objective": (TrackingError(100.0), LinearCost(), TaxCost(loss_factor=0.5)),
        "constraints": (MaxTurnover(0.1), MinCash(0.005)),
    }
    factor = solver.rebalance(acct, market=market, **kwargs)
    dense = solver.rebalance(acct, market=_dense_copy(market), **kwargs)
    assert dense.summary["objective_continuous"] == pytest.approx(
        factor.summary["objective_continuous"], rel=RTOL_OBJECTIVE
    )
    np.testing.assert_allclose(
        dense.weights["continuous"], factor.weights["continuous"], atol=1e-5
    )


def _small_problem(seed):
    rng = np.random.default_rng(seed)
    assets = ["A", "B", "C"]
    prices = rng.uniform(20, 80, 3)
    A = rng.normal(size=(3, 3)) * 0.15
    sigma = A @ A.T + np.diag([0.01, 0.02, 0.015])
    table = pd.DataFrame(
        {
            "asset": assets,
            "price": prices,
            "cost_bps": [10.0, 20.0, 5.0],
            "adv": [2e4, 5e3, 1e5],
            "volatility": [0.02, 0.03, 0.015],
        }
    )
    market = Market(
        as_of=AS_OF,
        prices=table,
        risk_model=CovarianceRiskModel(
            pd.DataFrame(sigma, index=assets, columns=assets)
        ),
    )
    rows = []
    for i, asset in enumerate(assets):
        for k in range(2):
            rows.append(
                {
                    "asset": asset,
                    "lot_id": f"{asset}{k}",
                    "quantity": float(rng.integers(20, 60)),
                    "cost_basis": prices[i] * rng.uniform(0.6, 1.4),
                    "acquired": "2021-03-01" if k == 0 else "2026-02-01",
                }
            )
    acct = Account("S", 500.0, pd.DataFrame(rows))
    targets = pd.Series(rng.dirichlet(np.ones(3)), index=assets)
    return market, acct, targets, sigma


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_impact", [False, True])
def test_rebalance_matches_scipy_on_small_continuous_case(seed, with_impact):
    market, acct, targets, sigma = _small_problem(seed)
    objective = [TrackingError(50.0), LinearCost(), TaxCost(loss_factor=0.5)]
    if with_impact:
        objective.append(MarketImpact(coefficient=1.0))
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=tuple(objective),
        constraints=(MinCash(0.02), MaxTurnover(0.15)),
    )

    # Independent formulation: x = [buys (3), lot sales (6)] in fractions of V.
    prices = market.prices["price"].to_numpy()
    lots = acct.lots
    lot_asset = lots["asset"].map({"A": 0, "B": 1, "C": 2}).to_numpy()
    qty = lots["quantity"].to_numpy()
    V = acct.cash + float(qty @ prices[lot_asset])
    w0 = np.bincount(lot_asset, qty * prices[lot_asset], 3) / V
    cap = qty * prices[lot_asset] / V
    gain = 1 - lots["cost_basis"].to_numpy() / prices[lot_asset]
    long_term = np.array([True, False] * 3)
    tax = np.where(long_term, RATE_LONG, RATE_SHORT) * gain
    tax = np.where(tax < 0, 0.5 * tax, tax)
    cost = market.prices["cost_bps"].to_numpy() / 1e4
    impact = market.prices["volatility"].to_numpy() * np.sqrt(
        V / (market.prices["adv"].to_numpy() * prices)
    )
    wt = targets.to_numpy()

    def split(x):
        b, s = x[:3], x[3:]
        sells = np.bincount(lot_asset, s, 3)
        return b, s, sells

    def objective_fn(x):
        b, s, sells = split(x)
        a = w0 + b - sells - wt
        value = 50.0 * a @ sigma @ a + cost @ (b + sells) + tax @ s
        if with_impact:
            value += impact @ np.abs(b + sells) ** 1.5
        return value

    def cash(x):
        b, _, sells = split(x)
        return acct.cash / V - b.sum() + sells.sum() - cost @ (b + sells)

    best = None
    for start in (np.zeros(9), np.r_[np.full(3, 0.01), cap / 2]):
        run = minimize(
            objective_fn,
            start,
            method="SLSQP",
            bounds=[(0, None)] * 3 + [(0, c) for c in cap],
            constraints=[
                {"type": "ineq", "fun": lambda x: cash(x) - 0.02},
                {"type": "ineq", "fun": lambda x: 0.30 - x.sum() - 0 * x[0]},
            ],
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        if run.success and (best is None or run.fun < best.fun):
            best = run
    assert best is not None
    assert result.summary["objective_continuous"] == pytest.approx(
        best.fun, rel=1e-5, abs=ATOL_OBJECTIVE
    )


def _tiny_account(rng, n_assets=4):
    assets = [f"T{i}" for i in range(n_assets)]
    prices = rng.uniform(10, 50, n_assets).round(2)
    rows = []
    for i, asset in enumerate(assets):
        for k in range(int(rng.integers(1, 5))):
            rows.append(
                {
                    "asset": asset,
                    "lot_id": f"{asset}-{k}",
                    "quantity": float(rng.integers(1, 6)),
                    "cost_basis": prices[i] * rng.uniform(0.5, 1.5),
                    "acquired": rng.choice(["2020-05-01", "2026-01-15"]),
                }
            )
    variances = rng.uniform(0.02, 0.08, n_assets)
    table = pd.DataFrame({"asset": assets, "price": prices, "cost_bps": 10.0})
    sigma = pd.DataFrame(np.diag(variances), index=assets, columns=assets)
    market = Market(as_of=AS_OF, prices=table, risk_model=CovarianceRiskModel(sigma))
    targets = pd.Series(rng.dirichlet(np.ones(n_assets)), index=assets)
    return Account("T", 20.0, pd.DataFrame(rows)), market, targets


@pytest.mark.parametrize("seed", range(6))
def test_lot_choice_matches_brute_force_over_lot_orders(seed):
    """For each asset's total sale, no other split of it over lots pays less tax."""
    acct, market, targets = _tiny_account(np.random.default_rng(seed))
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=(TrackingError(20.0), LinearCost(), TaxCost()),
        constraints=(NoBuyAndSell(),),
    )
    snap = build_snapshot(acct, targets, market)
    price = dict(zip(snap.universe, snap.prices, strict=True))
    sold = result.trades[result.trades["side"] == "sell"]
    per_lot_tax = dict(
        zip(
            snap.lots["lot_id"],
            snap.lot_tax_rate * (snap.lot_gain_fraction * snap.prices[snap.lot_asset]),
            strict=True,
        )
    )  # tax per share sold
    for asset, group in sold.groupby("asset"):
        total = group["quantity"].sum()
        got = sum(
            per_lot_tax[lot] * q
            for lot, q in zip(group["lot_id"], group["quantity"], strict=True)
        )
        lots = snap.lots[snap.lots["asset"] == asset]
        best = np.inf
        for order in itertools.permutations(range(len(lots))):
            left, tax = total, 0.0
            for i in order:
                take = min(left, lots["quantity"].iloc[i])
                tax += take * per_lot_tax[lots["lot_id"].iloc[i]]
                left -= take
            best = min(best, tax)
        assert got <= best + 1e-6 * price[asset] * total + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_continuous_optimum_bounds_every_integer_trade_list(seed):
    """No integer trade list of a tiny account beats the continuous optimum."""
    rng = np.random.default_rng(100 + seed)
    acct, market, targets = _tiny_account(rng, n_assets=2)
    objective = (TrackingError(20.0), LinearCost(), TaxCost())
    result = solver.rebalance(acct, targets=targets, market=market, objective=objective)
    snap = build_snapshot(acct, targets, market)
    lots = snap.lots
    buy_max = (acct.cash // snap.prices).astype(int) + 1
    grids = [range(int(q) + 1) for q in lots["quantity"]] + [
        range(m + 1) for m in buy_max
    ]
    combos = np.array(list(itertools.product(*grids)), dtype=float)
    sales_sh, buys_sh = combos[:, : len(lots)], combos[:, len(lots) :]
    lot_price = snap.prices[snap.lot_asset]
    s = sales_sh * lot_price / snap.value
    b = buys_sh * snap.prices / snap.value
    sells = s @ snap.holdings.T.toarray()
    w = snap.current + b - sells
    cost = (b + sells) @ snap.cost_rate
    cash = snap.cash - b.sum(axis=1) + sells.sum(axis=1) - cost
    variance = np.einsum(
        "ij,j,ij->i",
        w - snap.target,
        np.diag(market.risk_model.covariance.loc[snap.universe, snap.universe]),
        w - snap.target,
    )
    tax = s @ (snap.lot_tax_rate * snap.lot_gain_fraction)
    values = 20.0 * variance + cost + tax
    feasible = cash >= 0
    assert feasible.sum() > 100
    assert result.summary["objective_continuous"] <= values[feasible].min() + 1e-10


def test_cvxpy_and_numpy_faces_of_terms_agree():
    market = synthetic_market(30, n_factors=4, seed=5)
    targets = synthetic_targets(market, seed=5)
    acct = synthetic_account(market, targets, seed=5)
    snap = build_snapshot(acct, targets, market)
    objective = (TrackingError(100.0), LinearCost(), TaxCost(0.5), MarketImpact())
    mask = TradeMask.everything(snap)
    program = build_program(snap, mask, objective, [MaxTurnover(0.1)])
    solution = solve_program(program, SolveOptions())
    outcome = solution.answer
    for term in objective:
        cvxpy_value = program.terms[term.name].value
        assert float(cvxpy_value) == pytest.approx(
            term.evaluate(outcome), rel=1e-6, abs=1e-12
        )
