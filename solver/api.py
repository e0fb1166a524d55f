"""The public entry point: rebalance one account."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd

from models.account import Account
from models.market import Market
from models.snapshot import Snapshot, Targets, build_snapshot
from models.terms import Constraint, Outcome, Term, TradeRule
from solver.errors import InfeasibleError, SolverFailedError, VerificationError
from solver.orders.checks import verify
from solver.orders.discrete import discretize
from solver.orders.ladders import build_ladders
from solver.orders.trades import clean, continuous_shares, trades_table
from solver.program.continuous import (
    check_objective,
    optimize,
    split_constraints,
)
from solver.program.report import (
    OrderOutcomes,
    constraint_tables,
    summary,
    term_table,
    weights_table,
)
from solver.program.sides import NOISE
from solver.program.solve import Solution
from solver.result import (
    Details,
    RebalanceResult,
    SolveOptions,
    Status,
    empty_trades,
    result_message,
)
from solver.triggers import Drift, Trigger, solved_whatever_triggers


def rebalance(
    account: Account,
    *,
    targets: Targets,
    market: Market,
    objective: Sequence[Term],
    constraints: Sequence[Constraint | TradeRule] = (),
    options: SolveOptions | None = None,
    trigger: Trigger | None = None,
    last_rebalance: pd.Timestamp | None = None,
) -> RebalanceResult:
    """Rebalance one account towards its targets.

    Parameters
    ----------
    account : Account
        Cash, tax lots, recent trades and tax rates.
    targets : pd.Series, dict or pd.DataFrame
        Target weights by asset (``CASH`` allowed), summing to 1; a
        DataFrame has columns ``asset`` and ``weight``.
    market : Market
        Prices, trading parameters, risk model and the ``as_of`` date.
    objective : sequence of Term
        Weighted terms, e.g. ``(TrackingError(100), LinearCost(), TaxCost())``.
    constraints : sequence of Constraint or TradeRule
        Named constraints (``MaxTurnover(0.1)``, ``MinCash(0.01)``...) and
        trade rules (``Restrictions(...)``, ``WashSaleRule()``).
    options : SolveOptions or None
        Solver, fallbacks and time limit.
    trigger : Trigger or None
        When given, trade only if it fires (``solver.triggers``); otherwise
        the result is ``no_trade`` and its message says why. An account
        with a cash flow always trades.
    last_rebalance : pd.Timestamp or None
        Date of the account's last rebalance, for calendar triggers.

    Returns
    -------
    RebalanceResult
        ``optimal`` or ``optimal_inaccurate`` with verified trades;
        ``no_trade`` when the trigger did not fire;
        ``infeasible`` naming the conflicting constraints; ``failed`` when
        every solver failed.

    Raises
    ------
    InputError
        Bad input, naming the account, asset, lot and field.
    VerificationError
        The solution broke a hard constraint (never returned silently).
    """
    start = time.perf_counter()
    options = options or SolveOptions()
    snapshot = build_snapshot(account, targets, market, buy_any=options.buy_any)
    objective = check_objective(objective, snapshot.account_id)
    plain, rules = split_constraints(constraints, snapshot.account_id)
    if trigger is not None and not solved_whatever_triggers(None, account.cash_flow):
        firing = trigger.check(Drift.of(snapshot, last_rebalance))
        if not firing.fired:
            return _no_trade(snapshot, firing.reason, objective, start)
    return _solve(
        snapshot,
        objective,
        (plain, rules),
        options,
        fractional=account.fractional_shares,
        start=start,
    )


def solve_snapshot(
    snapshot: Snapshot,
    objective: Sequence[Term],
    constraints: Sequence[Constraint | TradeRule],
    options: SolveOptions,
    *,
    fractional: bool,
    start: float | None = None,
) -> RebalanceResult:
    """Solve an account already checked into a snapshot, as :func:`rebalance` does.

    For callers that keep an account's data clean themselves (the
    backtest's ledger); ``fractional`` is ``Account.fractional_shares``,
    ``start`` when the call began (the summary's seconds; default now).
    """
    start = time.perf_counter() if start is None else start
    objective = check_objective(objective, snapshot.account_id)
    split = split_constraints(constraints, snapshot.account_id)
    return _solve(
        snapshot, objective, split, options, fractional=fractional, start=start
    )


def _solve(
    snapshot: Snapshot,
    objective: tuple[Term, ...],
    split: tuple[list[Constraint], list[TradeRule]],
    options: SolveOptions,
    *,
    fractional: bool,
    start: float,
) -> RebalanceResult:
    """Optimize and finish checked terms and constraints (split from the rules)."""
    plain, rules = split
    try:
        optimum = optimize(snapshot, objective, plain, rules, options)
        return finish(
            snapshot,
            optimum,
            objective,
            plain,
            rules,
            options,
            fractional=fractional,
            start=start,
        )
    except InfeasibleError as exc:
        reason = str(exc)
        if snapshot.withdrawal:
            owed = snapshot.withdrawal * snapshot.value
            reason += f" (a withdrawal of {owed:,.2f} must be raised by sales)"
        return _unsolved(
            snapshot, Status.INFEASIBLE, reason, objective, start, exc.conflicting
        )
    except SolverFailedError as exc:
        return _unsolved(snapshot, Status.FAILED, str(exc), objective, start, ())


def finish(
    snapshot: Snapshot,
    optimum: Solution,
    objective: Sequence[Term],
    plain: Sequence[Constraint],
    rules: Sequence[TradeRule],
    options: SolveOptions,
    *,
    fractional: bool,
    start: float,
) -> RebalanceResult:
    """Turn a continuous optimum into verified orders and the account's result."""
    if optimum.status is Status.OPTIMAL_INACCURATE:
        broken = _broken(optimum.answer, plain)
        if broken:
            reason = "low-accuracy answer rejected: " + broken
            return _unsolved(snapshot, Status.FAILED, reason, objective, start, ())
    relaxed = {
        c.name: c.violation(optimum.answer)
        for c in plain
        if optimum.status is Status.RELAXED and c.violation(optimum.answer) > NOISE
    }
    kept = [c for c in plain if c.name not in relaxed]  # rounding keeps the rest
    step, rounding_note = None, ""
    if options.rounding == "none":
        buy_shares, lot_shares = continuous_shares(clean(optimum.answer))
    else:
        ladders = build_ladders(
            snapshot,
            optimum.mask,
            objective,
            fractional=fractional,
        )
        method = _rounding_method(options, snapshot.n_assets, fractional)
        rounded = discretize(
            ladders,
            optimum.answer,
            objective,
            kept,
            method,
            milp_time_limit_seconds=options.milp_time_limit_seconds,
        )
        buy_shares, lot_shares, step = (
            rounded.buy_shares,
            rounded.lot_shares,
            ladders.buy.step,
        )
        rounding_note = rounded.note
    trades = trades_table(snapshot, buy_shares, lot_shares, optimum.mask.must_sell)
    after, violations = verify(snapshot, trades, plain, rules, step=step)
    hard = (
        violations[~violations["is_soft"].astype(bool)]
        if len(violations)
        else violations
    )
    if (after is None or len(hard)) and optimum.status is Status.OPTIMAL_INACCURATE:
        reason = "low-accuracy answer fails verification: " + ", ".join(
            hard["constraint"]
        )
        return _unsolved(snapshot, Status.FAILED, reason, objective, start, ())
    if after is None or len(hard):
        raise VerificationError(
            f"account_id={snapshot.account_id!r}: result breaks "
            + ", ".join(hard["constraint"]),
            violations=violations,
        )
    message = result_message(
        optimum.status, violations, relaxed, optimum.note, rounding_note
    )
    return RebalanceResult(
        account_id=snapshot.account_id,
        status=optimum.status,
        message=message,
        trades=trades,
        summary=summary(
            snapshot,
            status=optimum.status,
            message=message,
            orders=OrderOutcomes(
                optimum.answer,
                after,
                _bound(optimum),
            ),
            objective=objective,
            seconds=time.perf_counter() - start,
            solver=optimum.solver,
        ),
        violations=violations,
        details=partial(
            _details, snapshot, objective, plain, optimum, after, tuple(relaxed)
        ),
    )


def _details(
    snapshot: Snapshot,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    optimum: Solution,
    after: Outcome,
    relaxed: tuple[str, ...],
) -> Details:
    """Return the result's terms, constraint reports and weights table.

    A limit the relaxed program broke (``relaxed``) gets no slack or dual:
    the elastic program's are about its penalty, not the caller's limit
    (the message says by how much it is broken).
    """
    mine, internal = constraint_tables(optimum.constraints(), constraints)
    mine.loc[mine.index.isin(relaxed), ["slack", "dual"]] = np.nan
    return Details(
        term_table(objective, optimum.answer),
        mine,
        weights_table(snapshot, optimum.answer, after),
        internal,
    )


def _bound(optimum: Solution) -> float:
    """Return the lower bound on the objective, NaN when there is none.

    A ``relaxed`` answer minimised penalties too: its objective bounds nothing.
    """
    if optimum.bound is None or optimum.status is Status.RELAXED:
        return np.nan
    return optimum.bound


def _broken(o: Outcome, constraints: Sequence[Constraint]) -> str:
    """Name the constraints a continuous answer breaks (soft ones too), if any."""
    tolerance = 1e-6  # fractions of V: an accurate answer is far closer
    broken = [(c.name, c.violation(o)) for c in constraints]
    broken += [("cash_non_negative", max(0.0, -o.cash))]
    return ", ".join(f"{n} by {v:.3g}" for n, v in broken if v > tolerance)


def _rounding_method(options: SolveOptions, n_assets: int, fractional: bool) -> str:
    """Resolve ``auto`` and skip the local search for fractional shares."""
    if fractional:
        return "nearest"
    if options.rounding == "auto":
        return "milp" if n_assets <= options.milp_max_assets else "greedy"
    return options.rounding


def _no_trade(
    snapshot: Snapshot, reason: str, objective: Sequence[Term], start: float
) -> RebalanceResult:
    """Return the result of an account left as it is."""
    untouched = _untouched(snapshot)
    return RebalanceResult(
        account_id=snapshot.account_id,
        status=Status.NO_TRADE,
        message=reason,
        trades=empty_trades(),
        summary=summary(
            snapshot,
            status=Status.NO_TRADE,
            message=reason,
            orders=OrderOutcomes(untouched, untouched),
            objective=objective,
            seconds=time.perf_counter() - start,
            solver="",
        ),
        details=partial(
            Details,
            term_table(objective, untouched),
            pd.DataFrame(),
            weights_table(snapshot, untouched, untouched),
        ),
    )


def _unsolved(
    snapshot: Snapshot,
    status: Status,
    message: str,
    objective: Sequence[Term],
    start: float,
    conflicting: tuple[str, ...],
) -> RebalanceResult:
    """Return a result without trades (infeasible or failed)."""
    trades = empty_trades()
    return RebalanceResult(
        account_id=snapshot.account_id,
        status=status,
        message=message,
        trades=trades,
        summary=summary(
            snapshot,
            status=status,
            message=message,
            orders=None,
            objective=objective,
            seconds=time.perf_counter() - start,
            solver="",
        ),
        conflicting=conflicting,
        details=partial(
            Details,
            pd.DataFrame(),
            pd.DataFrame(),
            weights_table(snapshot, None, _untouched(snapshot)),
        ),
    )


def _untouched(snapshot: Snapshot) -> Outcome:
    """Return the outcome of no trade."""
    return Outcome(snapshot, np.zeros(snapshot.n_assets), np.zeros(snapshot.n_lots))
