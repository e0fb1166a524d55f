"""The direct Clarabel path against the cvxpy formulation of the same program."""

from dataclasses import dataclass
from typing import ClassVar

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest

import solver
import solver.program.continuous
from models import (
    AssetBounds,
    FactorBounds,
    GainBudget,
    GroupBounds,
    LinearCost,
    LongOnly,
    MarketImpact,
    MaxCash,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    Restrictions,
    TaxCost,
    TrackingError,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from models.terms import Outcome, ProgramVars
from solver.program import sweep
from solver.program.solve import Solution
from solver.result import SolveOptions, Status
from tests.conftest import ATOL_WEIGHT, RTOL_OBJECTIVE

CONTINUOUS = SolveOptions(rounding="none")
OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost(0.8))


def _case(seed: int = 4, n: int = 40):
    market = synthetic_market(n, n_factors=5, seed=seed)
    targets = synthetic_targets(market, seed=seed)
    return market, targets, synthetic_account(market, targets, seed=seed)


def _both(constraints, objective=OBJECTIVE, seed=4, monkeypatch=None):
    """Solve one account by both paths; return (direct, cvxpy) results.

    With ``monkeypatch``, the direct solve may not compile through cvxpy.
    """
    market, targets, acct = _case(seed)

    def solve(formulation):
        return solver.rebalance(
            acct,
            targets=targets,
            market=market,
            objective=objective,
            constraints=constraints,
            options=SolveOptions(rounding="none", formulation=formulation),
        )

    reference = solve("cvxpy")
    if monkeypatch is not None:

        def refuse(*args, **kwargs):
            raise AssertionError("compiled through cvxpy")

        monkeypatch.setattr(solver.program.continuous, "build_program", refuse)
    return solve("auto"), reference


TILTS = {  # sector weights pushed away from the target: both bind
    "lower": pd.Series({"materials": 0.01}),
    "upper": pd.Series({"energy": -0.01}),
}
CASES = {
    "turnover and cash": [MaxTurnover(0.08), MinCash(0.01), MaxCash(0.05)],
    "bounds": [LongOnly(), AssetBounds(-0.01, 0.01, relative_to_target=True)],
    "groups": [GroupBounds(**TILTS, relative_to_target=True), MinCash(0.0)],
    "tracking-error cap": [MaxTrackingError(0.004), MaxTurnover(0.3)],
    "factor bounds": [FactorBounds(pd.Series({"f00": 0.01, "f01": 0.005}))],
    "gain budget": [GainBudget(-500.0), NoBuyAndSell()],
}


@pytest.mark.parametrize("name", list(CASES))
def test_direct_path_matches_cvxpy(name):
    direct, reference = _both(CASES[name])
    assert direct.status is Status.OPTIMAL
    assert reference.status is Status.OPTIMAL
    objective = "objective_continuous"
    assert direct.summary[objective] == pytest.approx(
        reference.summary[objective], rel=RTOL_OBJECTIVE, abs=1e-9
    )
    np.testing.assert_allclose(
        direct.weights["continuous"], reference.weights["continuous"], atol=1e-5
    )
    pd.testing.assert_index_equal(direct.constraints.index, reference.constraints.index)
    np.testing.assert_allclose(
        direct.constraints["slack"], reference.constraints["slack"], atol=1e-5
    )


def test_direct_path_matches_cvxpy_with_market_impact():
    objective = (*OBJECTIVE, MarketImpact(coefficient=5.0))
    direct, reference = _both([MaxTurnover(0.2)], objective=objective)
    assert direct.summary["objective_continuous"] == pytest.approx(
        reference.summary["objective_continuous"], rel=RTOL_OBJECTIVE
    )
    assert direct.terms.loc["market_impact", "value"] > 0
    np.testing.assert_allclose(
        direct.weights["continuous"], reference.weights["continuous"], atol=1e-5
    )


def test_direct_path_duals_match_cvxpy_on_binding_constraints():
    direct, reference = _both([MaxTurnover(0.02), MinCash(0.03)])
    for name in ("max_turnover", "min_cash"):
        assert reference.constraints.loc[name, "dual"] > 1e-4  # binding
        assert direct.constraints.loc[name, "dual"] == pytest.approx(
            reference.constraints.loc[name, "dual"], rel=1e-3
        )


def test_direct_path_handles_forced_and_forbidden_trades():
    market, targets, acct = _case()
    held = acct.lots["asset"].unique()
    rules = pd.DataFrame(
        {
            "asset": [held[0], held[1], targets.index[-1]],
            "rule": ["liquidate", "no_sell", "no_buy"],
        }
    )
    results = [
        solver.rebalance(
            acct,
            targets=targets,
            market=market,
            objective=OBJECTIVE,
            constraints=[Restrictions(rules), MinCash(0.01)],
            options=SolveOptions(rounding="none", formulation=formulation),
        )
        for formulation in ("auto", "cvxpy")
    ]
    weights = [r.weights["continuous"] for r in results]
    np.testing.assert_allclose(weights[0], weights[1], atol=ATOL_WEIGHT * 10)
    assert weights[0][held[0]] == pytest.approx(0.0, abs=ATOL_WEIGHT)


def test_supported_program_never_compiles_through_cvxpy(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("cvxpy path used")

    monkeypatch.setattr(solver.program.continuous, "build_program", refuse)
    market, targets, acct = _case()
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=[MaxTurnover(0.05), MinCash(0.01), NoBuyAndSell()],
    )
    assert result.status is Status.OPTIMAL


@dataclass(frozen=True)
class CapPairWeight:
    """A user constraint written once, in this file only: two assets' weight
    together at most ``limit`` (a linear row the package does not have)."""

    limit: float = 0.01
    name: ClassVar[str] = "cap_pair_weight"
    is_soft: ClassVar[bool] = False

    def build(self, x: ProgramVars) -> list:
        return [x.weights[np.array([0, 1])].sum() <= self.limit]

    def violation(self, o: Outcome) -> float:
        return max(0.0, float(o.weights[:2].sum()) - self.limit)


def _direct_matches_cvxpy(monkeypatch, constraints, objective=OBJECTIVE):
    """Solve by cvxpy, then by the direct path with cvxpy refused; compare."""
    direct, reference = _both(constraints, objective, monkeypatch=monkeypatch)
    assert direct.status is Status.OPTIMAL
    assert direct.summary["message"] == ""
    np.testing.assert_allclose(
        direct.summary["objective_continuous"],
        reference.summary["objective_continuous"],
        rtol=RTOL_OBJECTIVE,
    )
    np.testing.assert_allclose(
        direct.weights["continuous"], reference.weights["continuous"], atol=ATOL_WEIGHT
    )
    return direct, reference


def test_a_new_linear_constraint_takes_the_direct_path(monkeypatch):
    constraints = [CapPairWeight(), MinCash(0.01)]
    direct, reference = _direct_matches_cvxpy(monkeypatch, constraints)
    assert direct.weights["continuous"].iloc[:2].sum() <= 0.01 + ATOL_WEIGHT
    assert direct.constraints.loc["cap_pair_weight", "dual"] > 0  # binding
    market, targets, acct = _case()
    swept = sweep(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=constraints,
        points=[{"tax_cost": OBJECTIVE[2].weight}],
    )
    np.testing.assert_allclose(
        swept.table.loc[0, "objective"],
        reference.summary["objective_continuous"],
        rtol=RTOL_OBJECTIVE,
    )


@dataclass(frozen=True)
class CashDrag:
    """A user term written once, in this file only: ``(cash - 2%)^2`` (quadratic
    in the program's variables) plus a linear 1 bp on buys."""

    weight: float = 50.0
    name: ClassVar[str] = "cash_drag"

    def expr(self, x: ProgramVars):
        spread = np.full(x.snapshot.n_assets, 1e-4) @ x.buys
        return x.square(x.cash - 0.02, np.ones(1)) + spread

    def evaluate(self, o: Outcome) -> float:
        return (o.cash - 0.02) ** 2 + 1e-4 * float(o.buys.sum())


def test_a_new_term_takes_the_direct_path_and_matches_cvxpy(monkeypatch):
    objective = (*OBJECTIVE, CashDrag())
    direct, _ = _direct_matches_cvxpy(monkeypatch, [MinCash(0.0)], objective)
    assert direct.terms.loc["cash_drag", "value"] > 0


@dataclass(frozen=True)
class AbsoluteCash:
    """A user term with a cvxpy atom: no matrix form."""

    weight: float = 1.0
    name: ClassVar[str] = "absolute_cash"

    def expr(self, x: ProgramVars):
        return cp.abs(x.cash - 0.02)

    def evaluate(self, o: Outcome) -> float:
        return abs(o.cash - 0.02)


def test_a_term_without_matrix_form_goes_through_cvxpy_and_says_so():
    market, targets, acct = _case()
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=(*OBJECTIVE, AbsoluteCash()),
        options=CONTINUOUS,
    )
    assert result.status is Status.OPTIMAL
    assert "'absolute_cash' has no matrix form" in result.message


@dataclass(frozen=True)
class CapFirstAssetAbsolute:
    """A user constraint with a cvxpy atom: no matrix form."""

    name: ClassVar[str] = "cap_first_asset"
    is_soft: ClassVar[bool] = False

    def build(self, x: ProgramVars) -> list:
        return [cp.abs(x.weights[0]) <= 0.01]

    def violation(self, o: Outcome) -> float:
        return max(0.0, abs(float(o.weights[0])) - 0.01)


def test_a_constraint_without_matrix_form_goes_through_cvxpy_and_says_so(caplog):
    market, targets, acct = _case()
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=[CapFirstAssetAbsolute()],
        options=CONTINUOUS,
    )
    assert result.status is Status.OPTIMAL
    assert result.weights["continuous"].iloc[0] <= 0.01 + 1e-7
    assert "cap_first_asset" in result.constraints.index
    assert "'cap_first_asset' has no matrix form" in result.message
    assert "solved through cvxpy" in result.message
    assert "has no matrix form" in caplog.text


def test_clarabel_failure_falls_back_to_next_solver(monkeypatch):
    def no_answer(matrices, options):
        return Solution(
            Status.FAILED, None, matrices.mask, "CLARABEL", pd.DataFrame, "no answer"
        )

    monkeypatch.setattr(solver.program.continuous, "solve_matrices", no_answer)
    market, targets, acct = _case()
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=[MaxTurnover(0.1)],
        options=SolveOptions(rounding="none", fallback=("SCS",)),
    )
    assert result.summary["solver"] == "SCS"
    assert result.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE)


def test_infeasible_by_direct_path_names_the_conflict():
    direct, reference = _both([MinCash(0.9), MaxCash(0.1)])
    assert direct.status is Status.INFEASIBLE
    assert (
        set(direct.conflicting)
        == set(reference.conflicting)
        == {
            "min_cash",
            "max_cash",
        }
    )


@pytest.mark.parametrize("name", [*CASES, "market impact and restrictions"])
def test_a_narrower_mask_drops_variables_to_the_program_built_for_it(name):
    """``Matrices.restricted`` (the side solves) equals building afresh."""
    from models.snapshot import build_snapshot
    from solver.program.continuous import combined_mask
    from solver.program.direct import build_matrices
    from solver.program.sides import fix_sides, sell_side

    market, targets, acct = _case(seed=7)
    objective, constraints = OBJECTIVE, CASES.get(name, [MaxTurnover(0.2)])
    rules = []
    if name not in CASES:
        objective = (*OBJECTIVE, MarketImpact(coefficient=5.0))
        held = acct.lots["asset"].unique()
        table = pd.DataFrame({"asset": [held[0], held[1]], "rule": ["liquidate"] * 2})
        rules = [Restrictions(table)]
    snapshot = build_snapshot(acct, targets, market)
    wide = combined_mask(snapshot, rules)
    full = build_matrices(snapshot, wide, objective, constraints)
    rng = np.random.default_rng(0)
    buys = rng.uniform(size=snapshot.n_assets) * (
        rng.uniform(size=snapshot.n_assets) < 0.5
    )
    sells = rng.uniform(size=snapshot.n_lots) * (
        rng.uniform(size=snapshot.n_lots) < 0.5
    )
    net = fix_sides(snapshot, Outcome(snapshot, buys, sells))
    conflict = rng.uniform(size=snapshot.n_assets) < 0.3
    for narrow in (wide & net, wide & sell_side(net, snapshot, conflict)):
        got = full.restricted(narrow)
        want = build_matrices(snapshot, narrow, objective, constraints)
        assert got.layout.size < full.layout.size
        for field_ in ("buy_assets", "sell_lots", "forced_sales"):
            np.testing.assert_array_equal(
                getattr(got.layout, field_), getattr(want.layout, field_)
            )
        assert got.blocks == want.blocks
        assert [repr(c) for c in got.cones] == [repr(c) for c in want.cones]
        np.testing.assert_array_equal(got.b, want.b)
        np.testing.assert_array_equal(got.q, want.q)
        assert abs(got.A - want.A).max() == 0
        assert abs(got.P - want.P).max() == 0
        reweighted = got.reweighted({t.name: 2.0 for t in objective})
        afresh = want.reweighted({t.name: 2.0 for t in objective})
        assert abs(reweighted.P - afresh.P).max() == 0
    with pytest.raises(ValueError, match="allows trades"):
        full.restricted(wide & net).restricted(wide)
