"""Summaries of a solved account: docs/DATA.md summary, weights, terms, constraints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd

from models.snapshot import CASH, Snapshot
from models.terms import Constraint, Outcome, Term
from solver.program.formulation import CASH_NON_NEGATIVE, OBJECTIVE_SCALE, Program
from solver.result import SUMMARY_FIELDS, Status


def objective_value(objective: Sequence[Term], o: Outcome) -> float:
    """Return the weighted objective at an outcome (numpy evaluation)."""
    return float(sum(t.weight * t.evaluate(o) for t in objective))


TERM_COLUMNS = ("value", "unit", "weight", "objective", "money")
CONSTRAINT_COLUMNS = ("slack", "unit", "dual")
SUMMARY_INDEX = pd.Index(SUMMARY_FIELDS)  # built once: a summary per account


def term_table(objective: Sequence[Term], o: Outcome) -> pd.DataFrame:
    """Return each term's value, unit, weight and share of the objective.

    ``value`` is unweighted, in ``unit`` (the tracking error's is the annual
    variance); ``objective`` is weight x value, in fractions of V, and
    ``money`` the same in currency: what the objective charges for it.
    """
    value = np.array([t.evaluate(o) for t in objective], dtype=float)
    weight = np.array([t.weight for t in objective], dtype=float)
    table = pd.DataFrame(
        {
            "value": value,
            "unit": [getattr(t, "unit", "") for t in objective],
            "weight": weight,
            "objective": weight * value,
            "money": weight * value * o.snapshot.value,
        },
        index=pd.Index([t.name for t in objective], name="term"),
    )
    return table


def constraint_tables(
    report: pd.DataFrame, constraints: Sequence[Constraint]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a solver's slack and dual report into the user's rows and the rest.

    The user's named constraints and ``cash_non_negative`` get their slack's
    unit; ``dual`` is in fractions of V per unit of slack (how much the
    objective would fall if the limit moved by one unit). The rest are the
    program's internal rows (lot quantities, asset sales, active weights).
    """
    report = report.reindex(columns=["slack", "dual"])  # none: no rows
    units = {c.name: getattr(c, "unit", "") for c in constraints}
    units[CASH_NON_NEGATIVE] = "fraction of V"
    mine = report.index.isin(list(units))
    table = report[mine].assign(unit=[units[n] for n in report.index[mine]])
    return table.loc[:, list(CONSTRAINT_COLUMNS)], report[~mine]


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
        cash_flow=(s.deposit - s.withdrawal) * s.value,
        household_id="",  # text in every output format; a household sets it
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
    # the values are in SUMMARY_FIELDS order; a field outside it fails the length
    return pd.Series(list(row.values()), index=SUMMARY_INDEX, name=s.account_id)


def weights_table(
    s: Snapshot, continuous: Outcome | None, after: Outcome
) -> pd.DataFrame:
    """Return current, target, continuous and final weights, with a CASH row.

    Without a continuous answer (an unsolved account) that column is NaN.
    """
    solved = np.full(s.n_assets, np.nan) if continuous is None else continuous.weights
    table = pd.DataFrame(
        {
            "current": s.current,
            "target": s.target,
            "continuous": solved,
            "after": after.weights,
        },
        index=s.universe,
    )
    solved_cash = np.nan if continuous is None else continuous.cash
    table.loc[CASH] = [s.cash, s.target_cash, solved_cash, after.cash]
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
