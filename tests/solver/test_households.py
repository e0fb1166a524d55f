"""A household's accounts solved together: an oracle, the gain over solving alone,
asset location, and the cross-account rules on random households."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import solver
from models import (
    Account,
    CovarianceRiskModel,
    GainBudget,
    LinearCost,
    Market,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TaxDrag,
    TrackingError,
    WashSaleRule,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from tests.conftest import AS_OF, diagonal_market, lots

RUNG = solver.SolveOptions(rounding="none")


def test_a_two_account_household_matches_a_formulation_from_the_maths() -> None:
    """cvxpy, per account and asset: one tracking error of the summed holdings,
    tax only in the taxable account, each account's cash >= 0."""
    market = synthetic_market(10, n_factors=2, seed=21)
    targets = synthetic_targets(market, seed=21, n_holdings=8)
    taxed = synthetic_account(market, targets, account_id="TAX", seed=21)
    other = synthetic_account(market, targets, account_id="IRA", seed=22)
    ira = Account("IRA", other.cash, other.lots, account_type="tax_deferred")
    objective = (TrackingError(50.0), LinearCost(), TaxCost())
    result = solver.rebalance_household(
        "H",
        [taxed, ira],
        targets=targets,
        market=market,
        objective=objective,
        options=RUNG,
    )
    assert result.status == "optimal", result.message

    assets = pd.Index(
        sorted(set(targets.index) | set(taxed.lots["asset"]) | set(ira.lots["asset"]))
    )
    market.prices.loc[assets, "price"].to_numpy()
    rate = market.prices.loc[assets, "cost_bps"].to_numpy() / 1e4
    model = market.risk_model
    b_ = model.loadings.loc[assets].to_numpy()
    sigma = b_ @ model.factor_covariance.to_numpy() @ b_.T
    sigma += np.diag(model.specific_variance.loc[assets].to_numpy())
    target = targets.reindex(assets).fillna(0.0).to_numpy()
    total = sum(
        a.cash
        + float(
            (
                a.lots["quantity"]
                * market.prices.loc[a.lots["asset"], "price"].to_numpy()
            ).sum()
        )
        for a in (taxed, ira)
    )
    held, cost, constraints = 0, 0, []  # in fractions of the household's value
    for account, taxable in ((taxed, True), (ira, False)):
        lot_price = market.prices.loc[account.lots["asset"], "price"].to_numpy()
        lot_value = account.lots["quantity"].to_numpy() * lot_price / total
        where = assets.get_indexer(account.lots["asset"])
        member = np.zeros((len(assets), len(lot_value)))
        member[where, np.arange(len(lot_value))] = 1.0
        buy = cp.Variable(len(assets), nonneg=True)
        sale = cp.Variable(len(lot_value), nonneg=True)  # per lot
        sold = member @ sale
        traded = buy + sold
        constraints += [
            sale <= lot_value,
            account.cash / total - cp.sum(buy) + cp.sum(sold) - rate @ traded >= 0,
        ]
        held = held + member @ lot_value + buy - sold
        cost = cost + rate @ traded
        if taxable:
            gain = 1 - account.lots["cost_basis"].to_numpy() / lot_price
            age = market.as_of - pd.to_datetime(account.lots["acquired"])
            long_term = (age.dt.days > 365).to_numpy()
            rates = np.where(long_term, account.tax_rate_long, account.tax_rate_short)
            cost = cost + (rates * gain) @ sale
    active = held - target
    problem = cp.Problem(
        cp.Minimize(50.0 * cp.quad_form(active, sigma) + cost), constraints
    )
    problem.solve(solver="CLARABEL")
    assert result.summary["objective_continuous"] == pytest.approx(
        problem.value, rel=1e-5, abs=1e-8
    )


def _two_stocks(drag: float = 0.0) -> Market:
    """X and Y at $10, 20% volatility, independent; X may carry a tax drag."""
    market = diagonal_market({"X": 10.0, "Y": 10.0}, {"X": 0.04, "Y": 0.04})
    prices = market.prices.reset_index().assign(tax_drag=[drag, 0.0])
    return Market(market.as_of, prices, market.risk_model)


HALF = pd.Series({"X": 0.5, "Y": 0.5})


def test_the_joint_solve_sells_where_it_costs_no_tax() -> None:
    # Both accounts hold only X; the household target is half X, half Y.
    # Together: the IRA swaps its X for Y, no tax, no tracking error. Alone,
    # the taxable account must sell X at a large gain to reach the target.
    taxed = Account("TAX", 0.0, lots(("X", "t1", 100, 1.0, "2015-01-02")))
    ira = Account(
        "IRA",
        0.0,
        lots(("X", "i1", 100, 9.0, "2015-01-02")),
        account_type="tax_deferred",
    )
    objective = (TrackingError(100.0), LinearCost(), TaxCost())
    rules = (NoBuyAndSell(), MinCash(0.0))
    market = _two_stocks()
    joint = solver.rebalance_household(
        "H",
        [taxed, ira],
        targets=HALF,
        market=market,
        objective=objective,
        constraints=rules,
    )
    alone = [
        solver.rebalance(
            a, targets=HALF, market=market, objective=objective, constraints=rules
        )
        for a in (taxed, ira)
    ]
    assert joint.status == "optimal"
    assert joint.summary["est_tax"] == pytest.approx(0.0, abs=1e-6)
    assert joint.accounts["TAX"].trades.empty
    assert joint.summary["tracking_error_after"] <= 0.005
    alone_tax = sum(r.summary["est_tax"] for r in alone)
    assert alone_tax > 50.0  # the taxable account pays to reach the target alone
    # the household's holdings when each account is solved alone
    held = {"X": 0.0, "Y": 0.0}
    for r in alone:
        w = r.weights
        for asset in held:
            held[asset] += w.loc[asset, "after"] * 1000.0
    active = np.array([held["X"], held["Y"]]) / 2000.0 - 0.5
    alone_te = float(np.sqrt(0.04 * (active**2).sum()))
    assert joint.summary["tracking_error_after"] <= alone_te + 1e-3


def test_tax_drag_puts_the_inefficient_asset_in_the_ira() -> None:
    taxed = Account(
        "TAX",
        0.0,
        lots(("X", "t1", 50, 10.0, "2025-06-02"), ("Y", "t2", 50, 10.0, "2025-06-02")),
    )
    ira = Account(
        "IRA",
        0.0,
        lots(("X", "i1", 50, 10.0, "2025-06-02"), ("Y", "i2", 50, 10.0, "2025-06-02")),
        account_type="tax_exempt",
    )
    result = solver.rebalance_household(
        "H",
        [taxed, ira],
        targets=HALF,
        market=_two_stocks(drag=0.02),
        objective=(TrackingError(100.0), LinearCost(), TaxDrag(5.0)),
    )  # swapping locations buys X in one account and sells it in the other
    assert result.status == "optimal"
    tax_weights = result.accounts["TAX"].weights["after"]
    ira_weights = result.accounts["IRA"].weights["after"]
    assert tax_weights["X"] < 0.1  # the drag-carrying asset left the taxable account
    assert ira_weights["X"] > 0.9
    assert result.summary["tracking_error_after"] <= 0.005


def test_each_account_keeps_its_own_cash_and_raises_its_own_withdrawal() -> None:
    taxed = Account(
        "TAX",
        0.0,
        lots(("X", "t1", 50, 12.0, "2025-06-02"), ("Y", "t2", 50, 5.0, "2025-06-02")),
        cash_flow=-100.0,
    )
    ira = Account(
        "IRA",
        300.0,
        lots(("X", "i1", 50, 5.0, "2025-06-02")),
        account_type="tax_deferred",
    )
    result = solver.rebalance_household(
        "H",
        [taxed, ira],
        targets=HALF,
        market=_two_stocks(),
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=(NoBuyAndSell(), MinCash(0.01)),
    )
    assert result.status == "optimal", result.message
    for aid, value in (("TAX", 900.0), ("IRA", 800.0)):
        cash = result.accounts[aid].summary["cash_after"]
        assert cash >= 0.01 * value - 1e-6, (aid, cash)
    sold = result.accounts["TAX"].trades.query("side == 'sell'")["value"].sum()
    bought = result.accounts["TAX"].trades.query("side == 'buy'")["value"].sum()
    assert sold - bought >= 100.0 + 0.01 * 900 - 1e-6


def test_a_bad_account_names_itself() -> None:
    good = Account("GOOD", 100.0, lots(("X", "g1", 10, 10.0, "2025-06-02")))
    bad = Account("BAD", 0.0, lots(("Q", "b1", 10, 10.0, "2025-06-02")))  # no price
    with pytest.raises(solver.InputError) as caught:
        solver.rebalance_household(
            "H",
            [good, bad],
            targets=HALF,
            market=_two_stocks(),
            objective=(TrackingError(1.0),),
        )
    assert caught.value.account_id == "BAD"
    assert caught.value.asset == "Q"


@st.composite
def households(draw: st.DrawFn) -> tuple[list[Account], dict[str, pd.DataFrame]]:
    """2-3 accounts on X, Y, Z with random lots, types and recent trades."""
    accounts = []
    for k in range(draw(st.integers(2, 3))):
        rows = []
        for asset in "XYZ":
            for j in range(draw(st.integers(0, 2))):
                basis = draw(st.sampled_from([4.0, 9.0, 16.0]))
                day = draw(st.sampled_from(["2024-01-02", "2026-06-20"]))
                rows.append(
                    (asset, f"{k}{asset}{j}", draw(st.integers(1, 40)), basis, day)
                )
        sold = draw(st.lists(st.sampled_from("XYZ"), max_size=2, unique=True))
        bought = draw(st.lists(st.sampled_from("XYZ"), max_size=1))
        recent = pd.DataFrame(
            [(a, "2026-06-25", "sell", 5.0, -20.0) for a in sold]
            + [(a, "2026-06-25", "buy", 5.0, np.nan) for a in bought],
            columns=["asset", "date", "side", "quantity", "realized_gain"],
        )
        kind = draw(st.sampled_from(["taxable", "taxable", "tax_deferred"]))
        cash = draw(st.sampled_from([0.0, 100.0, 500.0]))
        accounts.append(
            Account(
                f"A{k}",
                cash,
                lots(*rows),
                recent_trades=recent if len(recent) else None,
                account_type=kind,
            )
        )
    return accounts, {}


@settings(max_examples=25, deadline=None)
@given(case=households(), weights=st.sampled_from([(0.5, 0.3, 0.2), (0.1, 0.1, 0.8)]))
def test_random_households_keep_the_cross_account_rules(
    case: tuple[list[Account], dict[str, pd.DataFrame]], weights: tuple[float, ...]
) -> None:
    accounts, _ = case
    market = diagonal_market(
        {"X": 10.0, "Y": 10.0, "Z": 10.0}, {"X": 0.04, "Y": 0.09, "Z": 0.02}
    )
    targets = pd.Series(dict(zip("XYZ", weights, strict=True)))
    assume(all(len(a.lots) or a.cash for a in accounts))  # no empty account
    result = solver.rebalance_household(
        "H",
        accounts,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=(NoBuyAndSell(), WashSaleRule(), MinCash(0.0)),
    )
    event(str(result.status))
    assert result.status in ("optimal", "infeasible"), result.message
    if result.status != "optimal":
        return
    trades = result.trades
    bought = set(trades.loc[trades["side"] == "buy", "asset"])
    sold = set(trades.loc[trades["side"] == "sell", "asset"])
    assert not bought & sold  # no asset bought in one account, sold in another
    window_start = AS_OF - pd.Timedelta(days=30)
    washed = set()
    recently_bought = set()
    for a in accounts:
        if a.recent_trades is not None:
            recent = a.recent_trades[a.recent_trades["date"] >= window_start]
            if a.taxable:
                washed |= set(recent.loc[recent["side"] == "sell", "asset"])
            recently_bought |= set(recent.loc[recent["side"] == "buy", "asset"])
        fresh = a.lots[pd.to_datetime(a.lots["acquired"]) >= window_start]
        recently_bought |= set(fresh["asset"])
    assert not bought & washed  # a taxable loss is not washed by any account
    for a in accounts:
        if not a.taxable:
            continue
        own = trades[
            (trades["account_id"] == a.account_id) & (trades["side"] == "sell")
        ]
        losses = own[(own["realized_gain"] < 0) & own["asset"].isin(recently_bought)]
        assert losses.empty, losses
    for aid, r in result.accounts.items():
        assert r.summary["cash_after"] >= -1e-6, aid


def test_restrictions_of_one_account_stay_in_that_account() -> None:
    a = Account("A", 0.0, lots(("X", "a1", 100, 10.0, "2025-06-02")))
    b = Account("B", 0.0, lots(("X", "b1", 100, 10.0, "2025-06-02")))
    frozen = Restrictions(pd.DataFrame({"asset": ["X"], "rule": ["no_sell"]}))
    result = solver.rebalance_household(
        "H",
        [a, b],
        targets=HALF,
        market=_two_stocks(),
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(NoBuyAndSell(),),
        account_constraints={"A": [frozen]},
    )
    assert result.status == "optimal"
    assert result.accounts["A"].trades.empty
    sells = result.accounts["B"].trades.query("side == 'sell'")
    assert sells["value"].sum() == pytest.approx(1000.0, rel=0.02)


def test_the_gain_budget_counts_only_taxable_sales():
    """Selling X in the taxable account realises $500 of gain; the IRA's
    $1,000 "loss" on Y is no tax loss, so it cannot pay for it: under a zero
    budget the taxable account realises no net gain. It realised $495,
    offset in the budget by the IRA."""
    market = diagonal_market(
        {"X": 10.0, "Y": 10.0, "Z": 10.0}, dict.fromkeys("XYZ", 0.04)
    )
    taxable = Account("TAX", 0.0, lots(("X", "t1", 100, 5.0, "2020-01-02")))
    ira = Account(
        "IRA",
        0.0,
        lots(("Y", "i1", 100, 20.0, "2020-01-02")),
        account_type="tax_deferred",
    )
    result = solver.rebalance_household(
        "H",
        [taxable, ira],
        targets=pd.Series({"Z": 1.0}),
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=(GainBudget(0.0),),
    )
    trades = result.trades
    sold_x = trades.loc[(trades["account_id"] == "TAX") & (trades["side"] == "sell")]
    assert (sold_x["quantity"] * (10.0 - 5.0)).sum() <= 1e-6  # the gain, by hand
    assert (trades.loc[trades["account_id"] == "IRA", "side"] == "sell").any()


@pytest.mark.parametrize("cap", [None, 0.2])
def test_household_turnover_is_each_accounts_own_less_its_own_flow(cap):
    """A0 withdraws $5,000 from its own $10,000 cash: no sale needed. The
    IRA's sales of X are turnover; they raise none of A0's withdrawal (money
    does not move between accounts). The household's turnover is the
    accounts' own, summed over its $15,000: it was netted against A0's
    flow (0.4547 reported for 0.6213), and a 0.2 cap ended at 0.2107."""
    market = diagonal_market({"X": 10.0, "Y": 10.0}, {"X": 0.04, "Y": 0.04})
    members = [
        Account("A0", 10_000.0, lots(), cash_flow=-5_000.0),
        Account(
            "A1",
            0.0,
            lots(("X", "i1", 1000, 10.0, "2020-01-02")),
            account_type="tax_deferred",
        ),
    ]
    result = solver.rebalance_household(
        "H",
        members,
        targets=pd.Series({"X": 0.5, "Y": 0.5}),
        market=market,
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(MinCash(0.0),) + ((MaxTurnover(cap),) if cap else ()),
    )
    value = result.trades.groupby(["account_id", "side"])["value"].sum()
    a0 = value.get(("A0", "buy"), 0.0) / 2  # no sale: the withdrawal came from cash
    a1 = (value.get(("A1", "buy"), 0.0) + value.get(("A1", "sell"), 0.0)) / 2
    by_hand = (a0 + a1) / 15_000.0
    assert result.summary["turnover"] == pytest.approx(by_hand, abs=1e-12)
    if cap is not None:
        assert by_hand <= cap + 1e-9
        assert (
            result.summary["objective_discrete"]
            >= result.summary["objective_bound"] - 1e-9
        )


def test_a_members_withdrawal_whole_lots_cannot_raise_makes_the_household_infeasible():
    """A0 must raise $1,400 from its own lots (money does not move between
    accounts), but in round lots of 10 with 5 of its 20 shares wash-blocked
    it can sell $1,000: the household is infeasible, saying by how much,
    instead of raising InfeasibleError from the rounding."""
    market = Market(
        as_of=AS_OF,
        prices=pd.DataFrame(
            {"asset": ["X", "Y"], "price": [100.0, 50.0], "lot_size": [10.0, 1.0]}
        ),
        risk_model=CovarianceRiskModel(
            pd.DataFrame(
                [[0.04, 0.0], [0.0, 0.05]], index=["X", "Y"], columns=["X", "Y"]
            )
        ),
    )
    recent = AS_OF - pd.Timedelta(days=10)
    members = [
        Account(
            "A0",
            0.0,
            lots(("X", "old", 15, 50.0, "2020-01-02"), ("X", "new", 5, 120.0, recent)),
            cash_flow=-1_400.0,
        ),
        Account("A1", 5_000.0, lots()),
    ]
    result = solver.rebalance_household(
        "H",
        members,
        targets=pd.Series({"X": 0.5, "Y": 0.5}),
        market=market,
        objective=(TrackingError(100.0), LinearCost()),
        constraints=(WashSaleRule(),),
    )
    assert result.status is solver.Status.INFEASIBLE
    assert "cash 400.00 short" in result.message
