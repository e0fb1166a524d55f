"""Deposits are invested and withdrawals raised, outside the turnover budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import solver
from models import (
    Account,
    CovarianceRiskModel,
    LinearCost,
    Market,
    MaxCash,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.batch import RunConfig, rebalance_tables
from tests.conftest import account, diagonal_market, min_trade_market
from tests.solver.batch_data import AS_OF, batch_tables

HALF = pd.Series({"X": 0.5, "Y": 0.5})
MARKET = diagonal_market({"X": 10.0, "Y": 10.0}, {"X": 0.04, "Y": 0.04})


def test_a_deposit_is_invested_under_a_zero_turnover_cap() -> None:
    # $100 of X and a $100 deposit: V = 200, w0 = (0.5, 0), targets (0.5, 0.5).
    # Buying $100 of Y invests the deposit: turnover 0, tracking error 0.
    holder = account(0.0, ("X", "x1", 10, 10.0, "2020-01-02"), cash_flow=100.0)
    result = solver.rebalance(
        holder,
        targets=HALF,
        market=MARKET,
        objective=(TrackingError(100.0),),
        constraints=(MaxTurnover(0.0), MinCash(0.0)),
    )
    assert result.status == "optimal"
    trades = result.trades[["asset", "side", "quantity"]].to_dict("records")
    assert trades == [{"asset": "Y", "side": "buy", "quantity": 10.0}]
    assert result.summary["turnover"] == 0.0
    assert result.summary["cash_flow"] == 100.0
    assert result.summary["cash_after"] == pytest.approx(0.0, abs=1e-9)
    # the same money already in cash is turnover: the cap forbids any trade
    landed = account(100.0, ("X", "x1", 10, 10.0, "2020-01-02"))
    stuck = solver.rebalance(
        landed,
        targets=HALF,
        market=MARKET,
        objective=(TrackingError(100.0),),
        constraints=(MaxTurnover(0.0), MinCash(0.0)),
    )
    assert stuck.trades.empty


def test_the_mostly_cash_account_is_fully_invested_under_a_turnover_cap() -> None:
    # 13.4% held, 86.6% of the value arriving as a deposit, MaxTurnover(0.25)
    # and MaxCash(0.02): feasible, and the account ends fully invested.
    market = synthetic_market(30, n_factors=4, seed=11)
    targets = synthetic_targets(market, seed=11, n_holdings=20)
    base = synthetic_account(market, targets, account_id="DEPOSIT", seed=11)
    lots = base.lots.assign(quantity=np.floor(base.lots["quantity"] * 0.15))
    lots = lots[lots["quantity"] > 0]
    prices = market.prices["price"]
    held = float((lots["quantity"] * prices.loc[lots["asset"]].to_numpy()).sum())
    deposit = held * 0.866 / 0.134
    holder = Account("DEPOSIT", 0.0, lots, cash_flow=deposit)
    result = solver.rebalance(
        holder,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=(MaxTurnover(0.25), MinCash(0.0), MaxCash(0.02), NoBuyAndSell()),
    )
    assert result.status == "optimal", result.message
    value = held + deposit
    assert result.weights.loc["CASH", "current"] == pytest.approx(0.866)
    assert result.summary["cash_after"] <= 0.02 * value + 1e-6
    assert result.summary["turnover"] <= 0.25 + 1e-9
    bought = result.trades.loc[result.trades["side"] == "buy", "value"].sum()
    assert bought >= 0.84 * value


def test_a_withdrawal_is_raised_from_the_loss_lot_first() -> None:
    # $150 of X (a gain lot, a loss lot) and $150 of Y (a gain lot), $30 out:
    # V = 270 and both are $15 above target. At a tracking-error weight of
    # 10, the tax saved by selling the loss lot (0.204 a dollar) outweighs
    # the tracking error of taking it all from X: the gain lots stay.
    holder = account(
        0.0,
        ("X", "x_gain", 5, 5.0, "2020-01-02"),
        ("X", "x_loss", 10, 15.0, "2020-01-02"),
        ("Y", "y_gain", 15, 5.0, "2020-01-02"),
        cash_flow=-30.0,
    )
    result = solver.rebalance(
        holder,
        targets=HALF,
        market=MARKET,
        objective=(TrackingError(10.0), LinearCost(), TaxCost()),
        constraints=(MinCash(0.0), NoBuyAndSell()),
        options=solver.SolveOptions(rounding="none"),
    )
    assert result.status == "optimal"
    sold = result.trades[result.trades["side"] == "sell"]
    assert set(sold["lot_id"]) == {"x_loss"}
    proceeds = sold["value"].sum()
    assert proceeds >= 30.0 - 1e-6
    assert result.summary["cash_after"] == pytest.approx(proceeds - 30.0, abs=1e-6)
    assert result.summary["est_tax"] < 0
    # only the sales beyond the withdrawal are turnover: (sold - 30) / 2 / V
    assert result.summary["turnover"] == pytest.approx((proceeds - 30.0) / 2 / 270)


def test_a_withdrawal_larger_than_the_account_is_an_input_error() -> None:
    holder = account(5.0, ("X", "x1", 10, 5.0, "2020-01-02"), cash_flow=-105.0)
    with pytest.raises(solver.InputError, match=r"withdrawal of 105\.00") as caught:
        solver.rebalance(
            holder, targets=HALF, market=MARKET, objective=(TrackingError(1.0),)
        )
    assert caught.value.field == "cash_flow"
    assert caught.value.account_id == "A1"


def test_a_withdrawal_that_restrictions_block_is_infeasible_and_says_why() -> None:
    holder = account(0.0, ("X", "x1", 10, 5.0, "2020-01-02"), cash_flow=-50.0)
    frozen = Restrictions(pd.DataFrame({"asset": ["X"], "rule": ["no_sell"]}))
    result = solver.rebalance(
        holder,
        targets=HALF,
        market=MARKET,
        objective=(TrackingError(1.0),),
        constraints=(frozen,),
    )
    assert result.status == "infeasible"
    assert "withdrawal of 50.00 must be raised" in result.message
    assert "restrictions" in result.conflicting


def test_the_batch_takes_cash_flows_and_names_a_bad_one() -> None:
    tables = batch_tables(n_accounts=4, n_assets=8, n_holdings=5, n_factors=2)
    accounts = tables["accounts"].copy()
    accounts["cash_flow"] = [25_000.0, -1e12, np.nan, "abc"]
    tables["accounts"] = accounts
    result = rebalance_tables(tables, RunConfig(as_of=AS_OF), workers=1)
    summary = result.summary.set_index("account_id")
    first, too_big, none, unreadable = accounts["account_id"]
    assert summary.loc[first, "status"] == "optimal"
    assert summary.loc[first, "cash_flow"] == 25_000.0
    assert summary.loc[too_big, "status"] == "invalid_input"
    assert "withdrawal" in summary.loc[too_big, "message"]
    assert summary.loc[none, "cash_flow"] == 0.0
    assert summary.loc[unreadable, "status"] == "invalid_input"
    problem = result.problems.set_index("account_id").loc[unreadable]
    assert problem["field"] == "cash_flow"


@pytest.mark.parametrize("flow", [40_000.0, -40_000.0])
def test_the_turnover_cap_with_a_flow_matches_a_formulation_from_the_maths(
    flow: float,
) -> None:
    """cvxpy on asset-level trades: ``(B - D)+ + (S - W)+ <= 2 L`` written directly."""
    import cvxpy as cp

    market = synthetic_market(8, n_factors=2, seed=5)
    targets = synthetic_targets(market, seed=5, n_holdings=8)
    base = synthetic_account(market, targets, account_id="FLOW", seed=5)
    holder = Account("FLOW", base.cash, base.lots, cash_flow=flow)
    limit = 0.03
    result = solver.rebalance(
        holder,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(MaxTurnover(limit), MinCash(0.0)),
        options=solver.SolveOptions(rounding="none"),
    )
    assert result.status == "optimal"
    assets = result.weights.index.drop("CASH")
    price = market.prices.loc[assets, "price"].to_numpy()
    rate = market.prices.loc[assets, "cost_bps"].to_numpy() / 1e4
    shares = base.lots.groupby("asset")["quantity"].sum().reindex(assets).fillna(0)
    held = shares.to_numpy() * price
    value = base.cash + flow + held.sum()
    model = market.risk_model
    b_ = model.loadings.loc[assets].to_numpy()
    sigma = b_ @ model.factor_covariance.to_numpy() @ b_.T
    sigma += np.diag(model.specific_variance.loc[assets].to_numpy())
    target = targets.reindex(assets).fillna(0).to_numpy()
    buy, sell = cp.Variable(len(assets), nonneg=True), cp.Variable(len(assets))
    weights = (held + buy - sell) / value
    cash = (base.cash + flow - cp.sum(buy) + cp.sum(sell) - rate @ (buy + sell)) / value
    deposit, withdrawal = max(flow, 0) / value, max(-flow, 0) / value
    turnover = cp.pos(cp.sum(buy) / value - deposit) + cp.pos(
        cp.sum(sell) / value - withdrawal
    )
    active = weights - target
    problem = cp.Problem(
        cp.Minimize(100 * cp.quad_form(active, sigma) + rate @ (buy + sell) / value),
        [sell >= 0, sell <= held, cash >= 0, turnover <= 2 * limit],
    )
    problem.solve(solver="CLARABEL")
    assert result.summary["objective_continuous"] == pytest.approx(
        problem.value, rel=1e-5, abs=1e-9
    )
    assert result.summary["turnover"] <= limit + 1e-7


@pytest.mark.parametrize("rounding", ["greedy", "milp"])
@pytest.mark.parametrize(
    ("flow", "targets"),
    [(-40_000.0, {"A": 0.5, "B": 0.5}), (40_000.0, {"CASH": 1.0})],
)
def test_rounding_keeps_the_turnover_cap_when_cash_pays_the_flow(
    rounding: str, flow: float, targets: dict[str, float]
) -> None:
    """Cash pays the whole withdrawal (or the deposit stays in cash), so no
    trade is the flow's: every trade is turnover. With a 2% cap and V =
    $60,000 (withdrawal) the account may buy $2,400; with V = $140,000 and a
    cash target it may sell $5,600. Rounding used to count the flow as room
    and bought $42,400 (sold $45,600), reported optimal."""
    holder = account(
        100_000.0 if flow < 0 else 0.0,
        *(
            ()
            if flow < 0
            else [
                ("A", "a1", 500, 100.0, "2020-01-02"),
                ("B", "b1", 1000, 50.0, "2020-01-02"),
            ]
        ),
        cash_flow=flow,
    )
    market = diagonal_market({"A": 100.0, "B": 50.0}, {"A": 0.04, "B": 0.05})
    result = solver.rebalance(
        holder,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(MaxTurnover(0.02),),
        options=solver.SolveOptions(rounding=rounding),
    )
    trades = result.trades
    value = 100_000.0 + flow
    bought = trades.loc[trades["side"] == "buy", "value"].sum()
    sold = trades.loc[trades["side"] == "sell", "value"].sum()
    one_way = (max(bought - max(flow, 0.0), 0.0) + max(sold + min(flow, 0.0), 0.0)) / 2
    assert result.status is solver.Status.OPTIMAL
    assert one_way / value <= 0.02 + 1e-9
    assert bought + sold >= 0.9 * 0.04 * value  # it still trades to the cap
    summary = result.summary
    assert summary["objective_discrete"] >= summary["objective_bound"] - 1e-9


@pytest.mark.parametrize("rounding", ["nearest", "greedy", "milp"])
def test_a_withdrawal_whole_lots_cannot_raise_is_infeasible(rounding: str) -> None:
    """20 shares of X at $100 in round lots of 10; 5 of them (a loss bought
    10 days ago) cannot be sold under the wash-sale rule, so at most 10
    shares ($1,000) can be, and the account has no cash: a $1,400
    withdrawal is $400 short. The continuous answer sells 14 shares; the
    rounded orders broke cash and verification raised."""
    market = Market(
        as_of=pd.Timestamp("2026-11-24"),
        prices=pd.DataFrame({"asset": ["X"], "price": [100.0], "lot_size": [10.0]}),
        risk_model=CovarianceRiskModel(
            pd.DataFrame([[0.04]], index=["X"], columns=["X"])
        ),
    )
    holder = account(
        0.0,
        ("X", "old", 15, 50.0, "2020-01-02"),
        ("X", "new", 5, 120.0, "2026-11-14"),
        cash_flow=-1_400.0,
    )
    result = solver.rebalance(
        holder,
        targets={"X": 1.0},
        market=market,
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(WashSaleRule(),),
        options=solver.SolveOptions(rounding=rounding),
    )
    assert result.status is solver.Status.INFEASIBLE
    assert "cash 400.00 short" in result.message
    assert "withdrawal of 1,400.00" in result.message


@pytest.mark.parametrize("fractional", [True, False])
def test_a_withdrawal_is_raised_in_fractions_when_a_sale_is_too_small(
    fractional: bool,
) -> None:
    """3 shares of A ($836) cannot be sold under A's $987 minimum trade, so
    the whole $1,000 withdrawal comes from B at $29.53: 33.8639 shares in
    fractions of 1e-4 (34 whole). The continuous answer sells A too; in
    fractional shares, moves of one 1e-4 step could not make up A's $836
    and verification raised (negative cash)."""
    market = min_trade_market()
    holder = account(
        0.0,
        ("A", "L1", 3, 215.11, "2021-08-14"),
        ("B", "L2", 100, 20.0, "2021-08-14"),
        cash_flow=-1_000.0,
        fractional_shares=fractional,
    )
    result = solver.rebalance(
        holder,
        targets={"A": 0.05, "B": 0.95},
        market=market,
        objective=(TrackingError(1000.0), LinearCost()),
        constraints=(NoBuyAndSell(),),
    )
    assert result.status is solver.Status.OPTIMAL
    trades = result.trades
    assert list(trades["asset"]) == ["B"]
    assert list(trades["side"]) == ["sell"]
    expected = 33.8639 if fractional else 34.0
    assert trades["quantity"].iloc[0] == pytest.approx(expected, abs=1e-9)
    assert result.summary["cash_after"] >= 0.0
