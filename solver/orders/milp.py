"""Choose, per asset and side, the lot just below or just above the optimum.

A binary program solved by HiGHS through cvxpy. Each binary moves one side
of one asset from its lower to its upper bracketing rung. Separable terms
(costs, tax, impact) and the tracking error's specific part are exact at
both rungs; its factor part is exact in the limit, through the factor
exposures and tangent planes added round by round (outer approximation).
Every linear constraint is built by the constraint itself over expressions
that are affine in the binaries and exact at 0 and 1, so the limits the
greedy search can only track approximately (group, factor, gain budget) are
met exactly; non-linear ones (the tracking-error cone) are left to the
search that follows.

The search is bounded by work, not by the clock, so that an account gets
the same orders on a loaded machine as on an idle one: at most
``MAX_NODES`` branch-and-bound nodes, with one search worker (HiGHS 1.16
otherwise sets its number of workers from the machine's thread count, and
the answer can depend on that number). An optional wall-clock limit can be
added; whichever limit stops HiGHS before it proves optimality is read from
HiGHS's model status and reported (``MilpChoice.note``).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from models.constraints import NoBuyAndSell
from models.objective import TrackingError
from models.snapshot import Snapshot
from models.terms import (
    Constraint,
    CvxpyForms,
    Outcome,
    SeparableTerm,
    Term,
    after_trades,
)
from solver.orders.ladders import Ladders

MILP_SOLVER = "HIGHS"
# Branch-and-bound nodes HiGHS may explore. Measured with one worker on 960
# random accounts of 10-100 assets with binding turnover, group, factor and
# gain limits (807 integer programs): without a limit they took a median of
# 1 node, 199 at the 99th percentile and 1,148 at most (0.5 s); at 2,000
# every answer equals the unlimited one (at 1,000, one program stops early).
# A node costs 0.4-1 ms here, so the limit bounds a solve to about 2 s.
MAX_NODES = 2000
OA_ROUNDS = 8  # integer programs per account, each with more tangent planes
OA_TOLERANCE = 1e-3  # relative: tangents this close to the factor risk suffice
# HiGHS's tolerances are absolute (feasibility 1e-7, MIP gap 1e-6): the
# program is solved in bp of V, exposures in percent of V
OBJECTIVE_SCALE = 1e4
EXPOSURE_SCALE = OBJECTIVE_SCALE**0.5  # so that exposure^2 is in objective units
# One search worker: the same tree, hence the same answer, on any machine.
# (``threads`` is left alone: HiGHS fixes it once per process for every
# instance, so setting it here could break other HiGHS solves.)
SEARCH_OPTIONS: dict[str, Any] = {"parallel": "off"}
# A program stops once proven within this share of the objective's size (the
# terms' absolute values added, at the lower bracket) of its optimum. HiGHS's
# own gaps (1e-4 of the net objective, 1e-6 bp of V) make it prove for
# seconds when tax and tracking error nearly cancel.
MIP_GAP = 1e-4
FEASIBLE = 2  # HiGHS ``primal_solution_status`` of a feasible point
# HiGHS model statuses that mean "stopped early by a limit we set"
LIMIT_NAMES = {"kTimeLimit": "time limit", "kSolutionLimit": "node limit"}


@dataclass(frozen=True)
class MilpChoice:
    """The binary program's (buy, sell) rungs and the limit that stopped it.

    ``rungs`` is None without a usable solution (infeasible bracket, solver
    failure, or stopped before its first solution). ``stopped_at`` names the
    limit (``"time limit"``, ``"node limit"``) when HiGHS stopped before
    proving optimality, as its model status says; empty otherwise.
    """

    rungs: tuple[np.ndarray, np.ndarray] | None
    stopped_at: str = ""

    @property
    def note(self) -> str:
        """Say, for the result message, that the program stopped early."""
        if not self.stopped_at:
            return ""
        head = f"rounding: the integer program stopped at its {self.stopped_at}"
        if self.rungs is None:
            return head + " without a solution; orders from the greedy search"
        return head + "; orders: the better of its best solution and the greedy search"


@dataclass
class AffineVars(CvxpyForms):
    """Quantities affine in the binaries; satisfies ``models.terms.ProgramVars``."""

    snapshot: Snapshot
    trades: cp.Variable
    active: cp.Expression
    factors: cp.Expression
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
    time_limit_seconds: float | None = None,
) -> MilpChoice:
    """Return the best (buy, sell) rungs in the bracket, and why HiGHS stopped.

    ``targets`` holds the continuous shares bought and sold (free lots) per
    asset. Separable terms and the tracking error's specific (diagonal)
    part are exact per binary. The factor part ``||G a||^2`` is carried by
    the exposures ``e = G a`` (affine in the binaries) and one epigraph
    variable per factor, bounded below by tangent planes of ``e_f^2``
    (outer approximation): after each solve, tangents at the solution's
    exposures are added and the program is solved again, until the best
    true objective seen is within ``OA_TOLERANCE`` (relative) or twice the
    program's gap (``MIP_GAP``) of its proven lower bound (no bracket choice
    can be better by more) or after
    ``OA_ROUNDS`` programs; the best true objective seen is returned. Each
    program stops after ``MAX_NODES`` nodes or, when given,
    ``time_limit_seconds`` of wall-clock time (orders then depend on the
    machine's speed and load).
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
    weights, cash = after_trades(s, buys, sells)
    lot_sales = low.lot_sales + cp.multiply(d_lots, xs[s.lot_asset])
    active = weights - s.target
    vars_ = AffineVars(
        s, x, active, s.risk.G @ active, buys, lot_sales, sells, traded, weights, cash
    )
    fixed = np.flatnonzero(np.r_[d_buys == 0, d_sells == 0])
    if len(fixed) == 2 * n:  # nothing to choose (HiGHS fails on an empty program)
        return MilpChoice((buy_lo, sell_lo))
    rows: list[cp.Constraint] = [cash >= 0]
    if len(fixed):
        rows.append(x[fixed] == 0)
    for constraint in constraints:
        rows += [c for c in constraint.build(vars_) if _is_linear(c)]
        if isinstance(constraint, NoBuyAndSell):
            rows += _one_side(xb, xs, buy_lo > 0, sell_lo > 0)
    cost = _binary_costs(objective, low, up_buy, up_sell)
    te_weight = sum(t.weight for t in objective if isinstance(t, TrackingError))
    k = s.risk.G.shape[0] if te_weight else 0
    exposure = EXPOSURE_SCALE * vars_.factors
    epigraph = cp.Variable(k)  # >= exposure^2, in EXPOSURE_SCALE^2 units
    scaled = OBJECTIVE_SCALE * cost @ x + te_weight * cp.sum(epigraph)
    size = sum(abs(t.weight * t.evaluate(low)) for t in objective)
    options = highs_options(time_limit_seconds, gap=MIP_GAP * size * OBJECTIVE_SCALE)
    # the first tangent planes: at the continuous point's exposures
    step = _continuous_step(targets, ladders, low, up_buy, up_sell)
    points = [EXPOSURE_SCALE * s.risk.G @ (low.active + step)] if k else []
    best: tuple[float, np.ndarray] | None = None
    stopped_at = ""
    for _ in range(OA_ROUNDS):
        cuts = [epigraph >= cp.multiply(2 * p, exposure) - p**2 for p in points]
        program = cp.Problem(cp.Minimize(scaled), rows + cuts)
        try:
            model_status, lower = _solve(program, options)
        except (cp.error.SolverError, ValueError):  # cvxpy: ValueError on UNKNOWN
            break
        stopped_at = stopped_at or LIMIT_NAMES.get(model_status, "")
        if x.value is None:  # infeasible bracket, or stopped before a solution
            break
        chosen = np.round(x.value).astype(bool)
        e = s.risk.G @ (low.active + _step(chosen, low, up_buy, up_sell))
        true = float(cost @ chosen + te_weight * (e @ e))
        if best is None or true < best[0]:
            best = (true, chosen)
        gap = best[0] - lower / OBJECTIVE_SCALE  # the most a bracket choice gains
        if not k or gap <= max(OA_TOLERANCE * abs(best[0]), 2 * MIP_GAP * size):
            break
        points.append(EXPOSURE_SCALE * e)
    if best is None:
        return MilpChoice(None, stopped_at)
    chosen = best[1]
    rungs = (
        np.where(chosen[:n], buy_hi, buy_lo),
        np.where(chosen[n:], sell_hi, sell_lo),
    )
    return MilpChoice(rungs, stopped_at)


def highs_options(time_limit_seconds: float | None, gap: float = 0.0) -> dict[str, Any]:
    """Return the HiGHS options: node limit, one worker, gap, optional clock.

    ``gap`` is absolute, in the program's units; HiGHS stops at either gap.
    """
    options: dict[str, Any] = {"mip_max_nodes": MAX_NODES, **SEARCH_OPTIONS}
    if gap > 0:
        options["mip_abs_gap"] = gap
    if time_limit_seconds is not None:
        options["time_limit"] = time_limit_seconds
    return options


def _solve(problem: cp.Problem, options: dict[str, Any]) -> tuple[str, float]:
    """Solve with HiGHS, load its solution if it has one.

    Returns HiGHS's model status and its proven lower bound on the
    program's objective (its MIP dual bound).

    Goes through cvxpy's documented ``get_problem_data`` / ``solve_via_data``
    / ``unpack_results`` steps, because ``problem.solve`` maps every HiGHS
    limit to one ``user_limit`` status, and loads a point even when HiGHS
    stopped before finding a feasible one.
    """
    data, chain, inverse = problem.get_problem_data(solver=MILP_SOLVER)
    with _quiet_stdout():  # HiGHS prints a banner on first use
        raw = chain.solve_via_data(problem, data, solver_opts=dict(options))
    if int(raw["info"].primal_solution_status) == FEASIBLE:
        with warnings.catch_warnings():  # a limit hit is said in the message
            warnings.filterwarnings(
                "ignore", message="Solution may be inaccurate", category=UserWarning
            )
            problem.unpack_results(raw, chain, inverse)
    return str(raw["model_status"]), float(raw["info"].mip_dual_bound)


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


def _step(
    chosen: np.ndarray, low: Outcome, up_buy: Outcome, up_sell: Outcome
) -> np.ndarray:
    """Return the weight change from the lower rungs of the chosen binaries."""
    n = low.snapshot.n_assets
    step: np.ndarray = chosen[:n] * (up_buy.weights - low.weights) + chosen[n:] * (
        up_sell.weights - low.weights
    )
    return step


def _continuous_step(
    targets: tuple[np.ndarray, np.ndarray],
    ladders: Ladders,
    low: Outcome,
    up_buy: Outcome,
    up_sell: Outcome,
) -> np.ndarray:
    """Return the weight change from the lower rungs to the continuous point."""
    fraction = _fractions(targets, ladders)
    step: np.ndarray = (up_buy.weights - low.weights) * fraction[0] + (
        up_sell.weights - low.weights
    ) * fraction[1]
    return step


def _binary_costs(
    objective: Sequence[Term], low: Outcome, up_buy: Outcome, up_sell: Outcome
) -> np.ndarray:
    """Return the exact change of the separable objective per binary.

    Separable terms and the tracking error's specific part
    ``sum_i d_i a_i^2``; the factor part is left to the exposures.
    """
    s = low.snapshot
    cost = np.zeros(2 * s.n_assets)
    for term in objective:
        if isinstance(term, SeparableTerm):
            base = term.per_asset(low)
            cost += (
                term.weight
                * np.r_[term.per_asset(up_buy) - base, term.per_asset(up_sell) - base]
            )
        elif isinstance(term, TrackingError):
            d, a = s.risk.d, low.active
            specific = [
                d * ((a + up.weights - low.weights) ** 2 - a**2)
                for up in (up_buy, up_sell)
            ]
            cost += term.weight * np.r_[specific[0], specific[1]]
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
