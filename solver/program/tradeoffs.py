"""Sweep term weights and the tracking-error cap over one account.

A trade-off study re-solves one account many times with different weights.
The program's constraint matrix does not depend on the weights: they enter
only the quadratic diagonal and the linear cost, and a tracking-error cap
only one entry of ``b``. So the matrices are built once per set of allowed
trades, kept with each term's unweighted part, and each point only re-weights
them before Clarabel solves. Under ``NoBuyAndSell`` a point whose answer both
buys and sells an asset is re-solved with fixed sides; programs for a given
set of sides are cached too. Answers are continuous (no rounding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd

from models.account import Account
from models.constraints import MaxTrackingError, NoBuyAndSell
from models.errors import InputError
from models.market import Market
from models.snapshot import Snapshot, build_snapshot
from models.terms import Constraint, Outcome, Term, TradeMask, TradeRule
from solver.errors import NoMatrixFormError, SolverFailedError
from solver.program.continuous import (
    SIDE_TOLERANCE,
    combined_mask,
    fix_sides,
    solve_once,
    split_constraints,
)
from solver.program.direct import Matrices, build_matrices
from solver.program.solve import Solution, solve_matrices
from solver.result import SolveOptions, Status

logger = logging.getLogger(__name__)
CAP = MaxTrackingError.name


@dataclass(frozen=True)
class SweepResult:
    """One row per point, and the lots each point sells.

    ``table``: the point's weights and cap, then status,
    tracking_error_after (ex-ante, units of the risk model), turnover (one-way,
    fraction of V), cost and tax (currency), realized_gain (currency),
    objective, solves and seconds. ``lot_sales``: point, lot_id, asset,
    sold (fraction of the lot), value (currency), gain_per_dollar,
    long_term.
    """

    table: pd.DataFrame
    lot_sales: pd.DataFrame


def sweep(
    account: Account,
    *,
    targets: pd.Series,
    market: Market,
    objective: Sequence[Term],
    constraints: Sequence[Constraint | TradeRule] = (),
    points: Sequence[Mapping[str, float]],
    options: SolveOptions | None = None,
) -> SweepResult:
    """Solve the account at every point of a sweep, reusing its matrices.

    Parameters
    ----------
    account, targets, market, objective, constraints, options
        As for :func:`solver.rebalance`; the objective's weights are the
        defaults of every point.
    points : sequence of mappings
        Each maps term names (``"tracking_error"``, ``"linear_cost"``,
        ``"tax_cost"``, ``"market_impact"``) to weights and optionally
        ``"max_tracking_error"`` to a cap (``inf``: no cap).
    """
    options = options or SolveOptions()
    snapshot = build_snapshot(account, targets, market)
    plain, rules = split_constraints(constraints, snapshot.account_id)
    _check(points, objective, plain, snapshot.account_id)
    # no cap: twice the largest possible tracking error, |a|_1 <= 2 times the
    # largest asset volatility (a huge number would upset the solver's scaling)
    risk = snapshot.risk
    uncapped = 4.0 * float(np.sqrt(((risk.G**2).sum(axis=0) + risk.d).max()))
    if any(CAP in p for p in points) and not any(c.name == CAP for c in plain):
        plain = [*plain, MaxTrackingError(uncapped)]
    # every term at weight 1 fixes the program's structure (impact epigraphs)
    unit = [replace(cast(Any, t), weight=1.0) for t in objective]
    base = {t.name: t.weight for t in objective}
    cap = next((c.limit for c in plain if isinstance(c, MaxTrackingError)), None)
    side_rule = any(isinstance(c, NoBuyAndSell) for c in plain)
    mask = combined_mask(snapshot, rules)
    cache: dict[bytes, Matrices] = {}

    def program(m: TradeMask) -> Matrices:
        key = np.packbits(np.r_[m.can_buy, m.can_sell, m.must_sell]).tobytes()
        if key not in cache:
            try:
                cache[key] = build_matrices(snapshot, m, unit, plain)
            except NoMatrixFormError as exc:
                raise InputError(
                    f"sweeps need every term and constraint in matrix form: {exc}",
                    account_id=snapshot.account_id,
                    field="constraints",
                ) from exc
        return cache[key]

    rows, sales = [], []
    for k, point in enumerate(points):
        start = time.perf_counter()
        weights = {**base, **{n: w for n, w in point.items() if n != CAP}}
        limit = point.get(CAP, cap)

        limit = None if limit is None else min(limit, uncapped)
        point_mask = mask
        solution = _solve(program(mask), weights, limit, options)
        solves = 1
        if solution.outcome is not None and side_rule and _conflict(solution.outcome):
            point_mask = mask & fix_sides(snapshot, solution.outcome)
            solution = _solve(program(point_mask), weights, limit, options)
            solves = 2
        status, outcome = solution.status, solution.outcome
        solver, message = options.solver, solution.note
        if status is Status.FAILED and options.fallback:  # as rebalance: next solver
            status, outcome, solver = _fallback(
                snapshot, point_mask, objective, plain, weights, limit, options
            )
            message += (
                f"; no answer from {solver} either"
                if status is Status.FAILED
                else f"; answered by {solver}"
            )
            logger.warning("sweep point %d: %s", k, message)
        row = _row(point, status, outcome, objective, weights, solves, start)
        rows.append({**row, "solver": solver, "message": message})
        if outcome is not None:
            sales.append(_lot_sales(k, outcome))
    table = pd.DataFrame(rows)
    lot_sales = pd.concat(sales, ignore_index=True) if sales else pd.DataFrame()
    return SweepResult(table, lot_sales)


def _check(
    points: Sequence[Mapping[str, float]],
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    account_id: str,
) -> None:
    """Reject unknown names and bad weights."""
    known = {t.name for t in objective} | {CAP}
    for point in points:
        for name, value in point.items():
            if name not in known:
                raise InputError(
                    f"unknown term or cap {name!r}; known: {sorted(known)}",
                    account_id=account_id,
                    field="points",
                )
            if not (value >= 0 and not np.isnan(value)):
                raise InputError(
                    f"{name} must be >= 0, got {value!r}",
                    account_id=account_id,
                    field="points",
                )


def _solve(
    program: Matrices,
    weights: Mapping[str, float],
    limit: float | None,
    options: SolveOptions,
) -> Solution:
    """Re-weight a built program, set its cap, and solve it."""
    matrices = program.reweighted(weights)
    if limit is not None:
        matrices = matrices.with_tracking_error_cap(limit)
    return solve_matrices(matrices, options)


def _fallback(
    snapshot: Snapshot,
    mask: TradeMask,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    weights: Mapping[str, float],
    limit: float | None,
    options: SolveOptions,
) -> tuple[Status, Outcome | None, str]:
    """Solve one point through cvxpy with the fallback solvers.

    Returns the status, the outcome and the solver that answered (or the
    fallback solvers tried, when none did).
    """
    terms = [replace(cast(Any, t), weight=weights[t.name]) for t in objective]
    if limit is not None:
        constraints = [
            MaxTrackingError(limit) if c.name == CAP else c for c in constraints
        ]
    first, *rest = options.fallback
    fallback = replace(options, formulation="cvxpy", solver=first, fallback=tuple(rest))
    try:
        optimum = solve_once(snapshot, mask, terms, constraints, fallback)
    except SolverFailedError:
        return Status.FAILED, None, ", ".join(options.fallback)
    if optimum is None:
        return Status.INFEASIBLE, None, first
    return optimum.status, optimum.outcome, optimum.solver


def _conflict(o: Outcome) -> bool:
    """Whether some asset is both bought and sold."""
    return bool(((o.buys > SIDE_TOLERANCE) & (o.sells > SIDE_TOLERANCE)).any())


def _row(
    point: Mapping[str, float],
    status: Status,
    outcome: Outcome | None,
    objective: Sequence[Term],
    weights: Mapping[str, float],
    solves: int,
    start: float,
) -> dict[str, object]:
    """Return one point's row of the sweep table."""
    row: dict[str, object] = dict(point)
    row.update(status=str(status), solves=solves)
    if outcome is not None:
        s = outcome.snapshot
        gain = outcome.realized_gain * s.value
        row.update(
            tracking_error_after=float(np.sqrt(s.risk.variance(outcome.active))),
            turnover=outcome.turnover,
            cost=outcome.cost * s.value,
            tax=float(s.lot_tax_rate @ gain),
            realized_gain=float(gain.sum()),
            objective=sum(weights[t.name] * t.evaluate(outcome) for t in objective),
        )
    row["seconds"] = time.perf_counter() - start
    return row


def _lot_sales(point: int, o: Outcome) -> pd.DataFrame:
    """Return the lots one point sells, with their gain per dollar and term."""
    s = o.snapshot
    sold = np.flatnonzero(o.lot_sales > SIDE_TOLERANCE)
    return pd.DataFrame(
        {
            "point": point,
            "lot_id": s.lots["lot_id"].to_numpy()[sold],
            "asset": s.universe.to_numpy()[s.lot_asset[sold]],
            "sold": o.lot_sales[sold] / s.lot_capacity[sold],
            "value": o.lot_sales[sold] * s.value,
            "gain_per_dollar": s.lot_gain_fraction[sold],
            "long_term": s.lot_long_term[sold],
        }
    )
