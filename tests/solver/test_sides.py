"""One side per asset (``NoBuyAndSell``) against an exact enumeration of sides.

The oracle is its own formulation, written from the maths in cvxpy with the
raw tables as input (not the package's snapshot or program): for every
pattern of sides (each asset bought only or sold only) it solves the convex
program, and the smallest objective is the true optimum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

import solver
from models import (
    Account,
    CovarianceRiskModel,
    LinearCost,
    Market,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TrackingError,
)
from models.snapshot import build_snapshot
from models.terms import Outcome
from solver.program import sides
from solver.result import SolveOptions
from tests.conftest import account, diagonal_market

AS_OF = pd.Timestamp("2026-06-30")
RATE_SHORT, RATE_LONG = 0.408, 0.238
SAME = 1e-7  # fraction of V: two objectives this close are equal
ONE_BP = 1e-4  # fraction of V
BP = 1e4  # bp per unit of V


@dataclass
class Case:
    """A tiny account, its market and targets, and the raw numbers of the oracle."""

    account: Account
    market: Market
    targets: pd.Series
    te_weight: float
    sigma: np.ndarray
    cost: np.ndarray  # per unit traded
    owner: np.ndarray  # asset of each lot
    capacity: np.ndarray  # lot value / V
    tax: np.ndarray  # tax per unit of V sold, per lot
    cash: float  # fraction of V
    current: np.ndarray
    target: np.ndarray

    def rebalance(self, sides: str) -> pd.Series:
        """Return the package's summary under ``sides``."""
        result = solver.rebalance(
            self.account,
            targets=self.targets,
            market=self.market,
            objective=(TrackingError(self.te_weight), LinearCost(), TaxCost()),
            constraints=(NoBuyAndSell(), MinCash(0.0)),
            options=SolveOptions(rounding="none", sides=sides),
        )
        assert result.status == "optimal", result.message
        return result.summary


def tiny_case(seed: int) -> Case:
    """4-6 assets, 1-3 lots each with gains and losses, sometimes one large
    short-term loss lot (up to 60% of V), tracking-error weight 1-1000."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 7))
    assets = [f"A{i}" for i in range(n)]
    prices = rng.uniform(10, 200, n).round(2)
    loadings = rng.normal(size=(n, 2)) * 0.2
    sigma = loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.06, n))
    value = 100_000.0
    held = rng.dirichlet(np.ones(n + 1))  # the last entry is cash
    rows = []
    for i, asset in enumerate(assets):
        k = int(rng.integers(1, 4))
        for j, part in enumerate(rng.dirichlet(np.ones(k)) * held[i] * value):
            ratio = rng.choice([rng.uniform(0.3, 0.95), rng.uniform(1.05, 2.5)])
            rows.append((asset, f"{asset}-{j}", part / prices[i], prices[i] / ratio))
    if rng.random() < 0.5:
        i = int(rng.integers(n))
        part = rng.uniform(0.1, 0.6) * value
        basis = prices[i] * rng.uniform(1.2, 2.5)
        rows.append((assets[i], f"{assets[i]}-L", part / prices[i], basis))
    lots = pd.DataFrame(rows, columns=["asset", "lot_id", "quantity", "cost_basis"])
    lots["acquired"] = rng.choice(["2020-05-01", "2026-03-15"], len(lots))
    cost_bps = rng.uniform(1, 30, n)
    market = Market(
        as_of=AS_OF,
        prices=pd.DataFrame({"asset": assets, "price": prices, "cost_bps": cost_bps}),
        risk_model=CovarianceRiskModel(
            pd.DataFrame(sigma, index=assets, columns=assets)
        ),
    )
    target = rng.dirichlet(np.ones(n)) * rng.uniform(0.9, 1.0)
    targets = pd.Series(target, index=assets)
    targets["CASH"] = 1 - target.sum()
    cash = held[-1] * value
    owner = np.array([assets.index(a) for a in lots["asset"]])
    lot_price = prices[owner]
    lot_value = lots["quantity"].to_numpy() * lot_price
    total = cash + lot_value.sum()
    long_term = lots["acquired"].to_numpy() == "2020-05-01"
    rate = np.where(long_term, RATE_LONG, RATE_SHORT)
    gain = 1 - lots["cost_basis"].to_numpy() / lot_price
    return Case(
        account=Account("T", cash, lots),
        market=market,
        targets=targets,
        te_weight=float(np.exp(rng.uniform(0, np.log(1000)))),
        sigma=sigma,
        cost=cost_bps / 1e4,
        owner=owner,
        capacity=lot_value / total,
        tax=rate * gain,  # loss_factor 1: a loss is worth its full rate
        cash=cash / total,
        current=np.bincount(owner, lot_value, n) / total,
        target=target,
    )


class Oracle:
    """The program of a case, with the sides of each asset as parameters."""

    def __init__(self, case: Case) -> None:
        n, m = len(case.current), len(case.owner)
        holdings = np.zeros((n, m))
        holdings[case.owner, np.arange(m)] = 1.0
        self.case, self.holdings = case, holdings
        self.buy_limit = cp.Parameter(n, nonneg=True)
        self.sale_limit = cp.Parameter(m, nonneg=True)
        self.buys, self.sales = cp.Variable(n, nonneg=True), cp.Variable(m, nonneg=True)
        sold = holdings @ self.sales
        weights = case.current + self.buys - sold
        cost = case.cost @ (self.buys + sold)
        cash = case.cash - cp.sum(self.buys) + cp.sum(sold) - cost
        objective = (
            case.te_weight * cp.quad_form(weights - case.target, case.sigma)
            + cost
            + case.tax @ self.sales
        )
        self.problem = cp.Problem(
            cp.Minimize(objective * BP),  # bp of V: well scaled for the solver
            [
                cash >= 0,
                self.buys <= self.buy_limit,
                self.sales <= self.sale_limit,
            ],
        )

    def solve(self, buy_side: np.ndarray | None) -> float:
        """Return the optimum with each asset on its side (None: both sides)."""
        n = len(self.case.current)
        can_buy = np.ones(n, bool) if buy_side is None else buy_side
        can_sell = np.ones(n, bool) if buy_side is None else ~buy_side
        self.buy_limit.value = np.where(can_buy, 2.0, 0.0)
        self.sale_limit.value = np.where(can_sell[self.case.owner], 1.0, 0.0) * (
            self.case.capacity
        )
        self.problem.solve(solver="CLARABEL", max_iter=1000)
        assert self.problem.status in ("optimal", "infeasible"), self.problem.status
        if self.problem.status == "infeasible":
            return np.inf
        return float(self.problem.value) / BP

    def best(self) -> float:
        """Return the true optimum: the best of every pattern of sides."""
        n = len(self.case.current)
        return min(
            self.solve(np.array(pattern))
            for pattern in itertools.product([True, False], repeat=n)
        )

    def net_rule(self) -> float:
        """Return the relax, fix by net trade, re-solve answer (the old rule)."""
        self.solve(None)
        net = self.buys.value - self.holdings @ self.sales.value
        towards = self.case.target >= self.case.current
        return self.solve(np.where(np.abs(net) > 1e-9, net > 0, towards))


def test_one_loss_lot_worth_half_the_account_is_harvested():
    """The issue's minimal case: the net trade is a buy, yet selling is best."""
    variance = 0.04
    market = diagonal_market({"X": 100.0}, {"X": variance})
    acct = account(10_000.0, ("X", "x1", 100.0, 200.0, "2026-03-01"))  # 50% of V
    kwargs = {
        "targets": pd.Series({"X": 1.0}),
        "market": market,
        "objective": (TrackingError(1.0), LinearCost(), TaxCost(loss_factor=1.0)),
        "options": SolveOptions(rounding="none"),
    }
    one_side = solver.rebalance(acct, constraints=(NoBuyAndSell(),), **kwargs)
    no_buy = Restrictions(pd.DataFrame({"asset": ["X"], "rule": "no_buy"}))
    restricted = solver.rebalance(acct, constraints=(no_buy,), **kwargs)
    # By hand: selling s of V costs f(s) = var (0.5 + s)^2 - 0.408 s (the lot
    # loses 100%), f' = 2 var (0.5 + s) - 0.408 < 0 on [0, 0.5]: sell it all,
    # f(0.5) = var - 0.204 = -0.164. Buying the other half costs nothing
    # (tracking error 0, no cost): 0. Selling is best.
    best = min(variance - RATE_SHORT * 0.5, 0.0)
    got = one_side.summary["objective_continuous"]
    assert got == pytest.approx(best, abs=SAME)
    assert got <= restricted.summary["objective_continuous"] + SAME
    assert one_side.summary["objective_bound"] <= got + SAME
    assert one_side.weights.loc["X", "continuous"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_auto_sides_never_worse_than_the_net_rule(seed):
    case = tiny_case(seed)
    oracle = Oracle(case)
    summary = case.rebalance("auto")
    assert summary["objective_continuous"] <= oracle.net_rule() + SAME
    assert summary["objective_bound"] == pytest.approx(oracle.solve(None), abs=SAME)
    assert summary["objective_continuous"] >= oracle.best() - SAME


@pytest.mark.slow
def test_exact_sides_equal_the_enumeration_on_300_tiny_accounts():
    """Exact: the true optimum on >= 99% of accounts, never 1 bp of V off."""
    gaps = []
    for seed in range(300):
        case = tiny_case(1000 + seed)
        oracle = Oracle(case)
        best = oracle.best()
        exact = case.rebalance("exact")
        gaps.append(exact["objective_continuous"] - best)
        auto = case.rebalance("auto")["objective_continuous"]
        assert auto <= oracle.net_rule() + SAME
    gaps = np.array(gaps)
    assert (gaps > -SAME).all()  # nothing beats the true optimum
    assert (gaps <= SAME).mean() >= 0.99
    assert gaps.max() < ONE_BP


def test_exact_search_stopped_at_its_limit_says_so(monkeypatch):
    monkeypatch.setattr(sides, "EXACT_SIDE_SOLVES", 4)
    for seed in range(20):  # the first account whose search needs more
        case = tiny_case(seed)
        summary = case.rebalance("exact")
        if "sides: search stopped after" in summary["message"]:
            break
    else:
        pytest.fail("no account needed more than 4 solves")
    assert "bp of V lower" in summary["message"]
    assert summary["objective_bound"] <= summary["objective_continuous"] + SAME


def test_an_untraded_asset_takes_the_side_its_solver_values_lean_to():
    """Below the noise threshold, the larger of the buy and the most-sold lot
    chooses (an interior point leaves the cheaper side nearer to paying);
    with neither, the side towards the target; a real trade keeps its side."""
    market = diagonal_market(
        {"X": 100.0, "Y": 50.0, "Z": 20.0}, {"X": 0.04, "Y": 0.04, "Z": 0.04}
    )
    acct = account(
        1_000.0,
        ("X", "x1", 10.0, 90.0, "2025-01-02"),
        ("X", "x2", 10.0, 120.0, "2026-01-02"),
        ("Y", "y1", 10.0, 40.0, "2025-01-02"),
        ("Z", "z1", 10.0, 30.0, "2025-01-02"),
    )
    targets = pd.Series({"X": 0.6, "Y": 0.3, "Z": 0.1})  # X and Y below target
    s = build_snapshot(acct, targets, market)
    assert (s.target[:2] > s.current[:2]).all()
    buys = np.array([1e-11, 0.0, 0.0])
    lot_sales = np.zeros(s.n_lots)
    lot_sales[s.lot_asset == 0] = [4e-10, 2e-10]  # X: sales lean, net below 1e-9
    lot_sales[s.lot_asset == 2] = 0.01  # Z: a real sale
    mask = sides.fix_sides(s, Outcome(s, buys, lot_sales))
    assert mask.can_buy.tolist() == [False, True, False]
    assert mask.can_sell.tolist() == [
        not can_buy for can_buy in np.array([False, True, False])[s.lot_asset]
    ]


@pytest.mark.parametrize("seed", range(6))
def test_net_sides_are_relax_fix_resolve(seed, monkeypatch):
    """``net``: one re-solve, each asset on its net trade's side; never
    better than ``auto``, and equal to the oracle's relax-fix-resolve when
    every asset's net trade is clear of zero (then no tie rule applies)."""
    case = tiny_case(seed)
    oracle = Oracle(case)
    oracle.solve(None)
    net = oracle.buys.value - oracle.holdings @ oracle.sales.value
    considered = []
    original = sides.SideSearch.consider

    def counted(self, mask):
        considered.append(mask)
        return original(self, mask)

    monkeypatch.setattr(sides.SideSearch, "consider", counted)
    fast = case.rebalance("net")
    assert len(considered) == 1  # each of these cases trades an asset both ways
    auto = case.rebalance("auto")
    assert fast["objective_continuous"] >= auto["objective_continuous"] - SAME
    assert fast["objective_bound"] == pytest.approx(auto["objective_bound"], abs=SAME)
    if np.abs(net).min() > 1e-6:
        assert fast["objective_continuous"] == pytest.approx(
            oracle.net_rule(), abs=SAME
        )
