"""Round a household's optimum account by account, the others held fixed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models import (
    GainBudget,
    MaxTrackingError,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TrackingError,
)
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
    others fixed. The household's turnover cap, tracking-error cap and gain
    budget become the account's (``_own_limits``).
    """
    answer = optimum.answer
    solved = [
        _own_outcome(joint, k, answer, joint.accounts[k]) for k in range(len(accounts))
    ]
    weights = [o.weights for o in solved]
    used = [_Used.of(o, joint.scale[k]) for k, o in enumerate(solved)]
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
        own = _own_outcome(joint, k, answer, snapshot)
        solution = replace(
            optimum,
            outcome=own,
            mask=_own_mask(joint, k, sides),
            constraints=pd.DataFrame,
            bound=None,
        )
        own_plain: list[Constraint] = [MinCash(min(floors[k] / share, 1.0))]
        if one_side:
            own_plain.append(NoBuyAndSell())
        others_used = _Used.total(used[:k] + used[k + 1 :])
        own_plain += _own_limits(plain, others_used, own, share)
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
        weights[k], used[k] = rounded.weights, _Used.of(rounded, share)
    return results


@dataclass(frozen=True)
class _Used:
    """What an account's orders use of the household's shared limits."""

    turnover: float  # one-way, a fraction of the household's value
    gain: float  # net realized gain, currency

    @classmethod
    def of(cls, o: Outcome, share: float) -> _Used:
        """Return the use of an account's outcome (``share``: of the household)."""
        taxed = float(o.lot_sales @ o.snapshot.lot_taxed_gain)
        return cls(o.turnover * share, taxed * o.snapshot.value)

    @staticmethod
    def total(uses: Sequence[_Used]) -> _Used:
        """Return the use of several accounts together."""
        return _Used(sum(u.turnover for u in uses), sum(u.gain for u in uses))


def _own_limits(
    plain: Sequence[Constraint], others: _Used, solved: Outcome, share: float
) -> list[Constraint]:
    """Return the household's turnover, tracking-error and gain limits as one's.

    ``solved`` is the account's part of the continuous answer. Turnover and
    gains add up: the account gets what the other accounts (rounded, or as
    solved) leave. With the others held, the household's tracking error is
    ``share`` times the account's against what the others leave of the
    target. Never less than the account's solved answer uses, so that its
    rounding starts within its limits.
    """
    own = _Used.of(solved, share)
    limits: list[Constraint] = []
    for c in plain:
        if isinstance(c, MaxTurnover):
            left = (c.limit - others.turnover) / share
            limits.append(MaxTurnover(float(np.clip(left, own.turnover / share, 1.0))))
        elif isinstance(c, GainBudget):
            limits.append(GainBudget(max(c.limit - others.gain, own.gain)))
        elif isinstance(c, MaxTrackingError):
            te = float(np.sqrt(solved.snapshot.risk.variance(solved.active)))
            limits.append(MaxTrackingError(max(c.limit / share, te)))
    return limits


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
