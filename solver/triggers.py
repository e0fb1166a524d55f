"""Trigger policies: decide per account whether to trade now.

Dynamic rebalancing trades when the account calls for it, not by the
calendar alone. A trigger looks at an account's :class:`Drift` (current and
target weights, ex-ante tracking error, cash, last rebalance date) and
fires or not, with a reason. Triggers decide *when*; the optimizer decides
*what*. The backtest's band policy can also trade only back to the band's
edge (:meth:`DriftBands.edge_weights`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from models.errors import InputError
from models.snapshot import Snapshot

FREQUENCIES = ("monthly", "quarterly", "annual")
TOLERANCE = 1e-12  # weights within this of a band edge are inside


@dataclass(frozen=True)
class Drift:
    """Where an account stands against its targets, in fractions of V."""

    account_id: str
    as_of: pd.Timestamp
    universe: pd.Index
    current: np.ndarray
    target: np.ndarray
    cash: float
    target_cash: float
    tracking_error: float  # ex-ante, in the risk model's units
    last_rebalance: pd.Timestamp | None = None

    @classmethod
    def of(cls, s: Snapshot, last_rebalance: pd.Timestamp | None = None) -> Drift:
        """Return the drift of a snapshot."""
        return cls(
            account_id=s.account_id,
            as_of=s.as_of,
            universe=s.universe,
            current=s.current,
            target=s.target,
            cash=s.cash,
            target_cash=s.target_cash,
            tracking_error=float(np.sqrt(s.risk.variance(s.current - s.target))),
            last_rebalance=last_rebalance,
        )

    @property
    def drift(self) -> np.ndarray:
        """Current minus target weight per asset."""
        drift: np.ndarray = self.current - self.target
        return drift

    def largest(self, count: int) -> pd.Series:
        """Return the ``count`` largest drifts by size, signed, index asset."""
        order = np.argsort(-np.abs(self.drift), kind="stable")[:count]
        return pd.Series(self.drift[order], index=self.universe[order], name="drift")


@dataclass(frozen=True)
class Firing:
    """A trigger's decision and why."""

    trigger: str
    fired: bool
    reason: str


class Trigger(Protocol):
    """Decides from an account's drift whether it should trade now."""

    name: ClassVar[str]

    def check(self, d: Drift) -> Firing:
        """Return whether the trigger fires, and why."""
        ...


@dataclass(frozen=True, slots=True)
class Calendar:
    """Fire on the first check of each month, quarter or year.

    Fires when ``as_of`` is in a later period than the last rebalance, or
    when the account has never been rebalanced.
    """

    frequency: str = "quarterly"
    name: ClassVar[str] = "calendar"

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise InputError(
                f"must be one of {FREQUENCIES}, got {self.frequency!r}",
                field="calendar",
            )

    def check(self, d: Drift) -> Firing:
        """Fire in a new period."""
        if d.last_rebalance is None:
            return Firing(self.name, True, "never rebalanced")
        now, last = self._period(d.as_of), self._period(d.last_rebalance)
        if now > last:
            label = self._label(now)
            return Firing(self.name, True, f"new {self.frequency} period {label}")
        return Firing(self.name, False, f"last rebalanced in {self._label(last)}")

    def _period(self, day: pd.Timestamp) -> tuple[int, int]:
        """Return ``day``'s period as (year, month or quarter or 0), comparable."""
        if self.frequency == "monthly":
            return day.year, day.month
        if self.frequency == "quarterly":
            return day.year, (day.month - 1) // 3 + 1
        return day.year, 0

    def _label(self, period: tuple[int, int]) -> str:
        """Return a period as pandas prints it: 2026-03, 2026Q1 or 2026."""
        year, part = period
        if self.frequency == "monthly":
            return f"{year}-{part:02d}"
        return f"{year}Q{part}" if self.frequency == "quarterly" else f"{year}"


@dataclass(frozen=True, slots=True)
class DriftBands:
    """Fire when an asset leaves its band around the target weight.

    Parameters
    ----------
    absolute : float or None
        Band half-width in weight (0.05 = 5 percentage points).
    relative : float or None
        Band half-width as a fraction of the target weight (0.2 = 20%).
        With both, an asset's band is the narrower one: the "5/25" rule
        fires on 5 points or 25% of target, whichever comes first. An
        asset held but not targeted has a zero relative band.
    """

    absolute: float | None = 0.05
    relative: float | None = None
    name: ClassVar[str] = "drift_bands"

    def __post_init__(self) -> None:
        if self.absolute is None and self.relative is None:
            raise InputError("give absolute or relative bands", field=self.name)
        for value in (self.absolute, self.relative):
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"must be >= 0, got {value!r}", field=self.name)

    def bands(self, target: np.ndarray) -> np.ndarray:
        """Return each asset's band half-width."""
        band = np.full(len(target), np.inf)
        if self.absolute is not None:
            band = np.minimum(band, self.absolute)
        if self.relative is not None:
            band = np.minimum(band, self.relative * np.abs(target))
        return band

    def outside(self, d: Drift) -> np.ndarray:
        """Return which assets are outside their band."""
        outside: np.ndarray = np.abs(d.drift) > self.bands(d.target) + TOLERANCE
        return outside

    def check(self, d: Drift) -> Firing:
        """Fire when any asset is outside its band."""
        outside = self.outside(d)
        if not outside.any():
            return Firing(self.name, False, "every asset within its band")
        worst = int(np.argmax(np.where(outside, np.abs(d.drift), -1.0)))
        reason = (
            f"{int(outside.sum())} asset(s) outside their bands, largest "
            f"{d.universe[worst]} {d.drift[worst]:+.2%}"
        )
        return Firing(self.name, True, reason)

    def edge_weights(self, d: Drift) -> np.ndarray:
        """Return weights with each asset outside its band moved to the edge.

        The value this frees or needs is spread over the assets inside their
        bands in proportion to their targets, so the total invested stays
        the same (cash is left as it is); an asset the spread would push out
        of its band stops at the edge, and the rest goes to the others
        (water-filling). When they have no room left, the assets moved to
        an edge take the rest within their bands too; only when no band has
        room is it spread beyond them, never below zero.
        """
        band = self.bands(d.target)
        low, high = np.maximum(d.target - band, 0.0), d.target + band
        inside = ~self.outside(d)
        weights = np.where(inside, d.current, np.clip(d.current, low, high))
        everyone = np.ones(len(weights), bool)
        unbounded = np.full(len(weights), np.inf)
        for movable, floor, ceiling in (
            (inside, low, high),
            (everyone, low, high),
            (everyone, np.zeros(len(weights)), unbounded),
        ):
            weights = _spread(d, weights, movable, floor, ceiling)
        return weights


def _spread(
    d: Drift,
    weights: np.ndarray,
    movable: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """Spread what ``weights`` lack of the current total over ``movable`` assets.

    In proportion to their targets (alike if none with room is targeted),
    each stopping at ``low`` or ``high``.
    """
    for _ in range(len(weights)):
        freed = float(d.current.sum() - weights.sum())
        room = weights < high if freed > 0 else weights > low
        share = np.where(movable & room, d.target, 0.0)
        if share.sum() <= 0:  # only untargeted assets have room: alike
            share = (movable & room).astype(float)
        if freed == 0 or share.sum() <= 0:
            break
        spread: np.ndarray = weights + freed * share / share.sum()
        edge = np.clip(spread, low, high)
        stops = (share > 0) & (edge != spread)
        if not stops.any():
            return spread
        weights = np.where(stops, edge, weights)
    return weights


@dataclass(frozen=True, slots=True)
class TrackingErrorTrigger:
    """Fire when the ex-ante tracking error exceeds ``threshold``."""

    threshold: float
    name: ClassVar[str] = "tracking_error"

    def check(self, d: Drift) -> Firing:
        """Fire above the threshold."""
        fired = d.tracking_error > self.threshold
        relation = ">" if fired else "<="
        reason = (
            f"tracking error {d.tracking_error:.3%} {relation} {self.threshold:.3%}"
        )
        return Firing(self.name, fired, reason)


@dataclass(frozen=True, slots=True)
class CashFlow:
    """Fire when cash is off its target by more than ``threshold`` of V.

    A deposit shows as excess cash; a withdrawal to fund (a cash floor above
    the cash held) as a shortfall.
    """

    threshold: float
    name: ClassVar[str] = "cash_flow"

    def check(self, d: Drift) -> Firing:
        """Fire on a large deposit or withdrawal."""
        gap = d.cash - d.target_cash
        fired = abs(gap) > self.threshold
        kind = "excess cash" if gap > 0 else "cash shortfall"
        return Firing(self.name, fired, f"{kind} {abs(gap):.2%} of value")


@dataclass(frozen=True)
class AnyTrigger:
    """Fire when any of ``triggers`` fires."""

    triggers: tuple[Trigger, ...]
    name: ClassVar[str] = "any"

    def check(self, d: Drift) -> Firing:
        """Fire if one fires; the reason lists those that did (or all)."""
        firings = [t.check(d) for t in self.triggers]
        fired = [f for f in firings if f.fired]
        shown = fired or firings
        reason = "; ".join(f"{f.trigger}: {f.reason}" for f in shown)
        return Firing(self.name, bool(fired), reason)


def parse_trigger(text: str) -> Trigger:
    """Return the trigger a CLI or config string names.

    ``calendar:monthly``, ``drift:0.05`` (absolute band), ``relative-drift:0.2``,
    ``tracking-error:0.01``, ``cash:0.02``.
    """
    kind, _, value = text.partition(":")
    kind = kind.strip().replace("_", "-")
    try:
        if kind == "calendar":
            return Calendar(value or "quarterly")
        number = float(value)
    except ValueError:
        raise InputError(f"cannot read trigger {text!r}", field="trigger") from None
    makers: dict[str, Callable[[float], Trigger]] = {
        "drift": lambda x: DriftBands(absolute=x),
        "relative-drift": lambda x: DriftBands(absolute=None, relative=x),
        "tracking-error": TrackingErrorTrigger,
        "cash": CashFlow,
    }
    if kind not in makers:
        raise InputError(
            f"unknown trigger {kind!r}; use calendar, {', '.join(makers)}",
            field="trigger",
        )
    return makers[kind](number)


def parse_triggers(texts: Sequence[str]) -> AnyTrigger | None:
    """Return a trigger firing when any named one does; ``None`` for none."""
    if not texts:
        return None
    return AnyTrigger(tuple(parse_trigger(t) for t in texts))


def solved_whatever_triggers(household_id: str | None, cash_flow: float) -> str:
    """Say why an account is solved whatever the triggers, or ``""``.

    A household is always solved together (the batch never gates one), and
    a cash flow is always traded (``solver.rebalance`` skips the trigger).
    """
    if household_id is not None:
        return f"household {household_id}: triggers do not gate households"
    if cash_flow:
        return f"cash flow of {cash_flow:,.2f}: always traded"
    return ""
