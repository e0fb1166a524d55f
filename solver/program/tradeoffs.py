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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, cast

import numpy as np
import pandas as pd

from models.account import Account
from models.constraints import MaxTrackingError
from models.errors import InputError
from models.market import Market
from models.snapshot import Snapshot, Targets, build_snapshot
from models.terms import Constraint, Outcome, Term, TradeMask, TradeRule
from solver.errors import NoMatrixFormError, SolverFailedError
from solver.program.continuous import (
    check_objective,
    rules_mask,
    solve_once,
    split_constraints,
)
from solver.program.direct import Matrices, build_matrices
from solver.program.report import objective_value
from solver.program.sides import NOISE, one_side_each
from solver.program.solve import Solution
from solver.result import SolveOptions, Status

logger = logging.getLogger(__name__)
CAP = MaxTrackingError.name


@dataclass(frozen=True)
class SweepResult:
    """One row per point, and the lots each point sells.

    ``table``: the point's term weights (``tax_cost_weight``...) and
    ``max_tracking_error`` cap as given, then status, tracking_error_after
    (annual volatility, ex ante), turnover (one-way, fraction of V), cost
    and tax (currency), realized_gain (currency), objective (fraction of V),
    solves and seconds. ``lot_sales``: point, lot_id, asset,
    sold (fraction of the lot), value (currency), gain_per_dollar,
    long_term.
    """

    table: pd.DataFrame
    lot_sales: pd.DataFrame


def sweep(
    account: Account,
    *,
    targets: Targets,
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
    snapshot = build_snapshot(account, targets, market, buy_any=options.buy_any)
    objective = check_objective(objective, snapshot.account_id)
    plain, rules = split_constraints(constraints, snapshot.account_id)
    _check(points, objective, plain, snapshot.account_id)
    # no cap: twice the largest possible tracking error, |a|_1 <= 2 times the
    # largest asset volatility (a huge number would upset the solver's scaling)
    risk = snapshot.risk
    uncapped = 4.0 * float(risk.volatility().max())
    if any(CAP in p for p in points) and not any(c.name == CAP for c in plain):
        plain = [*plain, MaxTrackingError(uncapped)]
    # every term at weight 1 fixes the program's structure (impact epigraphs)
    unit = [replace(cast(Any, t), weight=1.0) for t in objective]
    base = {t.name: t.weight for t in objective}
    cap = next((c.limit for c in plain if isinstance(c, MaxTrackingError)), None)
    mask = rules_mask(snapshot, rules)
    cache: dict[bytes, Matrices] = {}

    def program(m: TradeMask) -> Matrices:
        key = np.packbits(np.r_[m.can_buy, m.can_sell, m.must_sell]).tobytes()
        if key not in cache and cache:  # a side solve: drop variables
            cache[key] = next(iter(cache.values())).restricted(m)
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
        terms = [replace(cast(Any, t), weight=weights[t.name]) for t in objective]
        capped = plain
        if limit is not None:
            capped = [MaxTrackingError(limit) if c.name == CAP else c for c in plain]
        solve = partial(
            _solve_point,
            snapshot=snapshot,
            program=program,
            weights=weights,
            limit=limit,
            objective=terms,
            constraints=capped,
            options=options,
        )
        try:
            first = solve(mask)
            solution = (
                None
                if first is None
                else one_side_each(
                    snapshot,
                    plain,
                    first,
                    solve,
                    partial(objective_value, terms),
                    options.sides,
                )
            )
        except SolverFailedError as exc:
            rows.append(_failed(point, str(exc), start))
            continue
        if solution is not None and solution.note:
            logger.warning("sweep point %d: %s", k, solution.note)
        rows.append(_row(point, solution, objective, weights, start))
        if solution is not None:
            sales.append(_lot_sales(k, solution.answer))
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


def _solve_point(
    mask: TradeMask,
    *,
    snapshot: Snapshot,
    program: Callable[[TradeMask], Matrices],
    weights: Mapping[str, float],
    limit: float | None,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    options: SolveOptions,
) -> Solution | None:
    """Solve one point: the cached program re-weighted and capped, with fallback."""
    matrices = program(mask).reweighted(weights)
    if limit is not None:
        matrices = matrices.with_tracking_error_cap(limit)
    return solve_once(
        snapshot, mask, objective, constraints, options, matrices=matrices
    )


def _row(
    point: Mapping[str, float],
    solution: Solution | None,
    objective: Sequence[Term],
    weights: Mapping[str, float],
    start: float,
) -> dict[str, object]:
    """Return one point's row of the sweep table (``None``: infeasible)."""
    row = _point_columns(point)
    if solution is None:
        row.update(status=str(Status.INFEASIBLE), solves=1, solver="", message="")
    else:
        o = solution.answer
        s = o.snapshot
        gain = o.realized_gain * s.value
        row.update(
            status=str(solution.status),
            solves=solution.solves,
            solver=solution.solver,
            message=solution.note,
            tracking_error_after=float(np.sqrt(s.risk.variance(o.active))),
            turnover=o.turnover,
            cost=o.cost * s.value,
            tax=float(s.lot_tax_rate @ gain),
            realized_gain=float(gain.sum()),
            objective=sum(weights[t.name] * t.evaluate(o) for t in objective),
            objective_bound=solution.bound,
        )
    row["seconds"] = time.perf_counter() - start
    return row


def _point_columns(point: Mapping[str, float]) -> dict[str, object]:
    """Return a point's settings as columns: ``<term>_weight`` and the cap."""
    return {(n if n == CAP else f"{n}_weight"): v for n, v in point.items()}


def _failed(point: Mapping[str, float], reason: str, start: float) -> dict[str, object]:
    """Return the row of a point no solver answered."""
    row = _point_columns(point)
    row.update(status=str(Status.FAILED), solves=1, solver="", message=reason)
    row["seconds"] = time.perf_counter() - start
    return row


def _lot_sales(point: int, o: Outcome) -> pd.DataFrame:
    """Return the lots one point sells, with their gain per dollar and term."""
    s = o.snapshot
    sold = np.flatnonzero(o.lot_sales > NOISE)
    return pd.DataFrame(
        {
            "point": point,
            "lot_id": s.lot_ids[sold],
            "asset": s.universe.to_numpy()[s.lot_asset[sold]],
            "sold": o.lot_sales[sold] / s.lot_capacity[sold],
            "value": o.lot_sales[sold] * s.value,
            "gain_per_dollar": s.lot_gain_fraction[sold],
            "long_term": s.lot_long_term[sold],
        }
    )
