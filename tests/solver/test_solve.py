import cvxpy as cp
import pandas as pd
import pytest

import solver
import solver.program.solve
from models import (
    LinearCost,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    TaxCost,
    TrackingError,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.program.solve import map_status
from solver.result import SolveOptions, Status
from tests.conftest import account, diagonal_market

MARKET = diagonal_market({"X": 10.0, "Y": 20.0}, {"X": 0.04, "Y": 0.09})
TARGETS = pd.Series({"X": 0.5, "Y": 0.5})
ACCOUNT = account(100.0, ("X", "x1", 60, 8.0, "2020-01-02"))


@pytest.mark.parametrize(
    ("cvxpy_status", "ours"),
    [
        (cp.OPTIMAL, Status.OPTIMAL),
        (cp.OPTIMAL_INACCURATE, Status.OPTIMAL_INACCURATE),
        (cp.USER_LIMIT, Status.OPTIMAL_INACCURATE),
        (cp.INFEASIBLE, Status.INFEASIBLE),
        (cp.INFEASIBLE_INACCURATE, Status.INFEASIBLE),
        (cp.UNBOUNDED, None),
        (cp.SOLVER_ERROR, None),
    ],
)
def test_map_status_groups_cvxpy_statuses(cvxpy_status, ours):
    assert map_status(cvxpy_status) is ours


def test_rebalance_falls_back_when_first_solver_cannot_solve():
    # OSQP cannot solve a second-order cone; Clarabel, the fallback, can.
    result = solver.rebalance(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=(TrackingError(1.0),),
        constraints=(MaxTrackingError(0.05),),
        options=SolveOptions(solver="OSQP", fallback=("CLARABEL",)),
    )
    assert result.status == "optimal"
    assert result.summary["solver"] == "CLARABEL"
    assert "OSQP" in result.message  # why the first solver did not answer
    assert "answered by CLARABEL" in result.summary["message"]


def test_a_failing_direct_path_is_said_in_the_message_and_logged(monkeypatch, caplog):
    # was: a TypeError there gave status optimal, solver SCS, empty message
    def broken(*args, **kwargs):
        raise TypeError("injected")

    monkeypatch.setattr(solver.program.solve.clarabel, "DefaultSolver", broken)
    result = solver.rebalance(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=(TrackingError(1.0), LinearCost()),
        constraints=(MinCash(0.0),),
    )
    assert result.status == "optimal"
    assert result.summary["solver"] == "SCS"
    message = result.summary["message"]
    assert "CLARABEL raised TypeError: injected (direct path)" in message
    assert "answered by SCS" in message
    assert "CLARABEL raised TypeError: injected" in caplog.text
    assert "answered by SCS" in caplog.text


def test_rebalance_reports_failed_when_every_solver_fails():
    result = solver.rebalance(
        ACCOUNT,
        targets=TARGETS,
        market=MARKET,
        objective=(TrackingError(1.0),),
        constraints=(MaxTrackingError(0.05),),
        options=SolveOptions(solver="OSQP", fallback=()),
    )
    assert result.status == "failed"
    assert "OSQP" in result.message
    assert result.trades.empty


def test_time_limit_gives_a_verified_answer_or_failed():
    market = synthetic_market(200, n_factors=10, seed=2)
    targets = synthetic_targets(market, seed=2)
    acct = synthetic_account(market, targets, seed=2)
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        constraints=[MinCash(0.01), MaxTurnover(0.1)],
        options=SolveOptions(time_limit_seconds=1e-4, fallback=()),
    )
    assert result.status in (Status.OPTIMAL_INACCURATE, Status.FAILED)
    if result.status is Status.FAILED:
        assert "rejected" in result.message or "verification" in result.message
    else:
        assert not (~result.violations["is_soft"].astype(bool)).any()
    assert result.summary["status"] == str(result.status)
