"""Summaries of a solved account: docs/DATA.md summary, weights, terms, constraints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd

from models.snapshot import CASH, Snapshot
from models.terms import Outcome, Term
from solver.program.formulation import OBJECTIVE_SCALE, Program
from solver.result import SUMMARY_FIELDS, Status


def objective_value(objective: Sequence[Term], o: Outcome) -> float:
    """Return the weighted objective at an outcome (numpy evaluation)."""
    return float(sum(t.weight * t.evaluate(o) for t in objective))


def term_values(objective: Sequence[Term], o: Outcome) -> pd.Series:
    """Return each term's unweighted value, indexed by term name."""
    return pd.Series(
        {t.name: t.evaluate(o) for t in objective}, dtype=float, name="value"
    )


@dataclass(frozen=True)
class OrderOutcomes:
    """The continuous optimum, the outcome of the orders, and the lower bound.

    ``bound`` is the optimum with both sides of every trade allowed: no
    answer can beat it (``continuous`` equals it without ``NoBuyAndSell``).
    """

    continuous: Outcome
    after: Outcome
    bound: float = np.nan


def summary(
    s: Snapshot,
    *,
    status: Status,
    message: str,
    orders: OrderOutcomes | None,
    objective: Sequence[Term],
    seconds: float,
    solver: str,
) -> pd.Series:
    """Return the docs/DATA.md ``summary`` row of one account."""
    row: dict[str, object] = dict.fromkeys(SUMMARY_FIELDS, np.nan)
    row.update(
        account_id=s.account_id,
        status=str(status),
        message=message,
        tracking_error_before=np.sqrt(s.risk.variance(s.current - s.target)),
        solve_seconds=seconds,
        solver=solver,
        as_of=s.as_of.date().isoformat(),
    )
    if orders is not None:
        after = orders.after
        gain = after.realized_gain * s.value
        row.update(
            tracking_error_after=np.sqrt(s.risk.variance(after.active)),
            turnover=after.turnover,
            est_cost=after.cost * s.value,
            est_tax=float(s.lot_tax_rate @ gain),
            realized_gain_short=float(gain[~s.lot_long_term].sum()),
            realized_gain_long=float(gain[s.lot_long_term].sum()),
            cash_after=after.cash * s.value,
            objective_bound=orders.bound,
            objective_continuous=objective_value(objective, orders.continuous),
            objective_discrete=objective_value(objective, after),
        )
    return pd.Series(row, name=s.account_id).loc[list(SUMMARY_FIELDS)]


def weights_table(s: Snapshot, continuous: Outcome, after: Outcome) -> pd.DataFrame:
    """Return current, target, continuous and final weights, with a CASH row."""
    table = pd.DataFrame(
        {
            "current": s.current,
            "target": s.target,
            "continuous": continuous.weights,
            "after": after.weights,
        },
        index=s.universe,
    )
    table.loc[CASH] = [s.cash, s.target_cash, continuous.cash, after.cash]
    table.index.name = "asset"
    return table


def constraints_table(program: Program) -> pd.DataFrame:
    """Return the tightest slack and largest dual of each named constraint.

    Duals are in objective units per unit of the constraint.
    """
    rows = {
        name: {
            "slack": min((_slack(c) for c in group), default=np.nan),
            "dual": dual(program, name),
        }
        for name, group in program.constraints.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["slack", "dual"])
    table.index.name = "constraint"
    return table


def dual(program: Program, name: str) -> float:
    """Return the largest dual of a named constraint, in objective units."""
    duals = [
        np.max(np.abs(c.dual_value), initial=0.0)
        for c in program.constraints.get(name, [])
        if c.dual_value is not None
    ]
    return max(duals, default=np.nan) / OBJECTIVE_SCALE


def _slack(constraint: cp.Constraint) -> float:
    """Return how far an inequality is from binding (0 for equalities)."""
    if isinstance(constraint, cp.constraints.Inequality):
        value = constraint.expr.value
        return (
            np.nan
            if value is None
            else float(np.min(-np.asarray(value), initial=np.inf))
        )
    return 0.0
