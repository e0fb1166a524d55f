"""Solve a chunk of jobs in a worker: single accounts and households.

Every error becomes the status of the accounts it concerns: one account, or
every account of a household, never the chunk.
"""

from __future__ import annotations

import time
import warnings

import pandas as pd

from models import MinCash, Restrictions
from models.errors import InputError, RebalanceError, RiskScaleWarning
from models.market import Market
from models.terms import Constraint, TradeRule
from solver.batch.jobs import (
    AccountJob,
    HouseholdJob,
    job_account,
    solve_job,
    unsolved,
)
from solver.household import rebalance_household
from solver.result import SUMMARY_FIELDS, Status, empty_trades

Job = AccountJob | HouseholdJob


def solve_chunk(market: Market, jobs: list[Job]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Solve jobs one after another; return their summary and trades rows."""
    summaries: list[pd.Series] = []
    trades = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskScaleWarning)  # logged once at load
        for job in jobs:
            if isinstance(job, HouseholdJob):
                rows, orders = solve_household_job(market, job)
                summaries.extend(rows)
            else:
                row, orders = solve_job(market, job)
                summaries.append(row)
            if len(orders):
                trades.append(orders)
    frame = pd.DataFrame(summaries, columns=list(SUMMARY_FIELDS))
    return frame, pd.concat(trades, ignore_index=True) if trades else empty_trades()


def solve_household_job(
    market: Market, job: HouseholdJob
) -> tuple[list[pd.Series], pd.DataFrame]:
    """Solve a household; a bad account or failure reports all its accounts.

    Run-wide settings are those of the household's first account row (its
    overrides included); ``min_cash`` and the tax rates are each account's
    own. Triggers do not gate households: they are always solved.
    """
    start = time.perf_counter()
    first = job.members[0].config
    try:
        accounts = [job_account(m) for m in job.members]
        own = {m.account_id: _own_constraints(m) for m in job.members}
        shared = [c for c in first.constraints() if not isinstance(c, MinCash)]
        result = rebalance_household(
            job.household_id,
            accounts,
            targets=job.members[0].targets,
            market=market,
            objective=first.objective(),
            constraints=shared,
            account_constraints=own,
            options=first.options(),
        )
    except InputError as exc:
        status, message = Status.INVALID_INPUT, f"household {job.household_id}: {exc}"
    except RebalanceError as exc:
        status = Status.FAILED
        message = f"household {job.household_id}: {type(exc).__name__}: {exc}"
    except Exception as exc:  # an unforeseen error in one household never stops a batch
        status = Status.FAILED
        message = (
            f"internal error in household {job.household_id}: "
            f"{type(exc).__name__}: {exc}"
        )
    else:
        rows = [r.summary for r in result.accounts.values()]
        return rows, result.trades
    seconds = time.perf_counter() - start
    hid = job.household_id
    rows = [
        unsolved(m.account_id, status, message, seconds, market.as_of, hid)
        for m in job.members
    ]
    return rows, empty_trades()


def _own_constraints(job: AccountJob) -> list[Constraint | TradeRule]:
    """Return an account's own cash floor and restrictions."""
    out: list[Constraint | TradeRule] = []
    if job.config.min_cash is not None:
        out.append(MinCash(job.config.min_cash))
    if job.restrictions is not None:
        out.append(Restrictions(job.restrictions))
    return out
