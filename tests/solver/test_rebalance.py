import pickle

import numpy as np
import pandas as pd
import pytest

import solver
from models import (
    AssetBounds,
    GainBudget,
    LinearCost,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.snapshot import build_snapshot
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.program.continuous import optimize
from solver.result import SUMMARY_FIELDS, TRADE_COLUMNS, SolveOptions, Status
from tests.conftest import ATOL_SHARES, account, diagonal_market

CONTINUOUS = SolveOptions(rounding="none")
PRICES = {"X": 10.0, "Y": 20.0}
VARIANCES = {"X": 0.04, "Y": 0.09}
HALF = pd.Series({"X": 0.5, "Y": 0.5})


def _bought(result):
    buys = result.trades[result.trades["side"] == "buy"]
    return buys.set_index("asset")["quantity"]


def _sold(result):
    sells = result.trades[result.trades["side"] == "sell"]
    return sells.set_index("lot_id")["quantity"]


def test_rebalance_all_cash_matches_hand_solution():
    # min (b - 0.5)' D (b - 0.5) + c 1'b  =>  b_i = 0.5 - c / (2 d_i)
    market = diagonal_market(PRICES, VARIANCES, cost_bps=10.0)
    result = solver.rebalance(
        account(100.0),
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0), LinearCost()),
        options=CONTINUOUS,
    )
    assert result.status == "optimal"
    expected = {a: (0.5 - 0.001 / (2 * VARIANCES[a])) * 100 / PRICES[a] for a in PRICES}
    got = _bought(result)
    for asset, shares in expected.items():
        assert got[asset] == pytest.approx(shares, abs=ATOL_SHARES)


def test_rebalance_binding_cash_floor_matches_kkt_solution():
    # with 1.001 * (b_X + b_Y) = 0.95 binding: b_i = 0.5 - k / (2 d_i)
    market = diagonal_market(PRICES, VARIANCES, cost_bps=10.0)
    result = solver.rebalance(
        account(100.0),
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0), LinearCost()),
        constraints=(MinCash(0.05),),
        options=CONTINUOUS,
    )
    k = (1 - 0.95 / 1.001) / sum(1 / (2 * v) for v in VARIANCES.values())
    got = _bought(result)
    for asset in PRICES:
        shares = (0.5 - k / (2 * VARIANCES[asset])) * 100 / PRICES[asset]
        assert got[asset] == pytest.approx(shares, abs=ATOL_SHARES)
    assert result.summary["cash_after"] == pytest.approx(5.0, abs=1e-5)
    assert result.constraints.loc["min_cash", "slack"] == pytest.approx(0, abs=1e-7)
    assert result.constraints.loc["min_cash", "dual"] > 0


def _one_asset_market():
    return diagonal_market({"X": 10.0}, {"X": 0.04})


def test_rebalance_sells_loss_lot_before_gain_lot():
    acct = account(
        0.0, ("X", "G", 50, 5.0, "2020-01-02"), ("X", "L", 50, 15.0, "2020-01-02")
    )
    result = solver.rebalance(
        acct,
        targets=pd.Series({"X": 0.7, "CASH": 0.3}),
        market=_one_asset_market(),
        objective=(TrackingError(100.0), TaxCost(loss_factor=0.0)),
        constraints=(NoBuyAndSell(),),
    )
    sold = _sold(result)
    assert list(sold.index) == ["L"]
    assert sold["L"] == pytest.approx(30.0, abs=ATOL_SHARES)


@pytest.mark.parametrize(
    ("long_basis", "short_basis", "cheaper"),
    [(5.0, 5.0, "LONG"), (5.0, 8.0, "SHORT")],  # tax per $: .119/.204 and .119/.082
)
def test_rebalance_sells_lot_with_lowest_tax_per_dollar(
    long_basis, short_basis, cheaper
):
    acct = account(
        0.0,
        ("X", "LONG", 50, long_basis, "2020-01-02"),
        ("X", "SHORT", 50, short_basis, "2026-03-01"),
    )
    result = solver.rebalance(
        acct,
        targets=pd.Series({"X": 0.7, "CASH": 0.3}),
        market=_one_asset_market(),
        objective=(TrackingError(1e4), TaxCost()),
        constraints=(NoBuyAndSell(),),
    )
    sold = _sold(result)
    assert list(sold.index) == [cheaper]
    assert sold[cheaper] == pytest.approx(30.0, rel=1e-3)
    expected_term = "long" if cheaper == "LONG" else "short"
    assert result.trades["term"].iloc[0] == expected_term


def _drifted():
    # X overweight (held 60 of 50%), Y underweight; 10% cash
    return account(
        100.0, ("X", "x1", 60, 8.0, "2020-01-02"), ("Y", "y1", 15, 25.0, "2020-01-02")
    )


def test_rebalance_respects_restrictions():
    market = diagonal_market(PRICES, VARIANCES)
    rules = pd.DataFrame({"asset": ["X", "Y"], "rule": ["no_sell", "no_buy"]})
    result = solver.rebalance(
        _drifted(),
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(Restrictions(rules),),
    )
    assert result.status == "optimal"
    assert result.trades.empty


def test_rebalance_liquidates_every_lot():
    market = diagonal_market(PRICES, VARIANCES)
    rules = pd.DataFrame({"asset": ["Y"], "rule": ["liquidate"]})
    result = solver.rebalance(
        _drifted(),
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(Restrictions(rules),),
    )
    assert _sold(result)["y1"] == pytest.approx(15.0)
    assert "Y" not in set(_bought(result).index)
    assert result.weights.loc["Y", "after"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("constraints", "conflict"),
    [
        (
            (
                MaxTurnover(0.5),
                Restrictions(pd.DataFrame({"asset": ["X", "Y"], "rule": "no_sell"})),
                MinCash(0.2),
            ),
            {"min_cash", "restrictions"},
        ),
        (
            (MaxTurnover(0.01), AssetBounds(upper=0.9), MinCash(0.2)),
            {"max_turnover", "min_cash"},
        ),
    ],
)
def test_rebalance_infeasible_names_conflicting_constraints(constraints, conflict):
    market = diagonal_market(PRICES, VARIANCES)
    acct = account(
        0.0, ("X", "x1", 50, 8.0, "2020-01-02"), ("Y", "y1", 25, 25.0, "2020-01-02")
    )
    result = solver.rebalance(
        acct,
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=constraints,
    )
    assert result.status == "infeasible"
    assert set(result.conflicting) == conflict
    assert result.trades.empty
    assert result.summary["status"] == "infeasible"
    assert all(name in result.summary["message"] for name in conflict)


def test_elastic_mode_relaxes_the_soft_limit_by_the_least_needed():
    # V = 1000, no cash; a 20% cash floor needs 200 of sales: traded 0.2 of V,
    # one-way turnover 0.1, so the 1% turnover cap must give 0.09
    market = diagonal_market(PRICES, VARIANCES)
    acct = account(
        0.0, ("X", "x1", 50, 8.0, "2020-01-02"), ("Y", "y1", 25, 25.0, "2020-01-02")
    )
    result = solver.rebalance(
        acct,
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(MaxTurnover(0.01), AssetBounds(upper=0.9), MinCash(0.2)),
        options=SolveOptions(elastic=True),
    )
    assert result.status == "relaxed"
    assert result.summary["status"] == "relaxed"
    assert result.message == "relaxed max_turnover by 0.09"
    assert result.summary["turnover"] == pytest.approx(0.1)
    assert result.summary["cash_after"] == pytest.approx(200.0)
    assert not result.trades.empty
    assert np.isnan(result.summary["objective_bound"])  # penalties: no bound
    # the broken cap gets no slack or dual (the elastic program's showed it
    # binding, slack 0 and the penalty weight as dual); the floor binds
    report = result.constraints
    assert report.loc["max_turnover", ["slack", "dual"]].isna().all()
    assert abs(report.loc["min_cash", "slack"]) < 1e-6


def test_elastic_mode_says_what_the_orders_break_a_limit_by():
    """The gain budget is relaxed by the continuous answer, and rounding to
    whole shares adds to it: the message gives the orders' excess."""
    market = diagonal_market({"X": 7.0, "Y": 10.0}, VARIANCES)
    acct = account(0.0, ("X", "x1", 101, 9.0, "2020-01-02"))  # a $2 loss per share
    result = solver.rebalance(
        acct,
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(GainBudget(-150.0), MaxTurnover(0.2), MinCash(0.0)),
        options=SolveOptions(elastic=True),
    )
    assert result.status == "relaxed"
    realized = result.trades["realized_gain"].sum()
    excess = (realized - (-150.0)) / 707.0  # a fraction of V
    assert result.message == f"relaxed gain_budget by {excess:.3g}"


def test_elastic_mode_never_relaxes_hard_constraints():
    market = diagonal_market(PRICES, VARIANCES)
    acct = account(
        0.0, ("X", "x1", 50, 8.0, "2020-01-02"), ("Y", "y1", 25, 25.0, "2020-01-02")
    )
    no_sales = Restrictions(pd.DataFrame({"asset": ["X", "Y"], "rule": "no_sell"}))
    result = solver.rebalance(
        acct,
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(MaxTurnover(0.5), no_sales, MinCash(0.2)),
        options=SolveOptions(elastic=True),
    )
    assert result.status == "infeasible"
    assert set(result.conflicting) == {"min_cash", "restrictions"}


def test_rebalance_gain_budget_limits_net_gains():
    # reaching the target sells 10 shares of X at a $2 gain each
    market = diagonal_market(PRICES, VARIANCES)
    kwargs = {"targets": HALF, "market": market, "objective": (TrackingError(100.0),)}
    free = solver.rebalance(_drifted(), constraints=(NoBuyAndSell(),), **kwargs)
    assert free.trades["realized_gain"].sum() == pytest.approx(20.0, rel=1e-3)
    capped = solver.rebalance(
        _drifted(), constraints=(GainBudget(10.0), NoBuyAndSell()), **kwargs
    )
    assert capped.trades["realized_gain"].sum() == pytest.approx(10.0, abs=1e-4)


def _synthetic(n=60, seed=3):
    market = synthetic_market(n, n_factors=5, seed=seed)
    targets = synthetic_targets(market, seed=seed)
    return market, targets, synthetic_account(market, targets, seed=seed)


FULL_OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())


def test_rebalance_no_buy_and_sell_fixes_sides():
    market, targets, acct = _synthetic()
    free = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=FULL_OBJECTIVE,
        constraints=(MaxTurnover(0.1),),
    )
    one_side = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=FULL_OBJECTIVE,
        constraints=(MaxTurnover(0.1), NoBuyAndSell()),
    )

    def both_sides(result):
        sides = result.trades.groupby("asset")["side"].nunique()
        return int((sides > 1).sum())

    assert both_sides(free) > 0  # the rule has something to do here
    assert both_sides(one_side) == 0
    free_objective = free.summary["objective_continuous"]
    assert one_side.summary["objective_continuous"] >= free_objective - 1e-9


def test_rebalance_wash_sale_blocks_rebuying_recent_loss():
    market = diagonal_market(PRICES, VARIANCES)
    recent = pd.DataFrame(
        {
            "asset": ["Y"],
            "date": ["2026-06-15"],
            "side": ["sell"],
            "quantity": [5],
            "realized_gain": [-40.0],
        }
    )
    acct = account(
        100.0,
        ("X", "x1", 60, 8.0, "2020-01-02"),
        ("Y", "y1", 15, 25.0, "2020-01-02"),
        recent_trades=recent,
    )
    kwargs = {"targets": HALF, "market": market, "objective": (TrackingError(1.0),)}
    assert "Y" in set(_bought(solver.rebalance(acct, **kwargs)).index)
    washed = solver.rebalance(acct, constraints=(WashSaleRule(),), **kwargs)
    assert "Y" not in set(_bought(washed).index)


def test_rebalance_result_has_data_contract_columns():
    market, targets, acct = _synthetic(n=30)
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=FULL_OBJECTIVE,
        constraints=(MaxTurnover(0.05), MinCash(0.005), NoBuyAndSell()),
    )
    assert tuple(result.trades.columns) == TRADE_COLUMNS
    assert tuple(result.summary.index) == SUMMARY_FIELDS
    assert result.weights.index.name == "asset"
    assert list(result.terms.index) == ["tracking_error", "linear_cost", "tax_cost"]
    assert result.violations.empty
    assert 0.049 <= result.summary["turnover"] <= 0.05 + 1e-9
    value = result.trades["value"].to_numpy()
    np.testing.assert_allclose(
        value, result.trades["quantity"] * result.trades["price"]
    )
    sells = result.trades[result.trades["side"] == "sell"]
    assert sells["lot_id"].notna().all()
    assert set(sells["term"]) <= {"short", "long"}
    summary = result.summary
    assert summary["est_tax"] == pytest.approx(result.trades["est_tax"].sum())
    assert summary["est_cost"] == pytest.approx(result.trades["est_cost"].sum())
    for term in ("short", "long"):
        gains = sells.loc[sells["term"] == term, "realized_gain"].sum()
        assert summary[f"realized_gain_{term}"] == pytest.approx(gains, abs=1e-6)
    # the tables built on first read survive a pickle round trip
    copy = pickle.loads(pickle.dumps(result))
    pd.testing.assert_frame_equal(copy.weights, result.weights)
    pd.testing.assert_frame_equal(copy.constraints, result.constraints)
    pd.testing.assert_frame_equal(copy.terms, result.terms)
    assert copy.constraints.loc["max_turnover", "slack"] <= 1e-6  # binding


def test_rebalance_rejects_duplicate_constraint_names():
    market, targets, acct = _synthetic(n=10)
    with pytest.raises(solver.InputError, match="appears twice in constraints"):
        solver.rebalance(
            acct,
            targets=targets,
            market=market,
            objective=FULL_OBJECTIVE,
            constraints=(MinCash(0.01), MinCash(0.02)),
        )


def test_no_buy_and_sell_auto_costs_at_most_two_re_solves():
    market, targets, acct = _synthetic()
    snapshot = build_snapshot(acct, targets, market)
    constraints = [MaxTurnover(0.1), NoBuyAndSell()]
    optimum = optimize(snapshot, FULL_OBJECTIVE, constraints, [], SolveOptions())
    assert optimum.solves == 3
    assert NoBuyAndSell().violation(optimum.answer) == 0.0


def test_rebalance_with_nothing_tradable_returns_no_trades():
    market = diagonal_market(PRICES, VARIANCES)
    frozen = Restrictions(pd.DataFrame({"asset": ["X", "Y"], "rule": "no_trade"}))
    result = solver.rebalance(
        _drifted(),
        targets=HALF,
        market=market,
        objective=(TrackingError(1.0),),
        constraints=(frozen,),
    )
    assert result.status == "optimal"
    assert result.trades.empty
    before = result.summary["tracking_error_before"]
    assert result.summary["tracking_error_after"] == pytest.approx(before)


@pytest.mark.parametrize(
    ("rules", "names"),
    [
        ((("A", "liquidate"),), ("restrictions", "wash_sale")),
        ((("A", "no_trade"), ("A", "liquidate")), ("restrictions",)),
        ((("A", "no_sell"), ("A", "liquidate")), ("restrictions",)),
    ],
)
def test_a_lot_forced_and_forbidden_is_infeasible_naming_the_rules(rules, names):
    """A loss lot bought 14 days ago cannot be sold under the wash-sale rule,
    nor under no_trade / no_sell; liquidate forces its sale. The program
    used to sell it and verification to raise; the account is infeasible."""
    holder = account(
        1000.0,
        ("A", "LA", 100, 100.0, "2026-11-10"),
        ("B", "LB", 100, 50.0, "2020-01-01"),
    )
    market = diagonal_market(
        {"A": 90.0, "B": 50.0}, {"A": 0.07, "B": 0.1}, as_of=pd.Timestamp("2026-11-24")
    )
    table = pd.DataFrame(rules, columns=["asset", "rule"])
    constraints = [Restrictions(table)]
    if "wash_sale" in names:
        constraints.append(WashSaleRule())
    result = solver.rebalance(
        holder,
        targets={"A": 0.5, "B": 0.5},
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=constraints,
    )
    assert result.status is Status.INFEASIBLE
    assert result.trades.empty
    assert f"conflicting constraints {', '.join(names)}" in result.message
    assert "lot 'LA' of A must be sold" in result.message


@pytest.mark.parametrize("rounding", ["nearest", "greedy", "milp"])
def test_bounds_no_whole_share_can_meet_are_infeasible_naming_the_asset(rounding):
    """$10,000 of cash; X costs $7,000 a share and must end within 50% +- 10
    points: no shares is 0%, one share 70%. Whole orders cannot meet the
    bound (the continuous answer holds 0.71 shares); verification raised."""

    def solve(price_of_x):
        return solver.rebalance(
            account(10_000.0),
            targets={"X": 0.5, "Y": 0.5},
            market=diagonal_market(
                {"X": price_of_x, "Y": 10.0}, {"X": 0.04, "Y": 0.05}
            ),
            objective=(TrackingError(100.0),),
            constraints=(AssetBounds(-0.1, 0.1, relative_to_target=True),),
            options=SolveOptions(rounding=rounding),
        )

    result = solve(7_000.0)
    assert result.status is Status.INFEASIBLE
    assert "asset_bounds: no order of X" in result.message
    # at $6,000 one share is 60%, within the bound: solved
    assert solve(6_000.0).status is Status.OPTIMAL
