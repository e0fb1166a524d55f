"""The limits rounding checks move by move: cash floor, turnover cap, bounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.constraints import AssetBounds, MaxTurnover, MinCash, NoBuyAndSell
from models.terms import Constraint, Outcome
from solver.orders.ladders import Ladders

SLACK = 1e-9  # fraction of V kept inside tracked limits


@dataclass(frozen=True)
class Limits:
    """The limits rounding tracks move by move, in fractions of V."""

    cash_floor: float
    turnover: float  # cap on one-way turnover (``Outcome.turnover``)
    lower: np.ndarray
    upper: np.ndarray
    one_side: bool
    deposit: float  # the cash flow, which turnover leaves out
    withdrawal: float

    @classmethod
    def of(cls, ladders: Ladders, constraints: Sequence[Constraint]) -> Limits:
        """Collect the tracked limits from the constraints."""
        s = ladders.snapshot
        lower = np.full(s.n_assets, -np.inf)
        upper = np.full(s.n_assets, np.inf)
        floor, turnover = 0.0, np.inf
        for c in constraints:
            if isinstance(c, MinCash):
                floor = max(floor, c.fraction)
            elif isinstance(c, MaxTurnover):
                turnover = min(turnover, c.limit)
            elif isinstance(c, AssetBounds):
                low, high = c.bounds(s)
                lower, upper = np.maximum(lower, low), np.minimum(upper, high)
        one_side = any(isinstance(c, NoBuyAndSell) for c in constraints)
        return cls(floor, turnover, lower, upper, one_side, s.deposit, s.withdrawal)

    def outside(self, weights: np.ndarray) -> np.ndarray:
        """Which weights are outside their asset bounds by more than ``SLACK``."""
        out: np.ndarray = (weights < self.lower - SLACK) | (
            weights > self.upper + SLACK
        )
        return out

    def turnover_change(
        self, o: Outcome, bought: np.ndarray, sold: np.ndarray
    ) -> np.ndarray:
        """Return how ``Outcome.turnover`` changes with ``o``'s total buys and sales.

        ``bought`` and ``sold`` are the changes (arrays of candidates). Half
        their sum where no part crosses its flow, so without a cash flow it
        is exact, not a difference of two nearly equal turnovers.
        """
        buys = float(o.buys.sum()) - self.deposit
        sells = float(o.sells.sum()) - self.withdrawal
        change: np.ndarray = (
            _part_change(buys, bought) + _part_change(sells, sold)
        ) / 2
        return change


def _part_change(part: float, change: np.ndarray) -> np.ndarray:
    """Return how ``max(part, 0)`` changes when ``part`` changes by ``change``."""
    after = part + change
    crossed = np.maximum(after, 0.0) - max(part, 0.0)
    moved: np.ndarray = np.where((part >= 0) & (after >= 0), change, crossed)
    return moved
