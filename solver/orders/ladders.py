"""The share quantities an order may have, per asset and side.

A *ladder* lists the allowed quantities of one side of one asset as rungs:
rung 0 is no trade; rungs ``1..regular`` are ``(first + r - 1) * step``
shares (multiples of the lot size, starting at the smallest that reaches
``min_trade_value``); an optional top rung closes an odd-lot position. A sale
of ``y`` shares of an asset is spread over its lots in tax order (cheapest
tax first), whole lots before the next, so rounding works on one number per
asset and side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.errors import InputError
from models.objective import TaxCost
from models.snapshot import Snapshot
from models.terms import Outcome, Term, TradeMask

FRACTIONAL_STEP = 1e-4  # shares: quantity precision of fractional-share brokers
SHARE_TOLERANCE = 1e-9  # relative: quantities this close are equal
MAX_RUNGS = 2.0**53  # float64 counts steps exactly up to here; caps the int cast


@dataclass(frozen=True)
class Ladder:
    """Allowed quantities of one trade side for every asset."""

    step: np.ndarray  # shares per unit
    first: np.ndarray  # smallest nonzero number of units
    regular: np.ndarray  # number of regular rungs (>= 0)
    top: np.ndarray  # shares of the extra top rung; nan if none

    @property
    def highest(self) -> np.ndarray:
        """Index of the highest rung of each asset."""
        highest: np.ndarray = self.regular + ~np.isnan(self.top)
        return highest

    def shares(self, rung: np.ndarray) -> np.ndarray:
        """Return the share quantity of each asset's rung."""
        regular = (self.first + rung - 1) * self.step
        on_top = np.where(np.isnan(self.top), regular, self.top)
        shares: np.ndarray = np.where(
            rung == 0, 0.0, np.where(rung <= self.regular, regular, on_top)
        )
        return shares

    def bracket(self, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the rungs just below (or at) and just above each quantity."""
        units = np.floor(shares / self.step * (1 + SHARE_TOLERANCE))
        below = np.clip(units - self.first + 1, 0, self.regular).astype(int)
        below = np.where(
            ~np.isnan(self.top) & (shares >= self.top), self.highest, below
        )
        at = np.isclose(self.shares(below), shares, rtol=SHARE_TOLERANCE, atol=0.0)
        above = np.where(at, below, np.minimum(below + 1, self.highest))
        return below, above

    def nearest(self, shares: np.ndarray) -> np.ndarray:
        """Return the rung closest to each continuous quantity."""
        below, above = self.bracket(shares)
        closer_above = np.abs(self.shares(above) - shares) < np.abs(
            self.shares(below) - shares
        )
        rung: np.ndarray = np.where(closer_above, above, below)
        return rung


@dataclass(frozen=True)
class Ladders:
    """Buy and sell ladders of one account, and how sales map to lots."""

    snapshot: Snapshot
    buy: Ladder
    sell: Ladder
    lot_order: np.ndarray  # free lots, by asset then tax cost
    lot_start: np.ndarray  # shares of the asset sold before each ordered lot
    forced_shares: np.ndarray  # (n lots,) shares sold by liquidation

    def lot_shares(self, sold: np.ndarray) -> np.ndarray:
        """Spread each asset's sold shares over its lots in tax order.

        ``sold`` may hold one candidate per row.
        """
        s = self.snapshot
        quantity = s.lot_quantity
        order = self.lot_order
        taken = np.clip(
            sold[..., s.lot_asset[order]] - self.lot_start, 0.0, quantity[order]
        )
        out: np.ndarray = np.zeros((*sold.shape[:-1], s.n_lots)) + self.forced_shares
        out[..., order] += taken
        return out

    @cached_property
    def _weight_per_share(self) -> tuple[np.ndarray, np.ndarray]:
        """Weight of one share of each asset, and of each lot's asset."""
        s = self.snapshot
        per_share = s.prices / s.value
        return per_share, per_share[s.lot_asset]

    def outcome(self, buy_rung: np.ndarray, sell_rung: np.ndarray) -> Outcome:
        """Return the outcome of buying and selling at the given rungs.

        Rungs may hold one candidate per row (a stacked ``Outcome``).
        """
        asset, lot = self._weight_per_share
        buys = self.buy.shares(buy_rung) * asset
        lot_sales = self.lot_shares(self.sell.shares(sell_rung)) * lot
        return Outcome(self.snapshot, buys, lot_sales)


def build_ladders(
    s: Snapshot, mask: TradeMask, objective: Sequence[Term], *, fractional: bool
) -> Ladders:
    """Return the ladders allowed by the lot sizes, minimum trades and ``mask``."""
    quantity = s.lot_quantity
    free = mask.can_sell & ~mask.must_sell
    free_lots = np.flatnonzero(free)
    key = _tax_per_dollar(s, objective)
    order = free_lots[
        np.lexsort(
            (s.lot_gain_fraction[free_lots], key[free_lots], s.lot_asset[free_lots])
        )
    ]
    sellable = np.bincount(s.lot_asset[free_lots], quantity[free_lots], s.n_assets)
    held = np.bincount(s.lot_asset, quantity, s.n_assets)
    step = np.full(s.n_assets, FRACTIONAL_STEP) if fractional else s.lot_size
    first = np.maximum(
        1.0, np.ceil(s.min_trade_value / (s.prices * step) - SHARE_TOLERANCE)
    )
    with np.errstate(divide="ignore", over="ignore"):
        max_buy = np.where(mask.can_buy, np.floor(s.value / (s.prices * step)), 0.0)
        max_sell = np.floor(sellable / step * (1 + SHARE_TOLERANCE))
        per_share = s.prices / s.value
    _check_counts(s, np.maximum(max_buy, max_sell), per_share)
    odd = sellable - max_sell * step > SHARE_TOLERANCE * np.maximum(sellable, 1.0)
    closes = np.isclose(sellable, held) & (sellable * s.prices >= s.min_trade_value)
    return Ladders(
        snapshot=s,
        buy=Ladder(
            step,
            first,
            _rungs(max_buy - first + 1),
            np.full(s.n_assets, np.nan),
        ),
        sell=Ladder(
            step,
            first,
            _rungs(max_sell - first + 1),
            np.where(odd & closes, sellable, np.nan),
        ),
        lot_order=order,
        lot_start=_starts(s.lot_asset[order], quantity[order]),
        forced_shares=np.where(mask.must_sell, quantity, 0.0),
    )


def _starts(asset: np.ndarray, quantity: np.ndarray) -> np.ndarray:
    """Return the shares of the same asset before each lot (lots by asset).

    Added up lot by lot within each asset, one rank at a time: a running
    sum over every asset would carry a large position's rounding (1e-9
    shares at 1e7) into a small one's lots.
    """
    first = np.r_[True, asset[1:] != asset[:-1]]
    index = np.arange(len(asset))
    rank = index - np.maximum.accumulate(np.where(first, index, 0))
    start = np.zeros(len(asset))
    for k in range(1, int(rank.max(initial=0)) + 1):
        at = index[rank == k]
        start[at] = start[at - 1] + quantity[at - 1]
    return start


def _check_counts(s: Snapshot, steps: np.ndarray, per_share: np.ndarray) -> None:
    """Refuse an asset whose orders cannot be counted exactly in its steps.

    At most ``MAX_RUNGS`` steps (lots or fractions) of a trade, and a finite
    weight for one share: past these, quantities would be capped or
    overflow, and the orders silently wrong.
    """
    bad = ~(steps <= MAX_RUNGS) | ~np.isfinite(per_share)
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(
            f"price {float(s.prices[k]):g} cannot be counted in orders of an "
            f"account worth {s.value:g}: {float(steps[k]):.3g} steps of "
            f"{float(s.lot_size[k]):g} share(s) or fractions (at most "
            f"{MAX_RUNGS:.3g}), and a share's weight must be finite",
            account_id=s.account_id,
            asset=str(s.universe[k]),
            field="price",
        )


def _rungs(count: np.ndarray) -> np.ndarray:
    """Return rung counts as integers in ``[0, MAX_RUNGS]``, never overflowing."""
    rungs: np.ndarray = np.clip(count, 0.0, MAX_RUNGS).astype(np.int64)
    return rungs


def _tax_per_dollar(s: Snapshot, objective: Sequence[Term]) -> np.ndarray:
    """Return the tax cost per dollar sold of each lot, as the objective sees it."""
    for term in objective:
        if isinstance(term, TaxCost):
            return term.coefficients(s)
    tax: np.ndarray = s.lot_tax_rate * s.lot_gain_fraction
    return tax
