"""Solve a built program (cvxpy or direct matrices): fallback and status mapping."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import clarabel
import cvxpy as cp
import numpy as np
import pandas as pd

from models.terms import Outcome, TradeMask
from solver.errors import SolverFailedError
from solver.program.direct import Matrices
from solver.program.formulation import OBJECTIVE_SCALE, Program
from solver.program.report import constraints_table
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

MAX_TRADE = 1e3  # fractions of V: no feasible trade comes near; numerics broke
OUT_OF_RANGE = "solver returned trades of over 1,000 times the account's value"


@dataclass(frozen=True)
class Solution:
    """What one solve of an account's program found, by either path.

    ``status`` is ``optimal``, ``optimal_inaccurate`` or ``relaxed`` with an
    ``outcome``; ``infeasible``; or ``failed``: no usable answer, and
    ``note`` says why. With an answer, ``note`` says why solvers tried
    before ``solver`` gave none (empty when the first one answered).
    """

    status: Status
    outcome: Outcome | None
    mask: TradeMask
    solver: str
    constraints: Callable[[], pd.DataFrame]  # slack and dual per named constraint
    note: str = ""
    solves: int = 1  # more when trade sides were chosen (``one_side_each``)
    bound: float | None = None  # objective with both sides allowed: a lower bound

    @property
    def answer(self) -> Outcome:
        """Return the outcome of a solution that has one.

        Raises
        ------
        SolverFailedError
            The status is ``infeasible`` or ``failed``: there is none.
        """
        if self.outcome is None:
            raise SolverFailedError(f"no answer: status {self.status}; {self.note}")
        return self.outcome


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
    said in ``Solution.note``.

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
        for failure in failures:
            logger.warning(
                "account_id=%r: %s; answered by %s",
                program.snapshot.account_id,
                failure,
                name,
            )
        note = "; ".join(failures) + f"; answered by {name}" if failures else ""
        report = partial(constraints_table, program)
        if value is None:
            return Solution(status, None, program.mask, name, report, note)
        z = np.clip(np.asarray(value, dtype=float), 0.0, None)
        if not z.max(initial=0.0) <= MAX_TRADE:  # NaN fails too
            failures.append(f"{name}: {OUT_OF_RANGE}")
            continue
        outcome = program.outcome(z)
        return Solution(status, outcome, program.mask, name, report, note)
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


def solve_matrices(m: Matrices, options: SolveOptions) -> Solution:
    """Solve with Clarabel; status ``failed`` when it gave no usable answer."""
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    if options.time_limit_seconds is not None:
        settings.time_limit = options.time_limit_seconds
    try:
        solution = clarabel.DefaultSolver(m.P, m.q, m.A, m.b, m.cones, settings).solve()
    except (ValueError, RuntimeError, TypeError) as exc:
        return _direct(m, Status.FAILED, f"CLARABEL raised {type(exc).__name__}: {exc}")
    status = CLARABEL_STATUS.get(solution.status)
    v = np.asarray(solution.x, dtype=float)
    if status is None:
        return _direct(
            m, Status.FAILED, f"CLARABEL stopped with status {solution.status}"
        )
    if status is Status.INFEASIBLE:
        return _direct(m, status)
    if not np.isfinite(v).all():
        return _direct(m, Status.FAILED, "CLARABEL returned values that are not finite")
    if np.abs(v[: m.layout.size]).max(initial=0.0) > MAX_TRADE:
        return _direct(m, Status.FAILED, OUT_OF_RANGE)
    s, dual = np.asarray(solution.s, dtype=float), np.asarray(solution.z, dtype=float)
    z = np.clip(v[: m.layout.size], 0.0, None)
    outcome = m.layout.outcome(m.snapshot, z)
    return Solution(status, outcome, m.mask, "CLARABEL", partial(_report, m, s, dual))


def _direct(m: Matrices, status: Status, note: str = "") -> Solution:
    """Return Clarabel's answer without an outcome (infeasible or failed)."""
    return Solution(status, None, m.mask, "CLARABEL", pd.DataFrame, note)


def _report(m: Matrices, s: np.ndarray, z: np.ndarray) -> pd.DataFrame:
    """Return the tightest slack and largest dual of each named constraint.

    ``s`` and ``z`` are Clarabel's slacks and duals; built only when asked.
    """
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
