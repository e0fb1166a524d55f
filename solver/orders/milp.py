"""Choose, per asset and side, the lot just below or just above the optimum.

A binary program handed straight to HiGHS. Each binary moves one side of
one asset from its lower to its upper bracketing rung. Separable terms
(costs, tax, impact) and the tracking error's specific part are exact at
both rungs; its factor part is exact in the limit, through the factor
exposures and tangent planes added round by round (outer approximation).
Every linear constraint is built by the constraint itself over affine maps
of the binaries (:mod:`solver.program.affine`), exact at 0 and 1, so the
limits the greedy search can only track approximately (group, factor, gain
budget) are met exactly; non-linear ones (the tracking-error cone), and
any constraint without a matrix form, are left to the search that follows.

The search is bounded by work, not by the clock, so that an account gets
the same orders on a loaded machine as on an idle one: at most
``MAX_NODES`` branch-and-bound nodes, with one search worker (HiGHS 1.16
otherwise sets its number of workers from the machine's thread count, and
the answer can depend on that number). An optional wall-clock limit can be
added; whichever limit stops HiGHS before it proves optimality is read from
HiGHS's model status and reported (``MilpChoice.note``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.constraints import NoBuyAndSell
from models.objective import TrackingError
from models.terms import (
    Constraint,
    Outcome,
    SeparableTerm,
    Term,
    after_trades,
)
from solver.orders.highs import Program, solve_program
from solver.orders.ladders import Ladders
from solver.program.affine import Affine, AffineQuantities, Entries, Quadratic, Rows
from solver.program.direct import MAP_ERRORS

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
# instance, so setting it here could break other HiGHS solves.) No RINS or
# RENS sub-programs and no restarts: on the 39 integer programs of 400
# batch accounts of 50 assets they took 15% of the time for no gain (the
# final orders better on 9 accounts and worse on 5, by at most 0.01 bp of V).
SEARCH_OPTIONS: dict[str, Any] = {
    "parallel": "off",
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_allow_restart": False,
}
# A program stops once proven within this share of the objective's size (the
# terms' absolute values added, at the lower bracket) of its optimum. HiGHS's
# own gaps (1e-4 of the net objective, 1e-6 bp of V) make it prove for
# seconds when tax and tracking error nearly cancel.
MIP_GAP = 1e-4
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
class BinaryVars(AffineQuantities):
    """Quantities affine in ``v = [buy binaries; sell binaries; epigraph]``.

    Satisfies ``models.terms.ProgramVars`` for the linear constraints; a
    cone's rows are dropped, a square or power raises.
    """

    def square(self, e: Affine, weights: np.ndarray) -> Quadratic:
        """Not linear: a constraint using it is left to the search."""
        raise NotImplementedError("the integer program takes linear rows only")

    def power(self, e: Affine, exponent: float) -> Affine:
        """Not linear: a constraint using it is left to the search."""
        raise NotImplementedError("the integer program takes linear rows only")


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
    d_buys = up_buy.buys - low.buys
    d_sells = up_sell.sells - low.sells
    if not (d_buys.any() or d_sells.any()):  # nothing to choose
        return MilpChoice((buy_lo, sell_lo))
    cost = _binary_costs(objective, low, up_buy, up_sell)
    te_weight = sum(t.weight for t in objective if isinstance(t, TrackingError))
    k = s.risk.G.shape[0] if te_weight else 0
    x = _binary_vars(low, up_buy, up_sell, width=2 * n + k)
    c = np.r_[OBJECTIVE_SCALE * cost, np.full(k, te_weight)]
    moves = np.r_[d_buys != 0, d_sells != 0]
    program = _program(x, constraints, c, moves, (buy_lo > 0, sell_lo > 0))
    exposure = EXPOSURE_SCALE * x.factors  # epigraph >= exposure^2, scaled
    size = sum(abs(t.weight * t.evaluate(low)) for t in objective)
    options = highs_options(time_limit_seconds, gap=MIP_GAP * size * OBJECTIVE_SCALE)
    # the first tangent planes: at the continuous point's exposures
    step = _continuous_step(targets, ladders, low, up_buy, up_sell)
    point = EXPOSURE_SCALE * s.risk.G @ (low.active + step)
    best: tuple[float, np.ndarray] | None = None
    stopped_at = ""
    for _ in range(OA_ROUNDS):
        if k:
            program = program.with_rows(*_tangents(exposure, point, 2 * n))
        run = solve_program(program, options)
        stopped_at = stopped_at or LIMIT_NAMES.get(run.status, "")
        if run.values is None:  # infeasible bracket, or stopped before a solution
            break
        chosen = np.round(run.values[: 2 * n]).astype(bool)
        e = s.risk.G @ (low.active + _step(chosen, low, up_buy, up_sell))
        true = float(cost @ chosen + te_weight * (e @ e))
        if best is None or true < best[0]:
            best = (true, chosen)
        gap = best[0] - run.lower / OBJECTIVE_SCALE  # the most a bracket choice gains
        if not k or gap <= max(OA_TOLERANCE * abs(best[0]), 2 * MIP_GAP * size):
            break
        point = EXPOSURE_SCALE * e
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


def _binary_vars(
    low: Outcome, up_buy: Outcome, up_sell: Outcome, width: int
) -> BinaryVars:
    """Return the account's quantities as affine maps of the binaries.

    Buys and sells move from the lower rungs by their step when a binary is
    1; weights and cash follow from the accounting identity.
    """
    s, n = low.snapshot, low.snapshot.n_assets

    def on(columns: np.ndarray, step: np.ndarray, base: np.ndarray) -> Affine:
        M = Entries.pick(len(columns), columns, width).scaled(step)
        return Affine(M, np.asarray(base, dtype=float))

    assets = np.arange(n)
    buys = on(assets, up_buy.buys - low.buys, low.buys)
    sells = on(n + assets, up_sell.sells - low.sells, low.sells)
    lot_sales = on(n + s.lot_asset, up_sell.lot_sales - low.lot_sales, low.lot_sales)
    weights, cash = after_trades(s, buys, sells)
    active = weights - s.target
    return BinaryVars(
        snapshot=s,
        active=active,
        factors=s.risk.G @ active,
        buys=buys,
        lot_sales=lot_sales,
        sells=sells,
        traded=buys + sells,
        weights=weights,
        cash=cash,
    )


def _program(
    x: BinaryVars,
    constraints: Sequence[Constraint],
    c: np.ndarray,
    moves: np.ndarray,
    trading: tuple[np.ndarray, np.ndarray],
) -> Program:
    """Return the program of cost ``c`` over the binaries and epigraph variables.

    Rows: cash stays non-negative; each constraint's linear rows; with
    ``NoBuyAndSell``, one side per asset, counting the trades the lower
    rungs already make (``trading``: buying, selling per asset). A binary
    that ``moves`` nothing is fixed at 0.
    """
    n, width = x.snapshot.n_assets, len(c)
    buying, selling = trading
    blocks = [x.cash >= 0]
    upper = np.r_[moves.astype(float), np.full(width - 2 * n, np.inf)]
    for constraint in constraints:
        blocks += _linear_rows(constraint, x)
        if isinstance(constraint, NoBuyAndSell):
            assets = np.arange(n)  # buy binary + sell binary <= 1
            both = Entries.pick(n, assets, width).plus(
                Entries.pick(n, n + assets, width)
            )
            blocks.append(Rows("le", both, np.ones(n)))
            upper[n : 2 * n][buying] = 0.0
            upper[:n][selling] = 0.0
    A = Entries.stack([b.A for b in blocks], width).csr()
    b = np.concatenate([b.b for b in blocks])
    is_eq = np.concatenate([np.full(len(b.b), b.kind == "eq") for b in blocks])
    return Program(c, A, np.where(is_eq, b, -np.inf), b, upper, 2 * n)


def _linear_rows(constraint: Constraint, x: BinaryVars) -> list[Rows]:
    """Return a constraint's linear rows over the binaries (none if it has none)."""
    try:
        built = constraint.build(x)
    except MAP_ERRORS:  # no matrix form: the search that follows keeps it
        return []
    return [r for r in built if isinstance(r, Rows) and r.kind in ("le", "eq")]


def _tangents(
    exposure: Affine, point: np.ndarray, first_epigraph: int
) -> tuple[sp.csr_array, np.ndarray]:
    """Return the rows ``2 p_f e_f(v) - t_f <= p_f^2``.

    They bound each epigraph variable ``t_f`` below by the tangent of
    ``e_f^2`` at ``p_f``.
    """
    k = len(point)
    slope = exposure.M.scaled(2.0 * point)
    t = Entries.pick(k, first_epigraph + np.arange(k), slope.shape[1])
    return slope.plus(t.scaled(-1.0)).csr(), point**2 - 2.0 * point * exposure.c


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
