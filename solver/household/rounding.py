"""Round a household's optimum account by account, the others held fixed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from models import MaxTurnover, MinCash, NoBuyAndSell, TrackingError
from models.account import Account
from models.household import FixedMask, Joint
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, Term, TradeMask, TradeRule
from solver.api import finish
from solver.orders.trades import outcome_from_trades
from solver.program.sides import fix_sides
from solver.program.solve import Solution
from solver.result import RebalanceResult, SolveOptions


def round_accounts(
    joint: Joint,
    accounts: Sequence[Account],
    optimum: Solution,
    objective: Sequence[Term],
    plain: Sequence[Constraint],
    floors: np.ndarray,
    joint_rules: Sequence[TradeRule],
    options: SolveOptions,
) -> list[RebalanceResult]:
    """Round each account's share of the optimum, the others held fixed.

    Account ``k`` is rounded against the household target less the other
    accounts' holdings (rounded ones as rounded, the rest as solved), in
    its own value's terms; its tracking-error weight is scaled by its share
    of the household so that its program is the household's with the
    others fixed. A household turnover cap becomes the account's: what the
    others' turnover (rounded or solved) leaves of it, but at least the
    account's own turnover as solved.
    """
    answer = optimum.answer
    solved = [
        _own_outcome(joint, k, answer, joint.accounts[k]) for k in range(len(accounts))
    ]
    weights = [o.weights for o in solved]
    turnover = [o.turnover for o in solved]
    caps = [c.limit for c in plain if isinstance(c, MaxTurnover)]
    one_side = any(isinstance(c, NoBuyAndSell) for c in plain)
    sides = optimum.mask
    if one_side:  # rounding keeps each asset on one side across the accounts
        sides = sides & fix_sides(joint.snapshot, answer)
    results = []
    for k, account in enumerate(accounts):
        share = joint.scale[k]
        others = sum(
            joint.scale[j] * weights[j] for j in range(len(accounts)) if j != k
        )
        alone = joint.accounts[k]
        snapshot = replace(alone, target=(alone.target - others) / share)
        solution = replace(
            optimum,
            outcome=_own_outcome(joint, k, answer, snapshot),
            mask=_own_mask(joint, k, sides),
            constraints=pd.DataFrame,
            bound=None,
        )
        own_plain: list[Constraint] = [MinCash(min(floors[k] / share, 1.0))]
        if one_side:
            own_plain.append(NoBuyAndSell())
        used = sum(joint.scale[j] * turnover[j] for j in range(len(accounts)) if j != k)
        least = solved[k].turnover  # its own turnover as solved stays allowed
        own_plain += [
            MaxTurnover(float(np.clip((cap - used) / share, least, 1.0)))
            for cap in caps
        ]
        own_rules: list[TradeRule] = [
            type(r)(_own_mask(joint, k, r.mask(joint.snapshot)))
            for r in joint_rules
            if isinstance(r, FixedMask)
        ]
        result = finish(
            snapshot,
            solution,
            [_scaled(t, share) for t in objective],
            own_plain,
            own_rules,
            options,
            fractional=account.fractional_shares,
            start=time.perf_counter(),
        )
        results.append(result)
        rounded = outcome_from_trades(snapshot, result.trades)  # none: it holds
        weights[k], turnover[k] = rounded.weights, rounded.turnover
    return results


def _own_outcome(joint: Joint, k: int, o: Outcome, snapshot: Snapshot) -> Outcome:
    """Return account ``k``'s part of a joint outcome, in its own value's terms."""
    share = joint.scale[k]
    return Outcome(
        snapshot, o.buys[joint.entries[k]] / share, o.lot_sales[joint.lots[k]] / share
    )


def _own_mask(joint: Joint, k: int, mask: TradeMask) -> TradeMask:
    """Return account ``k``'s part of a joint mask."""
    entries, lots = joint.entries[k], joint.lots[k]
    return TradeMask(mask.can_buy[entries], mask.can_sell[lots], mask.must_sell[lots])


def _scaled(term: Term, share: float) -> Term:
    """Return a term priced in one account's value.

    The tracking error's weight scales with the account's share: it is
    quadratic in fractions of value, the other terms linear.
    """
    if isinstance(term, TrackingError):
        return replace(term, weight=term.weight * share)
    return term
