"""Exhaustive search of every order list near the local search's answer.

For an account with few traded assets the local search's answer is checked
against every combination of quantities within ``REACH`` rungs of it, on
either side of each asset: moves of several assets at once that no sequence
of improving single moves reaches (sell three shares of one asset to buy
one of another). Each asset's candidates are scored once (their weight,
cash, turnover and separable cost are sums over assets); the tracking
error of every combination is computed exactly, in factor form, with numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from solver.orders.ladders import Ladders
from solver.orders.limits import SLACK
from solver.orders.rounding import IMPROVEMENT, Rungs

if TYPE_CHECKING:
    from solver.orders.rounding import Rounder

REACH = 3  # rungs either side of the answer
MAX_COMBINATIONS = 200_000  # larger neighbourhoods are not searched


def candidates(ladders: Ladders, buy: np.ndarray, sell: np.ndarray) -> list[np.ndarray]:
    """Return each asset's candidate (buy, sell) rungs, shape (k_i, 2).

    Within ``REACH`` rungs of the answer on its side, and up to ``REACH``
    rungs on the other side from zero (one side at a time).
    """
    out = []
    for i in range(len(buy)):
        rows = {(int(buy[i]), int(sell[i]))}
        for step in range(-REACH, REACH + 1):
            if sell[i] == 0:
                rows.add((int(buy[i]) + step, 0))
            if buy[i] == 0:
                rows.add((0, int(sell[i]) + step))
        for step in range(1, REACH + 1):
            rows |= {(step, 0), (0, step)}
        table = np.array(sorted(rows))
        ok = (
            (table[:, 0] >= 0)
            & (table[:, 0] <= ladders.buy.highest[i])
            & (table[:, 1] >= 0)
            & (table[:, 1] <= ladders.sell.highest[i])
        )
        out.append(table[ok])
    return out


def search(rounder: Rounder, buy: np.ndarray, sell: np.ndarray) -> Rungs | None:
    """Return the best feasible rungs within ``REACH`` of ``(buy, sell)``.

    Returns None when the neighbourhood is larger than ``MAX_COMBINATIONS``
    or nothing in it is better.
    """
    L, limits = rounder.ladders, rounder.limits
    s = L.snapshot
    tradable = (L.buy.highest > 0) | (L.sell.highest > 0)
    if 2.0 ** tradable.sum() > MAX_COMBINATIONS:  # two candidates each at least
        return None
    options = candidates(L, buy, sell)
    moving = [i for i, c in enumerate(options) if len(c) > 1]
    sizes = [len(options[i]) for i in moving]
    if not moving or np.prod(sizes, dtype=float) > MAX_COMBINATIONS:
        return None
    # one outcome per layer: layer j puts each asset at its j-th candidate
    depth = max(sizes)
    layers = []
    for j in range(depth):
        b, sl = buy.copy(), sell.copy()
        for i in moving:
            row = options[i][min(j, len(options[i]) - 1)]
            b[i], sl[i] = row
        layers.append(L.outcome(b, sl))
    base = L.outcome(buy, sell)
    grid = np.array(np.meshgrid(*(np.arange(k) for k in sizes), indexing="ij"))
    grid = grid.reshape(len(moving), -1)  # candidate index per moving asset
    n_combos = grid.shape[1]
    weights = np.tile(base.weights, (n_combos, 1))
    cash = np.full(n_combos, base.cash)
    total_bought = np.zeros(n_combos)  # changes from the base
    total_sold = np.zeros(n_combos)
    separable = np.zeros(n_combos)
    before = [t.per_asset(base) for t in rounder.separable]
    bounds_ok = np.ones(n_combos, dtype=bool)
    for row, i in enumerate(moving):
        pick = grid[row]
        w = np.array([layers[j].weights[i] for j in range(sizes[row])])
        bought = np.array([layers[j].buys[i] for j in range(sizes[row])])
        sold = np.array([layers[j].sells[i] for j in range(sizes[row])])
        dw = w - base.weights[i]
        weights[:, i] = w[pick]
        traded = bought + sold - base.traded[i]
        cash += (
            -(bought - base.buys[i]) + (sold - base.sells[i]) - s.cost_rate[i] * traded
        )[pick]
        total_bought += (bought - base.buys[i])[pick]
        total_sold += (sold - base.sells[i])[pick]
        for term, old in zip(rounder.separable, before, strict=True):
            value = np.array([term.per_asset(layers[j])[i] for j in range(sizes[row])])
            separable += term.weight * (value - old[i])[pick]
        inside = (w >= limits.lower[i] - SLACK) & (w <= limits.upper[i] + SLACK)
        keeps = inside | (np.abs(dw) == 0)
        bounds_ok &= keeps[pick]
        if limits.one_side:
            bounds_ok &= ~((bought > 0) & (sold > 0))[pick]
    active = weights - s.target
    risk = s.risk
    variance = ((active @ risk.G.T) ** 2).sum(axis=1) + (active**2) @ risk.d
    value = rounder.te_weight * variance + separable
    feasible = (
        bounds_ok
        # a start already past a limit may stay there, never drift further
        & (cash >= min(limits.cash_floor - SLACK, base.cash))
        & (
            base.turnover + limits.turnover_change(base, total_bought, total_sold)
            <= max(limits.turnover + SLACK, base.turnover)
        )
    )
    current = rounder.value(base)
    allowance = rounder.allowance(base)
    for k in np.argsort(np.where(feasible, value, np.inf))[:50]:
        if not feasible[k]:
            break
        b, sl = buy.copy(), sell.copy()
        for row, i in enumerate(moving):
            b[i], sl[i] = options[i][grid[row, k]]
        moved = L.outcome(b, sl)
        if rounder.value(moved) >= current - IMPROVEMENT:
            break
        if rounder.within(moved, allowance):
            return b, sl
    return None
