"""Solve a built program: solver fallback and status mapping."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from solver.errors import SolverFailedError
from solver.formulation import Program
from solver.result import SolveOptions, Status

TIME_LIMIT_OPTION = {
    "CLARABEL": "time_limit",
    "HIGHS": "time_limit",
    "SCS": "time_limit_secs",
}


@dataclass(frozen=True)
class Solution:
    """Raw solver answer: status, stacked variable value and metadata."""

    status: Status
    z: np.ndarray | None
    solver: str


def map_status(cvxpy_status: str | None) -> Status | None:
    """Map a cvxpy status to ours; ``None`` means the solver failed."""
    if cvxpy_status == cp.OPTIMAL:
        return Status.OPTIMAL
    if cvxpy_status in (cp.OPTIMAL_INACCURATE, cp.USER_LIMIT):
        return Status.OPTIMAL_INACCURATE
    if cvxpy_status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return Status.INFEASIBLE
    return None


def solve_program(program: Program, options: SolveOptions) -> Solution:
    """Solve with ``options.solver``, then each fallback until one answers.

    Raises
    ------
    SolverFailedError
        When every solver raised or returned no usable status.
    """
    problem = program.problem
    if problem is None:
        raise SolverFailedError("program was not built")
    failures = []
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
        return Solution(status, z, name)
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
