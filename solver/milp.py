"""Choose, per asset and side, the lot just below or just above the optimum.

A binary program solved by HiGHS through cvxpy. Each binary moves one side
of one asset from its lower to its upper bracketing rung. Separable terms
(costs, tax, impact) are exact at both rungs. Tracking error is exact on
its diagonal and linear in the cross terms around the continuous optimum.
Every linear constraint is built by the constraint itself over expressions
that are affine in the binaries and exact at 0 and 1, so the limits the
greedy search can only track approximately (group, factor, gain budget) are
met exactly; non-linear ones (the tracking-error cone) are left to the
search that follows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from models.constraints import NoBuyAndSell
from models.objective import TrackingError
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, SeparableTerm, Term
from solver.ladders import Ladders

MILP_SOLVER = "HIGHS"


@dataclass
class AffineVars:
    """Quantities affine in the binaries; satisfies ``models.terms.ProgramVars``."""

    snapshot: Snapshot
    trades: cp.Variable
    active: cp.Expression
    buys: cp.Expression
    lot_sales: cp.Expression
    sells: cp.Expression
    traded: cp.Expression
    weights: cp.Expression
    cash: cp.Expression


def milp_rungs(
    ladders: Ladders,
    targets: tuple[np.ndarray, np.ndarray],
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    time_limit_seconds: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the best (buy, sell) rungs in the bracket, or None without a solution.

    ``targets`` holds the continuous shares bought and sold (free lots) per
    asset.
    """
    s = ladders.snapshot
    buy_lo, buy_hi = ladders.buy.bracket(targets[0])
    sell_lo, sell_hi = ladders.sell.bracket(targets[1])
    low = ladders.outcome(buy_lo, sell_lo)
    up_buy = ladders.outcome(buy_hi, sell_lo)
    up_sell = ladders.outcome(buy_lo, sell_hi)
    n = s.n_assets
    x = cp.Variable(2 * n, boolean=True)
    xb, xs = x[:n], x[n:]
    d_buys = up_buy.buys - low.buys
    d_sells = up_sell.sells - low.sells
    d_lots = up_sell.lot_sales - low.lot_sales
    buys = low.buys + cp.multiply(d_buys, xb)
    sells = low.sells + cp.multiply(d_sells, xs)
    traded = buys + sells
    weights = s.current + buys - sells
    lot_sales = low.lot_sales + cp.multiply(d_lots, xs[s.lot_asset])
    cash = s.cash - cp.sum(buys) + cp.sum(sells) - s.cost_rate @ traded
    vars_ = AffineVars(
        s, x, weights - s.target, buys, lot_sales, sells, traded, weights, cash
    )
    fixed = np.flatnonzero(np.r_[d_buys == 0, d_sells == 0])
    if len(fixed) == 2 * n:  # nothing to choose (HiGHS fails on an empty program)
        return buy_lo, sell_lo
    rows: list[cp.Constraint] = [cash >= 0]
    if len(fixed):
        rows.append(x[fixed] == 0)
    for constraint in constraints:
        rows += [c for c in constraint.build(vars_) if _is_linear(c)]
        if isinstance(constraint, NoBuyAndSell):
            rows += _one_side(xb, xs, buy_lo > 0, sell_lo > 0)
    cost = _linear_objective(objective, low, up_buy, up_sell, targets, ladders)
    problem = cp.Problem(cp.Minimize(cost @ x), rows)
    try:
        with _quiet_stdout():  # HiGHS prints a banner on first use
            problem.solve(solver=MILP_SOLVER, time_limit=time_limit_seconds)
    except (cp.error.SolverError, ValueError):  # cvxpy: ValueError on UNKNOWN
        return None
    if x.value is None:
        return None
    chosen = np.round(x.value).astype(bool)
    return (
        np.where(chosen[:n], buy_hi, buy_lo),
        np.where(chosen[n:], sell_hi, sell_lo),
    )


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send what native code writes to file descriptor 1 to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _one_side(
    xb: cp.Expression, xs: cp.Expression, buying: np.ndarray, selling: np.ndarray
) -> list[cp.Constraint]:
    """Never buy and sell one asset, counting trades the lower rungs already make."""
    rows = [xb + xs <= 1]
    if buying.any():
        rows.append(xs[np.flatnonzero(buying)] == 0)
    if selling.any():
        rows.append(xb[np.flatnonzero(selling)] == 0)
    return rows


def _is_linear(constraint: cp.Constraint) -> bool:
    """Whether a constraint is an affine (in)equality HiGHS can take."""
    linear = (cp.constraints.Inequality, cp.constraints.Equality)
    return isinstance(constraint, linear) and bool(constraint.expr.is_affine())


def _linear_objective(
    objective: Sequence[Term],
    low: Outcome,
    up_buy: Outcome,
    up_sell: Outcome,
    targets: tuple[np.ndarray, np.ndarray],
    ladders: Ladders,
) -> np.ndarray:
    """Return the change of the objective per binary (buy block, sell block)."""
    s = low.snapshot
    risk = s.risk
    cost = np.zeros(2 * s.n_assets)
    steps = (up_buy.weights - low.weights, up_sell.weights - low.weights)
    for term in objective:
        if isinstance(term, SeparableTerm):
            base = term.per_asset(low)
            cost += (
                term.weight
                * np.r_[term.per_asset(up_buy) - base, term.per_asset(up_sell) - base]
            )
        elif isinstance(term, TrackingError):
            sigma_diag = (risk.G**2).sum(axis=0) + risk.d
            # cross terms linearised at the continuous point inside the bracket
            fraction = _fractions(targets, ladders)
            delta = steps[0] * fraction[0] + steps[1] * fraction[1]
            sigma_delta = risk.G.T @ (risk.G @ delta) + risk.d * delta
            gradient = 2 * (risk.G.T @ (risk.G @ low.active) + risk.d * low.active)
            cross = 2 * (sigma_delta - sigma_diag * delta)
            for k, dw in enumerate(steps):
                block = slice(k * s.n_assets, (k + 1) * s.n_assets)
                cost[block] += term.weight * dw * (gradient + sigma_diag * dw + cross)
    return cost


def _fractions(
    targets: tuple[np.ndarray, np.ndarray], ladders: Ladders
) -> tuple[np.ndarray, np.ndarray]:
    """Return where each continuous quantity lies between its two rungs (0..1)."""
    out = []
    for ladder, shares in ((ladders.buy, targets[0]), (ladders.sell, targets[1])):
        lo, hi = ladder.bracket(shares)
        width = ladder.shares(hi) - ladder.shares(lo)
        safe = np.where(width > 0, width, 1.0)
        out.append(np.clip((shares - ladder.shares(lo)) / safe, 0.0, 1.0))
    return out[0], out[1]
