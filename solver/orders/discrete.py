"""From the continuous answer to orders: the starts, the searches, the best.

``discretize`` rounds to the ladders from the nearest rungs and, with
``milp``, from the integer program's choice; each start is repaired and
improved by the local search (``rounding.Rounder``), the better kept, and
small accounts then get an exhaustive search around it (``neighbourhood``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.constraints import AssetBounds
from models.terms import Constraint, Outcome, Term
from solver.errors import InfeasibleError
from solver.orders import neighbourhood
from solver.orders.ladders import SHARE_TOLERANCE, Ladders
from solver.orders.limits import SLACK, Limits
from solver.orders.milp import milp_rungs
from solver.orders.rounding import IMPROVEMENT, MAX_ROUNDS, Rounder, Rungs
from solver.program.formulation import CASH_NON_NEGATIVE

MILP_SKIP_GAP = 1e-3  # of the continuous objective: not worth a program


@dataclass(frozen=True)
class Rounded:
    """Orders in shares: per asset bought, per lot sold.

    ``note`` is for the result message: empty, or why the integer program
    stopped before proving optimality (``MilpChoice.note``).
    """

    buy_shares: np.ndarray
    lot_shares: np.ndarray
    note: str = ""


def discretize(
    ladders: Ladders,
    continuous: Outcome,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    method: str,
    milp_time_limit_seconds: float | None = None,
) -> Rounded:
    """Round ``continuous`` to the ladders with ``method``.

    ``nearest``: nearest rung, then repair. ``greedy``: then local search.
    ``milp``: also search from the binary program's choice (the true
    objective over the rungs bracketing each trade, ``milp_rungs``) and
    keep the better, unless the local search already ends within
    ``MILP_SKIP_GAP`` of the continuous objective (a lower bound: the
    program could gain at most 0.1% of it). The program stops at a node
    limit (deterministic) and, only when given, at
    ``milp_time_limit_seconds``; stopping early is said in ``Rounded.note``.
    """
    targets = continuous_targets(ladders, continuous)
    rounder = Rounder(ladders, objective, constraints)

    def finish(start: Rungs) -> tuple[bool, float, Rungs]:
        """Repair and improve a start; rank by limits kept, then objective."""
        rungs = rounder.repair(*start)
        if method != "nearest":
            rungs = rounder.improve(*rungs)
        o = ladders.outcome(*rungs)
        return rounder.breaks_limits(o), rounder.value(o), rungs

    best = finish((ladders.buy.nearest(targets[0]), ladders.sell.nearest(targets[1])))
    note = ""
    # the continuous answer bounds every order list on its ladders
    bound = rounder.value(continuous)
    close = not best[0] and best[1] - bound <= MILP_SKIP_GAP * abs(bound)
    if method == "milp" and not close:
        chosen = milp_rungs(
            ladders, targets, objective, constraints, milp_time_limit_seconds
        )
        note = chosen.note
        if chosen.rungs is not None:
            best = min(best, finish(chosen.rungs), key=lambda f: f[:2])
    buy, sell = _or_no_trade(rounder, best)
    for _ in range(MAX_ROUNDS if method != "nearest" else 0):
        better = neighbourhood.search(rounder, buy, sell)
        if better is None:
            break
        buy, sell = better
    _check_cash_reachable(ladders, buy, sell)
    _check_bounds_reachable(ladders, rounder.limits, buy, sell)
    return Rounded(
        buy_shares=ladders.buy.shares(buy),
        lot_shares=ladders.lot_shares(ladders.sell.shares(sell)),
        note=note,
    )


def _or_no_trade(rounder: Rounder, best: tuple[bool, float, Rungs]) -> Rungs:
    """Return ``best``'s rungs, or none traded if that keeps every limit and is better.

    Interior-point noise rounds to orders of a rung (1e-4 shares) that can
    cost more than they gain; no trade (forced sales made) is then the
    answer.
    """
    broken, value, rungs = best
    zero = np.zeros_like(rungs[0])
    o = rounder.ladders.outcome(zero, zero)
    kept = not rounder.breaks_limits(o) and rounder.within(
        o, [SLACK] * len(rounder.untracked)
    )
    inside = not rounder.limits.outside(o.weights).any()
    if kept and inside and (broken or rounder.value(o) < value - IMPROVEMENT):
        return zero, zero.copy()
    return rungs


def _check_cash_reachable(ladders: Ladders, buy: np.ndarray, sell: np.ndarray) -> None:
    """Raise if the orders leave cash negative and no orders on the ladders can not.

    Selling the most every ladder allows and buying nothing gives the most
    cash; when even that is negative (a withdrawal that whole lots, lot
    sizes or minimum trades cannot raise), no order list is feasible.

    Raises
    ------
    InfeasibleError
        Naming ``cash_non_negative``, with the cash the most sales leave.
    """
    if ladders.outcome(buy, sell).cash >= -SLACK:
        return
    most = ladders.outcome(np.zeros_like(buy), ladders.sell.highest)
    if most.cash < -SLACK:
        short = -most.cash * ladders.snapshot.value
        raise InfeasibleError(
            f"infeasible in whole orders: {CASH_NON_NEGATIVE}: selling all that "
            f"lot sizes and minimum trades allow still leaves cash {short:,.2f} short",
            conflicting=(CASH_NON_NEGATIVE,),
        )


def _check_bounds_reachable(
    ladders: Ladders, limits: Limits, buy: np.ndarray, sell: np.ndarray
) -> None:
    """Raise if the orders break an asset's bounds and no order of it can not.

    An asset's weight after trading depends on its own order only, so each
    asset is checked alone: no trade, or the smallest buy or sale on its
    ladder that reaches its bounds, must land within them (a share worth
    more than the bounds' width, a round lot, a minimum trade can make
    that impossible).

    Raises
    ------
    InfeasibleError
        Naming ``asset_bounds`` and the first such asset.
    """
    broken = limits.outside(ladders.outcome(buy, sell).weights)
    if not broken.any():
        return
    s = ladders.snapshot
    none = np.zeros_like(buy)
    start = ladders.outcome(none, none).weights  # forced sales made
    per_share = s.prices / s.value
    reachable = ~limits.outside(start)
    lower, upper = limits.lower - SLACK, limits.upper + SLACK
    sides = (  # weight the side must move at least, and at most
        (ladders.buy, lower - start, upper - start),
        (ladders.sell, start - upper, start - lower),
    )
    for ladder, near, far in sides:
        least = np.maximum(near, 0.0) / per_share  # shares
        rung = np.minimum(ladder.bracket(least)[1], ladder.highest)
        shares = ladder.shares(rung)
        tolerance = SHARE_TOLERANCE * np.maximum(shares, 1.0)
        reachable |= (shares >= least - tolerance) & (shares * per_share <= far + SLACK)
    stuck = broken & ~reachable
    if stuck.any():
        k = int(np.argmax(stuck))
        raise InfeasibleError(
            f"infeasible in whole orders: {AssetBounds.name}: no order of "
            f"{s.universe[k]} in its lots ({float(ladders.buy.step[k]):g} "
            f"share(s) at {float(s.prices[k]):,.2f}) puts its weight within "
            f"[{float(limits.lower[k]):.4g}, {float(limits.upper[k]):.4g}]",
            conflicting=(AssetBounds.name,),
        )


def continuous_targets(
    ladders: Ladders, continuous: Outcome
) -> tuple[np.ndarray, np.ndarray]:
    """Return the continuous shares bought, and sold from free lots, per asset."""
    s = ladders.snapshot
    lot_price = s.prices[s.lot_asset]
    free_lot_shares = np.where(
        ladders.forced_shares > 0, 0.0, continuous.lot_sales * s.value / lot_price
    )
    sold = np.bincount(s.lot_asset, free_lot_shares, s.n_assets)
    return continuous.buys * s.value / s.prices, sold
