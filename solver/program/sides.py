"""One side per asset: buy or sell, never both (``NoBuyAndSell``).

The program is convex with both sides allowed; holding each asset to one
side is combinatorial. Relax, fix the sides, solve again (Moehle et al.,
"Tax-aware portfolio construction via convex optimization", 2021), or
branch and bound over the sides. In a household an asset is one however
many accounts hold it (``Snapshot.group``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from models.constraints import NoBuyAndSell
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, TradeMask
from solver.program.solve import Solution

NOISE = 1e-9  # fraction of V: smaller trades are interior-point noise
SIDE_TOLERANCE = 1e-8  # fraction of V: side patterns closer than this are equal
EXACT_SIDE_SOLVES = 2000  # most solves of the exact side search


def one_side_each(
    snapshot: Snapshot,
    constraints: Sequence[Constraint],
    first: Solution,
    solve: Callable[[TradeMask], Solution | None],
    value: Callable[[Outcome], float],
    sides: str,
) -> Solution | None:
    """Under ``NoBuyAndSell``, the best answer found that trades each asset one way.

    ``first`` solves the program with both sides allowed; its objective is
    a lower bound (``Solution.bound``). When it buys and sells some asset,
    two one-sided programs are solved: every asset held to the side of its
    net trade (relax-fix-resolve, Moehle et al., "Tax-aware portfolio
    construction via convex optimization", 2021), and the same with the
    assets traded both ways held to sales, which harvests the losses the
    net side gives up. The better is the answer under ``sides="auto"``;
    ``"net"`` solves the second only when the first is infeasible. Under
    ``"exact"`` a branch and bound over the sides of the assets traded
    both ways follows (``SideSearch.branch``). ``value`` is the weighted
    objective. Returns None when no one-sided answer is feasible.
    """
    bound = value(first.answer)
    first = replace(first, bound=bound)
    conflict = _conflicts(first)
    if not (conflict.any() and _one_side(constraints)):
        return first
    search = SideSearch(snapshot, solve, value)
    net = fix_sides(snapshot, first.answer)
    search.consider(first.mask & net)
    if sides != "net" or search.best is None:
        search.consider(first.mask & sell_side(net, snapshot, conflict))
    note = search.branch(first, bound) if sides == "exact" else ""
    if search.best is None:
        return None
    best = search.best
    return replace(
        best,
        solves=search.solves + 1,
        bound=bound,
        note="; ".join(filter(None, [best.note, note])),
    )


class SideSearch:
    """One-sided programs solved so far, and the best answer among them."""

    def __init__(
        self,
        snapshot: Snapshot,
        solve: Callable[[TradeMask], Solution | None],
        value: Callable[[Outcome], float],
    ) -> None:
        self.snapshot, self.solve, self.value = snapshot, solve, value
        self.best: Solution | None = None
        self.best_value = np.inf
        self.solves = 0

    def consider(self, mask: TradeMask) -> tuple[Solution, float] | None:
        """Solve under ``mask``; keep the answer if one-sided and best so far.

        Returns the solution and its objective, None when infeasible.
        """
        self.solves += 1
        solution = self.solve(mask)
        if solution is None:
            return None
        objective = self.value(solution.answer)
        if objective < self.best_value and not _conflicts(solution).any():
            self.best, self.best_value = solution, objective
        return solution, objective

    def branch(self, root: Solution, bound: float) -> str:
        """Branch and bound over the sides of the assets traded both ways.

        Best bound first; each node holds its largest round trip to sales
        in one child and to buys in the other, and each child still trading
        both ways is also solved with its sides fixed (an incumbent). Stops
        when no node can beat the best answer by ``SIDE_TOLERANCE`` (then
        the answer is the exact optimum) or after ``EXACT_SIDE_SOLVES``
        solves; returns a note with the gap left in that case. ``bound`` is
        the root's objective.
        """
        s = self.snapshot
        nodes = [(bound, 0, root)]
        pushed = 0
        while nodes and nodes[0][0] < self.best_value - SIDE_TOLERANCE:
            if self.solves >= EXACT_SIDE_SOLVES:
                gap = (self.best_value - nodes[0][0]) * 1e4
                return (
                    f"sides: search stopped after {self.solves + 1} solves; the "
                    f"best one-sided answer may be up to {gap:.3g} bp of V lower"
                )
            _, _, node = heapq.heappop(nodes)
            for mask in _children(s, node.mask, _branch_asset(node)):
                child = self.consider(mask)
                if child is None or child[1] >= self.best_value - SIDE_TOLERANCE:
                    continue
                if _conflicts(child[0]).any():
                    self.consider(mask & fix_sides(s, child[0].answer))
                    pushed += 1
                    heapq.heappush(nodes, (child[1], pushed, child[0]))
        return ""


def _one_side(constraints: Sequence[Constraint]) -> bool:
    """Whether ``NoBuyAndSell`` is among the constraints."""
    return any(isinstance(c, NoBuyAndSell) for c in constraints)


def _groups(snapshot: Snapshot) -> np.ndarray:
    """Return the real asset of each universe entry (``Snapshot.group``)."""
    return np.arange(snapshot.n_assets) if snapshot.group is None else snapshot.group


def by_group(snapshot: Snapshot, values: np.ndarray) -> np.ndarray:
    """Return each entry's real-asset total of ``values`` (one side per asset)."""
    if snapshot.group is None:
        return values
    total = np.bincount(snapshot.group, weights=values)
    spread: np.ndarray = total[snapshot.group]
    return spread


def _group_max(snapshot: Snapshot, values: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Return, per universe entry, the largest of ``values`` in its real asset.

    ``entry`` is each value's universe entry (the lots' assets for lot values).
    """
    group = _groups(snapshot)
    largest = np.zeros(snapshot.n_assets)
    np.maximum.at(largest, group[entry], np.maximum(values, 0.0))
    spread: np.ndarray = largest[group]
    return spread


def _conflicts(solution: Solution) -> np.ndarray:
    """Return which assets the solution both buys and sells.

    In a household an asset is one however many accounts hold it: bought in
    one and sold in another is a conflict too.
    """
    o = solution.answer
    s = o.snapshot
    conflict: np.ndarray = (by_group(s, o.buys) > NOISE) & (
        by_group(s, o.sells) > NOISE
    )
    return conflict


def _branch_asset(solution: Solution) -> int:
    """Return the conflicting asset with the largest round trip."""
    o = solution.answer
    s = o.snapshot
    trip = np.minimum(by_group(s, o.buys), by_group(s, o.sells))
    return int(np.argmax(np.where(_conflicts(solution), trip, -1.0)))


def _children(
    snapshot: Snapshot, mask: TradeMask, asset: int
) -> tuple[TradeMask, TradeMask]:
    """Return ``mask`` with ``asset`` held to sales, and held to buys."""
    everything = TradeMask.everything(snapshot)
    group = _groups(snapshot)
    can_buy = group != group[asset]
    can_sell = group[snapshot.lot_asset] != group[asset]
    return (
        mask & replace(everything, can_buy=can_buy),
        mask & replace(everything, can_sell=can_sell),
    )


def fix_sides(snapshot: Snapshot, o: Outcome) -> TradeMask:
    """Allow only buys where the net trade is a buy, only sales elsewhere.

    An asset the answer does not trade (its net trade within ``NOISE``)
    takes the side its solver values lean to: an interior point leaves a
    variable that is zero at the optimum near ``mu / reduced cost``, so the
    larger of its buy and its most-sold lot is the side closer to paying.
    (A fixed threshold alone let solver noise of 1e-9 of V choose, and
    choose worse.) With neither variable (both sides forbidden or
    nothing held) it keeps the side towards its target.
    """
    net = by_group(snapshot, o.buys - o.sells)
    lean = _group_max(snapshot, o.buys, np.arange(snapshot.n_assets)) - _group_max(
        snapshot, o.lot_sales, snapshot.lot_asset
    )
    towards_target = by_group(snapshot, snapshot.target - snapshot.current)
    buy_side = np.where(
        np.abs(net) > NOISE,
        net > 0,
        np.where(lean != 0, lean > 0, towards_target >= 0),
    )
    sell_side = ~buy_side
    return TradeMask(
        can_buy=~sell_side,
        can_sell=~buy_side[snapshot.lot_asset],
        must_sell=np.zeros(snapshot.n_lots, dtype=bool),
    )


def sell_side(mask: TradeMask, snapshot: Snapshot, assets: np.ndarray) -> TradeMask:
    """Return ``mask`` with ``assets`` held to sales (``mask`` allows one side each)."""
    can_buy = mask.can_buy & ~assets
    buying = by_group(snapshot, can_buy.astype(float)) > 0  # anywhere in a household
    return replace(mask, can_buy=can_buy, can_sell=~buying[snapshot.lot_asset])
