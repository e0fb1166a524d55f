"""Solve a built program (cvxpy or direct matrices): fallback and status mapping."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import clarabel
import cvxpy as cp
import numpy as np
import pandas as pd

from models.terms import Outcome
from solver.errors import SolverFailedError
from solver.program.direct import Matrices
from solver.program.formulation import OBJECTIVE_SCALE, Program
from solver.result import SolveOptions, Status

logger = logging.getLogger(__name__)
CLARABEL_STATUS = {
    clarabel.SolverStatus.Solved: Status.OPTIMAL,
    clarabel.SolverStatus.AlmostSolved: Status.OPTIMAL_INACCURATE,
    clarabel.SolverStatus.MaxIterations: Status.OPTIMAL_INACCURATE,
    clarabel.SolverStatus.MaxTime: Status.OPTIMAL_INACCURATE,
    clarabel.SolverStatus.PrimalInfeasible: Status.INFEASIBLE,
    clarabel.SolverStatus.AlmostPrimalInfeasible: Status.INFEASIBLE,
}
TIME_LIMIT_OPTION = {
    "CLARABEL": "time_limit",
    "HIGHS": "time_limit",
    "SCS": "time_limit_secs",
}


@dataclass(frozen=True)
class Solution:
    """Raw solver answer: status, stacked variable value and metadata.

    ``failures`` says why each solver tried before ``solver`` gave no
    usable answer (empty when the first one answered).
    """

    status: Status
    z: np.ndarray | None
    solver: str
    failures: tuple[str, ...] = ()


def map_status(cvxpy_status: str | None) -> Status | None:
    """Map a cvxpy status to ours; ``None`` means the solver failed."""
    if cvxpy_status == cp.OPTIMAL:
        return Status.OPTIMAL
    if cvxpy_status in (cp.OPTIMAL_INACCURATE, cp.USER_LIMIT):
        return Status.OPTIMAL_INACCURATE
    if cvxpy_status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return Status.INFEASIBLE
    return None


def solve_program(
    program: Program, options: SolveOptions, *, failed_before: tuple[str, ...] = ()
) -> Solution:
    """Solve with ``options.solver``, then each fallback until one answers.

    ``failed_before`` says why earlier attempts (the direct path) gave no
    answer; with the failures here, it is logged once a solver answers and
    kept in ``Solution.failures``.

    Raises
    ------
    SolverFailedError
        When every solver raised or returned no usable status.
    """
    problem = program.problem
    if problem is None:
        raise SolverFailedError("program was not built")
    failures = list(failed_before)
    for name in (options.solver, *options.fallback):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # inaccurate: we verify
                problem.solve(solver=name, **_solver_options(name, options))
        except (cp.error.SolverError, ValueError) as exc:
            failures.append(f"{name}: {exc}")
            continue
        status = map_status(problem.status)
        if status is None:
            failures.append(f"{name}: status {problem.status}")
            continue
        value = program.trades.value
        if status is not Status.INFEASIBLE and value is None:
            failures.append(f"{name}: no solution values")
            continue
        z = (
            None
            if value is None
            else np.clip(np.asarray(value, dtype=float), 0.0, None)
        )
        for failure in failures:
            logger.warning(
                "account_id=%r: %s; answered by %s",
                program.snapshot.account_id,
                failure,
                name,
            )
        return Solution(status, z, name, tuple(failures))
    raise SolverFailedError(
        f"account_id={program.snapshot.account_id!r}: every solver failed: "
        + "; ".join(failures)
    )


def _solver_options(name: str, options: SolveOptions) -> dict[str, Any]:
    """Return keyword options for ``problem.solve``."""
    out: dict[str, Any] = {}
    if options.time_limit_seconds is not None and name in TIME_LIMIT_OPTION:
        out[TIME_LIMIT_OPTION[name]] = options.time_limit_seconds
    return out


@dataclass(frozen=True)
class DirectSolution:
    """Clarabel's answer: status, outcome, and the per-constraint report.

    A ``None`` status means no usable answer; ``failure`` says why.
    """

    status: Status | None
    outcome: Outcome | None
    constraints: pd.DataFrame
    failure: str = ""


def solve_matrices(m: Matrices, options: SolveOptions) -> DirectSolution:
    """Solve with Clarabel; a ``None`` status means it gave no usable answer."""
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    if options.time_limit_seconds is not None:
        settings.time_limit = options.time_limit_seconds
    try:
        solution = clarabel.DefaultSolver(m.P, m.q, m.A, m.b, m.cones, settings).solve()
    except (ValueError, RuntimeError, TypeError) as exc:
        failure = f"CLARABEL raised {type(exc).__name__}: {exc}"
        return DirectSolution(None, None, pd.DataFrame(), failure)
    status = CLARABEL_STATUS.get(solution.status)
    v = np.asarray(solution.x, dtype=float)
    if status is None:
        failure = f"CLARABEL stopped with status {solution.status}"
        return DirectSolution(None, None, pd.DataFrame(), failure)
    if status is Status.INFEASIBLE:
        return DirectSolution(status, None, pd.DataFrame())
    if not np.isfinite(v).all():
        failure = "CLARABEL returned values that are not finite"
        return DirectSolution(None, None, pd.DataFrame(), failure)
    z = np.clip(v[: m.layout.size], 0.0, None)
    outcome = m.layout.outcome(m.snapshot, z)
    return DirectSolution(status, outcome, _report(m, solution))


def _report(m: Matrices, solution: Any) -> pd.DataFrame:
    """Return the tightest slack and largest dual of each named constraint."""
    s = np.asarray(solution.s, dtype=float)
    z = np.asarray(solution.z, dtype=float)
    slack = dict.fromkeys(m.names, np.nan)
    dual = dict.fromkeys(m.names, np.nan)
    for name, kind, start, stop in m.blocks:
        if not name:
            continue
        if kind == "le":
            gap = float(s[start:stop].min())
            block_dual = float(np.abs(z[start:stop]).max())
        elif kind == "soc":
            gap = float(s[start] - np.linalg.norm(s[start + 1 : stop]))
            block_dual = abs(float(z[start]))
        else:
            gap, block_dual = 0.0, float(np.abs(z[start:stop]).max())
        slack[name] = np.fmin(slack[name], gap)
        dual[name] = np.fmax(dual[name], block_dual / OBJECTIVE_SCALE)
    table = pd.DataFrame({"slack": slack, "dual": dual}, columns=["slack", "dual"])
    table.index.name = "constraint"
    return table
