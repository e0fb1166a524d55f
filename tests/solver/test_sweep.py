"""Sweeps against one full rebalance per point."""

import numpy as np
import pytest

import solver
import solver.program.solve
from models import (
    LinearCost,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from models.errors import InputError
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.program.tradeoffs import sweep
from solver.result import SolveOptions

OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())
CONSTRAINTS = (MinCash(0.01), MaxTurnover(0.2), NoBuyAndSell())
POINTS = [
    {"tax_cost": 0.0},
    {"tax_cost": 1.0, "linear_cost": 5.0},
    {"tax_cost": 3.0, "tracking_error": 20.0},
    {"max_tracking_error": 0.004},
]


def _case():
    market = synthetic_market(40, n_factors=5, seed=7)
    targets = synthetic_targets(market, seed=7)
    return market, targets, synthetic_account(market, targets, seed=7)


def _rebalance(acct, targets, market, point):
    weights = {t.name: point.get(t.name, t.weight) for t in OBJECTIVE}
    objective = (
        TrackingError(weights["tracking_error"]),
        LinearCost(weights["linear_cost"]),
        TaxCost(weight=weights["tax_cost"]),
    )
    constraints = list(CONSTRAINTS)
    if "max_tracking_error" in point:
        constraints.append(MaxTrackingError(point["max_tracking_error"]))
    return solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=objective,
        constraints=constraints,
        options=SolveOptions(rounding="none"),
    )


def test_sweep_matches_a_full_rebalance_at_every_point():
    market, targets, acct = _case()
    result = sweep(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=CONSTRAINTS,
        points=POINTS,
    )
    assert list(result.table["status"]) == ["optimal"] * len(POINTS)
    for k, point in enumerate(POINTS):
        reference = _rebalance(acct, targets, market, point)
        row = result.table.iloc[k]
        assert row["objective"] == pytest.approx(
            reference.summary["objective_continuous"], rel=1e-5, abs=1e-9
        )
        te = np.sqrt(reference.terms.loc["tracking_error", "value"])
        assert row["tracking_error_after"] == pytest.approx(te, rel=1e-4, abs=1e-7)
    assert result.table.loc[3, "tracking_error_after"] <= 0.004 + 1e-7


def test_higher_tax_weight_realizes_less_gain():
    market, targets, acct = _case()
    points = [{"tax_cost": w} for w in (0.0, 0.5, 1.0, 2.0, 4.0)]
    result = sweep(
        acct, targets=targets, market=market, objective=OBJECTIVE, points=points
    )
    gains = result.table["realized_gain"].to_numpy()
    assert (np.diff(gains) <= 1e-6 * abs(gains).max()).all()
    sold = result.lot_sales
    assert set(sold["point"]) <= set(range(len(points)))
    assert ((sold["sold"] > 0) & (sold["sold"] <= 1 + 1e-5)).all()


def test_sweep_rejects_unknown_names_and_custom_terms():
    market, targets, acct = _case()
    with pytest.raises(InputError, match="unknown term"):
        sweep(
            acct,
            targets=targets,
            market=market,
            objective=OBJECTIVE,
            points=[{"turnover": 1.0}],
        )
    with pytest.raises(InputError, match=">= 0"):
        sweep(
            acct,
            targets=targets,
            market=market,
            objective=OBJECTIVE,
            points=[{"tax_cost": -1.0}],
        )


def test_an_unreachable_cap_is_infeasible_not_failed():
    market, targets, acct = _case()
    result = sweep(
        acct,
        targets=targets,
        market=market,
        objective=(TrackingError(0.0), LinearCost(), TaxCost()),
        constraints=CONSTRAINTS,
        points=[{"max_tracking_error": cap} for cap in (1e-6, 1e-4, 0.01)],
    )
    assert result.table.loc[0, "status"] == "infeasible"
    assert result.table.loc[2, "status"] == "optimal"
    assert result.table.loc[2, "tracking_error_after"] <= 0.01 + 1e-7


def test_sweep_names_the_solver_and_why_the_first_gave_no_answer(monkeypatch, caplog):
    market, targets, acct = _case()
    clean = sweep(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=CONSTRAINTS,
        points=POINTS[:1],
    )
    assert list(clean.table["solver"]) == ["CLARABEL"]
    assert list(clean.table["message"]) == [""]

    def broken(*args, **kwargs):
        raise TypeError("injected")

    monkeypatch.setattr(solver.program.solve.clarabel, "DefaultSolver", broken)
    result = sweep(
        acct,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=CONSTRAINTS,
        points=POINTS[:1],
    )
    row = result.table.iloc[0]
    assert row["status"] == "optimal"
    assert row["solver"] == "SCS"
    assert "CLARABEL raised TypeError: injected" in row["message"]
    assert "answered by SCS" in row["message"]
    assert "answered by SCS" in caplog.text
