"""A result explains itself: units, reasons, unsolved weights, display."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

import solver
from models import (
    LinearCost,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TrackingError,
)
from models.snapshot import build_snapshot
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.orders.trades import trades_table
from solver.program import sweep
from tests.conftest import account, diagonal_market

matplotlib.use("Agg")

MARKET = synthetic_market(15, n_factors=3, seed=7)
TARGETS = synthetic_targets(MARKET, seed=7, n_holdings=12)
ACCOUNT = synthetic_account(MARKET, TARGETS, account_id="READ", seed=7)
OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())


def solve(*constraints: object) -> solver.RebalanceResult:
    return solver.rebalance(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=OBJECTIVE,
        constraints=constraints,  # type: ignore[arg-type]
    )


def held_values() -> pd.Series:
    """Return the market value held per asset, by hand from lots and prices."""
    lots = ACCOUNT.lots
    price = MARKET.prices.loc[lots["asset"], "price"].to_numpy()
    values: pd.Series = (lots["quantity"] * price).groupby(lots["asset"]).sum()
    return values


def dense_covariance(assets: pd.Index) -> np.ndarray:
    """Return B F B' + D on ``assets``, from the model's own tables."""
    model = MARKET.risk_model
    b = model.loadings.loc[assets].to_numpy()
    f = model.factor_covariance.to_numpy()
    d = model.specific_variance.loc[assets].to_numpy()
    covariance: np.ndarray = b @ f @ b.T + np.diag(d)
    return covariance


def test_terms_state_value_unit_weight_and_money() -> None:
    result = solve(MinCash(0.02), NoBuyAndSell())
    terms = result.terms
    assert list(terms.columns) == ["value", "unit", "weight", "objective", "money"]
    weights = result.weights.drop("CASH")
    active = (weights["continuous"] - weights["target"]).to_numpy()
    sigma = dense_covariance(weights.index)
    assert terms.loc["tracking_error", "value"] == pytest.approx(
        active @ sigma @ active, rel=1e-9
    )
    assert terms.loc["tracking_error", "unit"] == "annual variance"
    assert terms.loc["tax_cost", "unit"] == "fraction of V"
    value = ACCOUNT.cash + held_values().sum()
    np.testing.assert_allclose(terms["objective"], terms["weight"] * terms["value"])
    np.testing.assert_allclose(terms["money"], terms["objective"] * value, rtol=1e-12)
    assert terms["objective"].sum() == pytest.approx(
        result.summary["objective_continuous"], rel=1e-9
    )


def test_constraints_are_the_users_with_units_and_a_dual_in_objective_units() -> None:
    result = solve(MinCash(0.05), MaxTurnover(0.5), NoBuyAndSell())
    table = result.constraints
    assert set(table.index) == {
        "min_cash",
        "max_turnover",
        "no_buy_and_sell",
        "cash_non_negative",
    }
    assert list(table.columns) == ["slack", "unit", "dual"]
    assert table.loc["min_cash", "unit"] == "fraction of V"
    assert {"lot_quantity", "active_weights"} <= set(result.internal_constraints.index)
    # the dual is the objective's fall per unit the floor moves: a finite difference
    step = 1e-4
    loose = solver.rebalance(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=OBJECTIVE,
        constraints=(MinCash(0.05 - step), MaxTurnover(0.5), NoBuyAndSell()),
    )
    fall = (
        result.summary["objective_continuous"] - loose.summary["objective_continuous"]
    )
    assert table.loc["min_cash", "dual"] == pytest.approx(fall / step, rel=0.02)


def test_an_infeasible_result_keeps_current_and_target_weights() -> None:
    result = solve(MinCash(0.6), MaxTurnover(0.01))
    assert result.status == "infeasible"
    weights = result.weights
    held = held_values()
    value = ACCOUNT.cash + held.sum()
    assert weights.loc["CASH", "current"] == pytest.approx(ACCOUNT.cash / value)
    for asset, money in held.items():
        assert weights.loc[asset, "current"] == pytest.approx(money / value)
    np.testing.assert_allclose(weights["after"], weights["current"])
    assert weights["continuous"].isna().all()
    assert weights["target"].sum() == pytest.approx(1.0)


def test_buys_have_a_missing_lot_id_and_term() -> None:
    trades = solve(MinCash(0.0), NoBuyAndSell()).trades
    buys = trades[trades["side"] == "buy"]
    assert len(buys)
    for column in ("lot_id", "term"):
        assert buys[column].isna().all()
        assert not any(value is None for value in buys[column])


def test_every_order_says_why_in_a_hand_built_case() -> None:
    prices = dict.fromkeys("STUWXYZ", 10.0)
    market = diagonal_market(prices, dict.fromkeys(prices, 0.04))
    holder = account(
        0.0,
        ("X", "x1", 60, 5.0, "2020-01-02"),  # 50% against 30%, at a gain
        ("Y", "y1", 10, 5.0, "2020-01-02"),  # 8.3% against 30%
        ("Z", "z1", 20, 20.0, "2020-01-02"),  # 16.7% against 20%, at a loss
        ("W", "w1", 10, 5.0, "2020-01-02"),  # to be liquidated
        ("U", "u1", 10, 5.0, "2020-01-02"),  # 8.3% against 10%, at a gain
        ("T", "t1", 10, 10.0, "2020-01-02"),  # 8.3% against 5%
    )
    targets = pd.Series({"X": 0.3, "Y": 0.3, "Z": 0.2, "W": 0.05, "U": 0.1, "T": 0.05})
    s = build_snapshot(holder, targets, market, buy_any=True)
    rule = Restrictions(pd.DataFrame({"asset": ["W"], "rule": ["liquidate"]}))
    position = {asset: k for k, asset in enumerate(s.universe)}
    lot_position = {lot: k for k, lot in enumerate(s.lots["lot_id"])}
    buy_shares, lot_shares = np.zeros(s.n_assets), np.zeros(s.n_lots)
    for lot, shares in {"x1": 20, "z1": 5, "w1": 10, "u1": 2}.items():
        lot_shares[lot_position[lot]] = shares
    for asset, shares in {"Y": 10, "S": 1, "X": 1, "T": 1}.items():
        buy_shares[position[asset]] = shares
    table = trades_table(s, buy_shares, lot_shares, rule.mask(s).must_sell)
    why = table.set_index(["asset", "side"])["reason"].to_dict()
    assert why == {
        ("X", "sell"): "to target",
        ("Z", "sell"): "harvest loss",
        ("W", "sell"): "liquidate (restricted)",
        ("U", "sell"): "raise cash",
        ("Y", "buy"): "to target",
        ("S", "buy"): "substitute",
        ("X", "buy"): "replace sold lots",
        ("T", "buy"): "beyond target",
    }


def test_the_notebook_display_shows_status_money_and_largest_trades() -> None:
    result = solve(MinCash(0.02), NoBuyAndSell())
    page = result._repr_html_()
    assert "<b>optimal</b>" in page
    assert "estimated tax, money" in page
    assert "tracking error after, % a year" in page
    largest = result.trades.sort_values("value").iloc[-1]
    assert f"<td>{largest['asset']}</td>" in page
    ax = result.plot()
    assert len(ax.containers) == 3  # current, target, after
    assert ax.get_ylabel() == "weight, % of account value"
    unsolved = solve(MinCash(0.6), MaxTurnover(0.01))
    assert "<b>infeasible</b>" in unsolved._repr_html_()


def test_sweep_names_its_weight_columns_apart_from_its_results() -> None:
    result = sweep(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=OBJECTIVE,
        constraints=(MinCash(0.0),),
        points=[{"tax_cost": 0.5, "max_tracking_error": 0.02}],
    )
    row = result.table.iloc[0]
    assert row["tax_cost_weight"] == 0.5
    assert row["max_tracking_error"] == 0.02
    assert "tax_cost" not in result.table.columns
    assert np.isfinite(row["tax"])  # money, a separate column
