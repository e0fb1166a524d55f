"""Rebalancing policies for the backtest: whether to trade today, and what.

A policy sees the day (:class:`Day`, plain arrays over the target's assets)
and returns :class:`Orders` or ``None``. The rule-based policies (calendar,
bands, tracking-error trigger) trade to the target, or to the band's edge,
selling lots first-in first-out as a broker does by default: they are
tax-blind. ``solver.dynamic.optimizer.OptimizerPolicy`` asks the optimizer
what to trade, with its costs, taxes and wash-sale rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from models import CovarianceRiskModel
from solver.triggers import Calendar, Drift, DriftBands, TrackingErrorTrigger, Trigger

if TYPE_CHECKING:
    from solver.dynamic.ledger import Ledger

SHARE_TOLERANCE = 1e-9  # share changes smaller than this are not traded


@dataclass(frozen=True)
class Risk:
    """An annualised covariance over the day's assets; its risk model on demand."""

    assets: pd.Index
    covariance: np.ndarray

    def shrunk(self, weight: float) -> Risk:
        """Return ``(1 - weight) Sigma + weight * mean variance * I``.

        Shrinking towards equal, uncorrelated variances makes a policy's
        no-trade region closer to a box, as wide for every asset.
        """
        mean_variance = float(np.trace(self.covariance)) / len(self.covariance)
        identity = np.eye(len(self.covariance))
        shrunk = (1 - weight) * self.covariance + weight * mean_variance * identity
        return Risk(self.assets, shrunk)

    @cached_property
    def model(self) -> CovarianceRiskModel:
        """Return the covariance as a risk model for :func:`solver.rebalance`."""
        labels = self.assets
        return CovarianceRiskModel(
            pd.DataFrame(self.covariance, index=labels, columns=labels)
        )


@dataclass(frozen=True)
class Day:
    """What a policy sees on one trading day, before it trades.

    Arrays are over ``assets`` (the target's assets), in that order.
    """

    date: pd.Timestamp
    index: int  # trading days since the start
    assets: pd.Index
    prices: np.ndarray
    target: np.ndarray  # weights; the rest of 1 is the cash target
    shares: np.ndarray  # held
    value: float  # positions at today's prices plus cash, less tax owed
    ledger: Ledger
    risk: Risk  # estimated from past returns only
    last_rebalance: pd.Timestamp | None
    cost_bps: float

    def weights(self) -> np.ndarray:
        """Return the current weight of each asset."""
        weights: np.ndarray = self.shares * self.prices / self.value
        return weights

    def drift(self) -> Drift:
        """Return the account's drift for the triggers."""
        current = self.weights()
        active = current - self.target
        return Drift(
            account_id="backtest",
            as_of=self.date,
            universe=self.assets,
            current=current,
            target=self.target,
            cash=self.ledger.cash / self.value,
            target_cash=1.0 - float(self.target.sum()),
            tracking_error=float(
                np.sqrt(max(active @ self.risk.covariance @ active, 0.0))
            ),
            last_rebalance=self.last_rebalance,
        )


@dataclass(frozen=True)
class Orders:
    """Shares to buy per asset (over the day's ``assets``) and to sell per lot."""

    buys: np.ndarray
    sells: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to trade."""
        return not (self.buys.any() or self.sells)


class Policy(Protocol):
    """Decides each day whether to trade and what."""

    name: str

    def decide(self, day: Day) -> Orders | None:
        """Return today's orders, or ``None`` to leave the account as it is."""
        ...


def fifo_sells(
    ledger: Ledger, assets: pd.Index, shares: np.ndarray
) -> dict[str, float]:
    """Return lot sales of ``shares`` of each asset, first in first out."""
    sells: dict[str, float] = {}
    names = assets.tolist()
    for k in np.flatnonzero(shares > SHARE_TOLERANCE):
        left = float(shares[k])
        for lot in ledger.fifo(str(names[k])):
            if left <= 1e-12:
                break
            sold = min(lot.quantity, left)
            sells[lot.lot_id] = sold
            left -= sold
    return sells


def orders_to_weights(day: Day, weights: np.ndarray) -> Orders:
    """Return the orders that move the account to ``weights``, selling FIFO."""
    change = weights * day.value / day.prices - day.shares
    buys = np.where(change > SHARE_TOLERANCE, change, 0.0)
    sells = np.where(change < -SHARE_TOLERANCE, -change, 0.0)
    return Orders(buys, fifo_sells(day.ledger, day.assets, sells))


@dataclass(frozen=True)
class TriggerPolicy:
    """Trade to the target (or to the band edges) when a trigger fires."""

    trigger: Trigger
    name: str
    to_edge: bool = False

    def decide(self, day: Day) -> Orders | None:
        """Return orders to the target when the trigger fires."""
        drift = day.drift()
        if not self.trigger.check(drift).fired:
            return None
        if self.to_edge and isinstance(self.trigger, DriftBands):
            return orders_to_weights(day, self.trigger.edge_weights(drift))
        return orders_to_weights(day, day.target)


def calendar_policy(frequency: str) -> TriggerPolicy:
    """Rebalance to the target on the first day of each period."""
    return TriggerPolicy(Calendar(frequency), name=f"calendar {frequency}")


def band_policy(
    absolute: float | None = 0.05,
    relative: float | None = None,
    *,
    to_edge: bool = False,
) -> TriggerPolicy:
    """Rebalance when an asset leaves its band, to the target or the edge."""
    bands = DriftBands(absolute, relative)
    width = f"{absolute:g}" if absolute is not None else f"{relative:g} rel"
    return TriggerPolicy(
        bands,
        name=f"bands {width} to {'edge' if to_edge else 'target'}",
        to_edge=to_edge,
    )


def tracking_error_policy(threshold: float) -> TriggerPolicy:
    """Rebalance to the target when the ex-ante tracking error exceeds ``threshold``."""
    return TriggerPolicy(TrackingErrorTrigger(threshold), name=f"TE > {threshold:g}")
