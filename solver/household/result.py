"""A household's result, and its checks and summary once every account is rounded."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models import NoBuyAndSell
from models.account import Account
from models.household import Joint
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, Term
from solver.errors import VerificationError
from solver.orders.checks import VIOLATION_COLUMNS
from solver.orders.trades import outcome_from_trades
from solver.program.report import OrderOutcomes, summary
from solver.program.sides import NOISE, by_group
from solver.program.solve import Solution
from solver.result import RebalanceResult, Status, empty_trades

ROUNDING_TOLERANCE = 1e-7  # fraction of the household's value
HOUSEHOLD_FIELDS = (  # the household's figures copied into its accounts' rows
    "tracking_error_before",
    "tracking_error_after",
    "objective_bound",
    "objective_continuous",
    "objective_discrete",
)


@dataclass(frozen=True)
class HouseholdResult:
    """The answer for one household.

    Attributes
    ----------
    household_id : str
        The household.
    status : Status
        The household's status: ``infeasible`` or ``failed`` for all its
        accounts when the joint program has no answer.
    message : str
        What the caller should know, for the household and each account.
    accounts : dict of str to RebalanceResult
        Each account's result: its own trades, cash, tax and turnover. Its
        ``summary`` tracking errors and objectives are the household's.
    summary : pd.Series
        The docs/DATA.md ``summary`` fields for the household as a whole.
    """

    household_id: str
    status: Status
    message: str
    accounts: dict[str, RebalanceResult]
    summary: pd.Series

    @property
    def trades(self) -> pd.DataFrame:
        """Every account's orders (docs/DATA.md ``trades``)."""
        tables = [r.trades for r in self.accounts.values() if len(r.trades)]
        return pd.concat(tables, ignore_index=True) if tables else empty_trades()

    @property
    def account_summary(self) -> pd.DataFrame:
        """One docs/DATA.md ``summary`` row per account."""
        return pd.DataFrame([r.summary for r in self.accounts.values()]).reset_index(
            drop=True
        )


def household_result(
    joint: Joint,
    accounts: Sequence[Account],
    optimum: Solution,
    objective: Sequence[Term],
    joint_plain: Sequence[Constraint],
    results: list[RebalanceResult],
    start: float,
) -> HouseholdResult:
    """Check the household's orders together and summarise them."""
    s = joint.snapshot
    buys, sales = [], []
    for k, result in enumerate(results):
        own = outcome_from_trades(joint.accounts[k], result.trades)
        buys.append(own.buys * joint.scale[k])
        sales.append(own.lot_sales * joint.scale[k])
    after = Outcome(s, np.concatenate(buys), np.concatenate(sales))
    both = (by_group(s, after.buys) > NOISE) & (by_group(s, after.sells) > NOISE)
    if both.any() and any(isinstance(c, NoBuyAndSell) for c in joint_plain):
        asset = joint.accounts[0].universe[int(s.group[np.argmax(both)])]  # type: ignore[index]
        raise VerificationError(
            f"household {s.account_id!r} buys and sells {asset!r} across accounts",
            violations=_violation(NoBuyAndSell.name, float(after.buys[both].sum())),
        )
    notes = [optimum.note] if optimum.note else []
    for c in joint_plain:
        excess = c.violation(after)
        if excess > ROUNDING_TOLERANCE:
            if not c.is_soft:
                broken = f"orders break {c.name} by {excess:.3g}"
                raise VerificationError(
                    f"household {s.account_id!r}: {broken}",
                    violations=_violation(c.name, excess),
                )
            notes.append(f"rounding exceeds {c.name} by {excess:.3g}")
    shared_notes = [f"household {s.account_id}: {note}" for note in notes]
    notes += [f"{r.account_id}: {r.message}" for r in results if r.message]
    status = _worst([optimum.status, *(r.status for r in results)])
    message = "; ".join(notes)
    bound = optimum.bound if optimum.bound is not None else np.nan
    household = summary(
        s,
        status=status,
        message=message,
        orders=OrderOutcomes(optimum.answer, after, bound),
        objective=objective,
        seconds=time.perf_counter() - start,
        solver=optimum.solver,
    )
    household["turnover"] = joint.turnover(after)  # each account's own flow
    shared = household[list(HOUSEHOLD_FIELDS)].copy()
    shared["household_id"] = s.account_id
    household["household_id"] = s.account_id
    accounts_out: dict[str, RebalanceResult] = {}
    for r in results:  # each account's message also says the household's
        told = "; ".join(filter(None, [*shared_notes, r.message]))
        row = _with(r.summary, shared)
        row["message"] = told
        trades = r.trades.assign(household_id=s.account_id)
        accounts_out[r.account_id] = replace(
            r, message=told, summary=row, trades=trades
        )
    return HouseholdResult(s.account_id, status, message, accounts_out, household)


def _violation(name: str, amount: float) -> pd.DataFrame:
    """Return a one-row violations table (``solver.orders.checks`` columns)."""
    row = (name, amount, False, "household")
    return pd.DataFrame([row], columns=list(VIOLATION_COLUMNS))


def _with(row: pd.Series, shared: pd.Series) -> pd.Series:
    """Return an account's summary row with the household's figures in it."""
    out = row.copy()
    out[shared.index] = shared
    return out


def _worst(statuses: Sequence[Status]) -> Status:
    """Return the status that says the most: failed, relaxed, inaccurate, optimal."""
    order = [
        Status.FAILED,
        Status.INFEASIBLE,
        Status.RELAXED,
        Status.OPTIMAL_INACCURATE,
    ]
    for status in order:
        if status in statuses:
            return status
    return Status.OPTIMAL


def unsolved(
    joint: Joint,
    accounts: Sequence[Account],
    objective: Sequence[Term],
    status: Status,
    message: str,
    start: float,
) -> HouseholdResult:
    """Return the result of a household whose program has no answer."""
    seconds = time.perf_counter() - start

    def row(snapshot: Snapshot) -> pd.Series:
        return summary(
            snapshot,
            status=status,
            message=message,
            orders=None,
            objective=objective,
            seconds=seconds,
            solver="",
        )

    rows = {
        a.account_id: RebalanceResult(
            account_id=a.account_id,
            status=status,
            message=message,
            trades=empty_trades(),
            summary=row(alone),
        )
        for a, alone in zip(accounts, joint.accounts, strict=True)
    }
    household = row(joint.snapshot)
    hid = joint.snapshot.account_id
    household["household_id"] = hid
    for result in rows.values():
        result.summary["household_id"] = hid
    return HouseholdResult(hid, status, message, rows, household)
