"""Round the continuous answer to orders: whole lots, minimum trades, cash.

Start from the nearest rung of every ladder, repair the hard limits the
rounding broke (asset bounds, the cash floor) and the turnover cap, then
improve the true objective by local search: moves of one rung, up or down,
on one side of one asset, and (up to ``THOROUGH_MAX_ASSETS`` assets) jumps
to the tracking error's best quantity for the asset or to no trade.
Tracking error changes are exact for a one-asset move
(``2 dw (Sigma a)_i + dw^2 Sigma_ii``), the other terms are sums over
assets, so every move of every asset is scored at once with numpy. The best
moves on distinct assets are applied together when the whole batch improves
the objective, else the single best move is. Small accounts then get an
exhaustive search around the answer (``neighbourhood``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.constraints import AssetBounds, MaxTurnover, MinCash, NoBuyAndSell
from models.objective import TrackingError
from models.terms import Constraint, Outcome, SeparableTerm, Term
from solver.orders.ladders import Ladders
from solver.orders.limits import SLACK, Limits
from solver.program.report import objective_value

IMPROVEMENT = 1e-13  # smallest objective gain worth a move
MAX_ROUNDS = 500
PATIENT_ROUNDS = 50  # repair rounds that avoid overshooting the deficit
MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (buy rung step, sell rung step)
TRACKED = (MinCash, MaxTurnover, AssetBounds, NoBuyAndSell)  # checked per move
SINGLE_TRIES = 20  # single moves tried when a batch breaks a constraint
# Accounts of up to this many assets also get jump moves: 4 ms per account
# at 500 assets with one-rung moves only (bench_orders, lot size 1).
THOROUGH_MAX_ASSETS = 100

Rungs = tuple[np.ndarray, np.ndarray]  # (buy, sell) rung of every asset


@dataclass(frozen=True)
class Scored:
    """Every one-rung move from the current rungs, with its effects."""

    buy: np.ndarray  # (4, n) buy rung after each move
    sell: np.ndarray  # (4, n) sell rung after each move
    objective: np.ndarray  # (4, n) change in objective; inf if not allowed
    cash: np.ndarray  # (4, n) change in cash
    bought: np.ndarray  # (4, n) change in the total bought
    sold: np.ndarray  # (4, n) change in the total sold


class Rounder:
    """Repair and improve the rungs of one account against its objective.

    Accounts of up to ``THOROUGH_MAX_ASSETS`` assets are searched with jump
    moves too (``thorough``); larger ones with one-rung moves only, which
    keeps the search within a fraction of the solve's time.
    """

    def __init__(
        self,
        ladders: Ladders,
        objective: Sequence[Term],
        constraints: Sequence[Constraint],
    ) -> None:
        self.ladders = ladders
        self.objective = objective
        self.limits = Limits.of(ladders, constraints)
        self.untracked = [c for c in constraints if not isinstance(c, TRACKED)]
        risk = ladders.snapshot.risk
        self.te_weight = sum(
            t.weight for t in objective if isinstance(t, TrackingError)
        )
        self.separable = [t for t in objective if isinstance(t, SeparableTerm)]
        self.sigma_diagonal = (risk.G**2).sum(axis=0) + risk.d
        self.thorough = ladders.snapshot.n_assets <= THOROUGH_MAX_ASSETS

    def value(self, o: Outcome) -> float:
        """Return the true weighted objective."""
        return objective_value(self.objective, o)

    def score(self, buy: np.ndarray, sell: np.ndarray, o: Outcome) -> Scored:
        """Score every candidate move of every asset from ``(buy, sell)``.

        The candidates of each asset are one rung up or down on either side,
        and jumps on either side to the rungs around the quantity that
        minimises the tracking error with every other asset held fixed
        (``-(Sigma a)_i / Sigma_ii`` of weight), or to no trade.
        """
        L, limits, s = self.ladders, self.limits, self.ladders.snapshot
        risk = s.risk
        sigma_active = risk.G.T @ (risk.G @ o.active) + risk.d * o.active
        nb, ns = self._candidates(buy, sell, sigma_active)  # (candidates, n)
        allowed = (nb >= 0) & (nb <= L.buy.highest) & (ns >= 0) & (ns <= L.sell.highest)
        allowed &= (nb != buy) | (ns != sell)
        if limits.one_side:
            allowed &= ~((nb > 0) & (ns > 0))
        nb, ns = np.where(allowed, nb, buy), np.where(allowed, ns, sell)
        moved = L.outcome(nb, ns)  # each row: every asset moved alone
        bought, sold = moved.buys - o.buys, moved.sells - o.sells
        dw = bought - sold
        change = self.te_weight * (2 * dw * sigma_active + dw**2 * self.sigma_diagonal)
        for term in self.separable:
            change += term.weight * (term.per_asset(moved) - term.per_asset(o))
        traded = moved.traded - o.traded
        return Scored(
            buy=nb,
            sell=ns,
            objective=np.where(allowed & self._keeps_bounds(o, dw), change, np.inf),
            cash=-bought + sold - s.cost_rate * traded,
            bought=bought,
            sold=sold,
        )

    def _candidates(
        self, buy: np.ndarray, sell: np.ndarray, sigma_active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the (buy, sell) rungs of every asset, one candidate move per row."""
        L, s = self.ladders, self.ladders.snapshot
        moves = [(buy + db, sell + ds) for db, ds in MOVES]
        if not (self.te_weight and self.thorough):
            return _stacked(moves)
        # weight change that minimises the tracking error, in shares
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            shares = -sigma_active / self.sigma_diagonal * s.value / s.prices
        shares = np.where(np.isfinite(shares), shares, 0.0)  # no risk, no jump
        zero = np.zeros_like(buy)
        for rung in L.buy.bracket(np.maximum(L.buy.shares(buy) + shares, 0.0)):
            moves.append((rung, sell))
        for rung in L.sell.bracket(np.maximum(L.sell.shares(sell) - shares, 0.0)):
            moves.append((buy, rung))
        moves += [(zero, sell), (buy, zero)]
        return _stacked(moves)

    def _keeps_bounds(self, o: Outcome, dw: np.ndarray) -> np.ndarray:
        """Whether a weight change keeps, or moves towards, the asset bounds."""
        lo, hi = self.limits.lower, self.limits.upper
        before = np.maximum(lo - o.weights, o.weights - hi).clip(0.0)
        after = np.maximum(lo - o.weights - dw, o.weights + dw - hi).clip(0.0)
        keeps: np.ndarray = (after <= SLACK) | (after < before)
        return keeps

    def repair(
        self, buy: np.ndarray, sell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Restore one side per asset, asset bounds, cash floor and turnover cap."""
        if self.limits.one_side:
            both = (buy > 0) & (sell > 0)
            keep_buy = self.ladders.buy.shares(buy) >= self.ladders.sell.shares(sell)
            buy = np.where(both & ~keep_buy, 0, buy)
            sell = np.where(both & keep_buy, 0, sell)
        buy, sell = self._into_bounds(buy, sell)
        limits = self.limits
        floor, cap = limits.cash_floor, limits.turnover
        buy, sell = self._restore(
            buy, sell, lambda o: floor - o.cash, lambda o, m: m.cash
        )
        buy, sell = self._raise(self._afford(buy, sell), sell)
        return self._restore(
            buy,
            sell,
            lambda o: o.turnover - cap,
            lambda o, m: -limits.turnover_change(o, m.bought, m.sold),
            keep_cash=True,
        )

    def _afford(self, buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
        """Scale every buy down together until cash keeps its floor.

        For when moves of one rung did not get there: a fractional share's
        rung is 1e-4 shares, and a sale that rounding dropped (a position
        below the minimum trade) may have paid for many of them.
        """
        L = self.ladders
        o = L.outcome(buy, sell)
        missing = self.limits.cash_floor - o.cash
        spend = float(o.buys @ (1 + L.snapshot.cost_rate))
        if missing <= 0 or spend <= 0:
            return buy
        keep = max(1.0 - missing / spend, 0.0)
        below: np.ndarray = L.buy.bracket(L.buy.shares(buy) * keep)[0]
        return below

    def _raise(
        self, buy: np.ndarray, sell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sell more until cash keeps its floor, each asset at once.

        Cheapest objective per dollar raised first (as one rung more would
        cost), each asset up to what is still missing or all it may sell:
        for a withdrawal that one-rung moves of 1e-4 shares cannot raise.
        """
        L, s = self.ladders, self.ladders.snapshot
        o = L.outcome(buy, sell)
        if self.limits.cash_floor - o.cash <= SLACK:
            return buy, sell
        scored = self.score(buy, sell, o)
        one_more = MOVES.index((0, 1))
        cash, change = scored.cash[one_more], scored.objective[one_more]
        useful = np.isfinite(change) & (cash > 0)
        ratio = np.where(useful, change / np.where(useful, cash, 1.0), np.inf)
        sell = sell.copy()
        for i in np.argsort(ratio)[: int(useful.sum())]:
            missing = self.limits.cash_floor - L.outcome(buy, sell).cash + SLACK
            if missing <= SLACK:
                break
            more = missing * s.value / (s.prices * (1 - s.cost_rate))
            above = L.sell.bracket(L.sell.shares(sell) + more)[1]
            sell[i] = min(above[i], L.sell.highest[i])
        return buy, sell

    def _into_bounds(
        self, buy: np.ndarray, sell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step each asset out of bound back inside, one rung at a time."""
        for _ in range(MAX_ROUNDS):
            o = self.ladders.outcome(buy, sell)
            high = o.weights > self.limits.upper + SLACK
            low = o.weights < self.limits.lower - SLACK
            if not (high | low).any():
                break
            buy_down = high & (buy > 0)
            sell_up = high & ~buy_down & (sell < self.ladders.sell.highest)
            sell_down = low & (sell > 0)
            buy_up = low & ~sell_down & (buy < self.ladders.buy.highest)
            if not (buy_down | sell_up | sell_down | buy_up).any():
                break
            buy = buy - buy_down + buy_up
            sell = sell + sell_up - sell_down
        return buy, sell

    def _restore(
        self,
        buy: np.ndarray,
        sell: np.ndarray,
        deficit: Callable[[Outcome], float],
        gain: Callable[[Outcome, Scored], np.ndarray],
        keep_cash: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cover ``deficit`` with the moves that cost least objective per gain.

        Each round takes the cheapest moves that do not overshoot the
        deficit; after ``PATIENT_ROUNDS`` rounds, also the one that covers
        it, so that small moves against a large deficit still finish.
        """
        for rounds in range(MAX_ROUNDS):
            o = self.ladders.outcome(buy, sell)
            missing = deficit(o) + SLACK
            if missing <= SLACK:
                break
            scored = self.score(buy, sell, o)
            gains = gain(o, scored)
            useful = (gains > 0) & np.isfinite(scored.objective)
            if keep_cash:
                useful &= o.cash + scored.cash >= self.limits.cash_floor
            if not useful.any():
                break
            ratio = np.where(
                useful, scored.objective / np.where(useful, gains, 1), np.inf
            )
            move, asset = _best_per_asset(ratio)
            order = np.argsort(ratio[move, asset])
            move, asset = move[order], asset[order]
            covered = np.cumsum(gains[move, asset])
            overshoot = int(rounds >= PATIENT_ROUNDS)
            take = max(int(np.searchsorted(covered, missing)) + overshoot, 1)
            if keep_cash:  # the batch as a whole must keep the floor too
                cash = o.cash + np.cumsum(scored.cash[move, asset])
                safe = cash >= self.limits.cash_floor
                take = min(
                    take, len(safe) if safe.all() else max(int(np.argmin(safe)), 1)
                )
            buy, sell = _apply(buy, sell, scored, move[:take], asset[:take])
        return buy, sell

    def improve(
        self, buy: np.ndarray, sell: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply improving moves until none is left.

        Tracked limits are checked per move; every other constraint must not
        end up further from satisfied than it was when the search began.
        """
        allowance = self.allowance(self.ladders.outcome(buy, sell))
        for _ in range(MAX_ROUNDS):
            o = self.ladders.outcome(buy, sell)
            step = self._step(buy, sell, o, self.score(buy, sell, o), allowance)
            if step is None:
                break
            buy, sell = step
        return buy, sell

    def _fits(self, o: Outcome, scored: Scored) -> np.ndarray:
        """Which moves keep the cash floor and the turnover cap."""
        limits = self.limits
        cash_ok = (o.cash + scored.cash >= limits.cash_floor - SLACK) | (
            scored.cash >= 0
        )
        change = limits.turnover_change(o, scored.bought, scored.sold)
        turnover_ok = (o.turnover + change <= limits.turnover + SLACK) | (change <= 0)
        fits: np.ndarray = cash_ok & turnover_ok
        return fits

    def _step(
        self,
        buy: np.ndarray,
        sell: np.ndarray,
        o: Outcome,
        scored: Scored,
        allowance: list[float],
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the rungs after the best improving moves that fit, or None."""
        limits = self.limits
        current = self.value(o)
        change = np.where(self._fits(o, scored), scored.objective, np.inf)
        move, asset = _improving(change)
        if not len(move):
            return None
        cash = o.cash + np.cumsum(scored.cash[move, asset])
        turn = o.turnover + limits.turnover_change(
            o,
            np.cumsum(scored.bought[move, asset]),
            np.cumsum(scored.sold[move, asset]),
        )
        cap = max(limits.turnover, o.turnover) + SLACK
        fits = (cash >= limits.cash_floor - SLACK) & (turn <= cap)
        batch = len(fits) if fits.all() else int(np.argmin(fits))
        trials = [slice(0, batch)] if batch > 1 else []
        trials += [slice(k, k + 1) for k in range(min(len(move), SINGLE_TRIES))]
        for chosen in trials:
            trial = _apply(buy, sell, scored, move[chosen], asset[chosen])
            moved = self.ladders.outcome(*trial)
            better = self.value(moved) < current - IMPROVEMENT
            if better and self.within(moved, allowance):
                return trial
        return None

    def allowance(self, start: Outcome) -> list[float]:
        """Return how far each untracked constraint may be broken: as at ``start``."""
        return [max(c.violation(start), SLACK) for c in self.untracked]

    def breaks_limits(self, o: Outcome) -> bool:
        """Whether an outcome breaks the cash floor or the turnover cap."""
        limits = self.limits
        return bool(
            o.cash < limits.cash_floor - SLACK or o.turnover > limits.turnover + SLACK
        )

    def within(self, o: Outcome, allowance: list[float]) -> bool:
        """Whether no untracked constraint is broken by more than allowed."""
        return all(
            c.violation(o) <= limit
            for c, limit in zip(self.untracked, allowance, strict=True)
        )


def _stacked(
    moves: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Return the moves' buy rungs and sell rungs, one move per row."""
    return np.stack([b for b, _ in moves]), np.stack([s for _, s in moves])


def _improving(change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (move, asset) of each asset's best improving move, best first."""
    move, asset = _best_per_asset(change)
    order = np.argsort(change[move, asset], kind="stable")
    move, asset = move[order], asset[order]
    improves = change[move, asset] < -IMPROVEMENT
    return move[improves], asset[improves]


def _best_per_asset(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (move, asset) of each asset's smallest finite entry."""
    move = np.argmin(table, axis=0)
    asset = np.arange(table.shape[1])
    finite = np.isfinite(table[move, asset])
    return move[finite], asset[finite]


def _apply(
    buy: np.ndarray,
    sell: np.ndarray,
    scored: Scored,
    move: np.ndarray,
    asset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rungs after the chosen moves (one per asset)."""
    buy, sell = buy.copy(), sell.copy()
    buy[asset] = scored.buy[move, asset]
    sell[asset] = scored.sell[move, asset]
    return buy, sell
