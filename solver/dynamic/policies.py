"""Rebalancing policies for the backtest: whether to trade today, and what.

A policy sees the day (:class:`Day`) and returns :class:`Orders` or ``None``.
The rule-based policies (calendar, bands, tracking-error trigger) trade to
the target, or to the band's edge, selling lots first-in first-out as a
broker does by default: they are tax-blind. :class:`OptimizerPolicy` asks
:func:`solver.rebalance` what to trade, with its costs, taxes and wash-sale
rule; its costs give it its own no-trade region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from models import (
    Account,
    CovarianceRiskModel,
    LinearCost,
    Market,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.terms import Constraint, Term, TradeRule
from solver.api import rebalance
from solver.result import SolveOptions, Status
from solver.triggers import Calendar, Drift, DriftBands, TrackingErrorTrigger, Trigger

if TYPE_CHECKING:
    from solver.dynamic.ledger import Ledger


@dataclass(frozen=True)
class Day:
    """What a policy sees on one trading day, before it trades."""

    date: pd.Timestamp
    index: int  # trading days since the start
    prices: pd.Series  # index asset
    target: pd.Series  # index asset; the rest of 1 is the cash target
    ledger: Ledger
    risk: CovarianceRiskModel  # annualised, estimated from past returns only
    last_rebalance: pd.Timestamp | None
    cost_bps: float

    @cached_property
    def value(self) -> float:
        """Account value: positions at today's prices plus cash, less tax owed."""
        return self.ledger.market_value(self.prices)

    def weights(self) -> pd.Series:
        """Return the current weight of each asset of the target."""
        held = self.ledger.positions().reindex(self.target.index, fill_value=0.0)
        return held * self.prices[self.target.index] / self.value

    def drift(self) -> Drift:
        """Return the account's drift for the triggers."""
        current = self.weights().to_numpy()
        target = self.target.to_numpy(dtype=float)
        active = current - target
        matrix = self.risk.covariance
        cov = matrix.loc[self.target.index, self.target.index].to_numpy()
        return Drift(
            account_id="backtest",
            as_of=self.date,
            universe=self.target.index,
            current=current,
            target=target,
            cash=self.ledger.cash / self.value,
            target_cash=1.0 - float(target.sum()),
            tracking_error=float(np.sqrt(max(active @ cov @ active, 0.0))),
            last_rebalance=self.last_rebalance,
        )


@dataclass(frozen=True)
class Orders:
    """Shares to buy per asset and shares to sell per lot."""

    buys: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    sells: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    @property
    def empty(self) -> bool:
        """Whether there is nothing to trade."""
        return not (len(self.buys) or len(self.sells))


class Policy(Protocol):
    """Decides each day whether to trade and what."""

    name: str

    def decide(self, day: Day) -> Orders | None:
        """Return today's orders, or ``None`` to leave the account as it is."""
        ...


def orders_to_weights(day: Day, weights: pd.Series) -> Orders:
    """Return the orders that move the account to ``weights``, selling FIFO."""
    value = day.value
    assets = weights.index
    held = day.ledger.positions().reindex(assets, fill_value=0.0)
    wanted = weights * value / day.prices[assets]
    change = wanted - held
    buys = change[change > 1e-9]
    lots = day.ledger.lots().sort_values(["acquired", "lot_id"], kind="stable")
    ids, quantities = lots["lot_id"].to_numpy(str), lots["quantity"].to_numpy(float)
    of_asset = lots["asset"].to_numpy(str)
    sells: dict[str, float] = {}
    for asset, shares in (-change[change < -1e-9]).items():
        for k in np.flatnonzero(of_asset == asset):
            if shares <= 1e-12:
                break
            sold = min(float(quantities[k]), shares)
            sells[str(ids[k])] = sold
            shares -= sold
    # positions not in the target are sold outright
    for k in np.flatnonzero(~np.isin(of_asset, assets.to_numpy(str))):
        sells[str(ids[k])] = float(quantities[k])
    return Orders(buys.astype(float), pd.Series(sells, dtype=float))


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
            weights = self.trigger.edge_weights(drift)
            return orders_to_weights(day, pd.Series(weights, index=day.target.index))
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


@dataclass(frozen=True)
class OptimizerPolicy:
    """Ask the optimizer every ``every`` days; costs decide whether it trades.

    Parameters
    ----------
    tracking_error_weight : float
        Weight of the squared tracking error against costs and taxes.
    tax_aware : bool
        Whether taxes (and harvested losses) enter the objective; lots are
        then chosen by tax, and wash sales avoided.
    every : int
        Trading days between two looks (1 = daily).
    name : str
        Label in the results.
    """

    tracking_error_weight: float = 100.0
    tax_aware: bool = True
    every: int = 5
    name: str = "optimizer"

    def decide(self, day: Day) -> Orders | None:
        """Return the optimizer's orders on a look day, else ``None``."""
        if day.index % self.every:
            return None
        result = rebalance(
            self._account(day),
            targets=day.target,
            market=self._market(day),
            objective=self._objective(),
            constraints=self._constraints(),
            options=SolveOptions(rounding="nearest"),
        )
        if result.status not in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE):
            return None
        trades = result.trades
        buys = trades[trades["side"] == "buy"].groupby("asset")["quantity"].sum()
        sold = trades[trades["side"] == "sell"]
        sells = sold.set_index("lot_id")["quantity"].astype(float)
        orders = Orders(buys.astype(float), sells)
        return None if orders.empty else orders

    def _account(self, day: Day) -> Account:
        recent = day.ledger.recent_trades(day.date)
        return Account(
            "backtest",
            day.ledger.cash,
            day.ledger.lots(),
            recent_trades=recent if len(recent) else None,
            tax_rate_short=day.ledger.tax_rate_short,
            tax_rate_long=day.ledger.tax_rate_long,
            fractional_shares=True,
        )

    def _market(self, day: Day) -> Market:
        prices = pd.DataFrame(
            {
                "asset": day.prices.index,
                "price": day.prices.to_numpy(),
                "cost_bps": day.cost_bps,
            }
        )
        return Market(as_of=day.date, prices=prices, risk_model=day.risk)

    def _objective(self) -> tuple[Term, ...]:
        terms: list[Term] = [TrackingError(self.tracking_error_weight), LinearCost()]
        if self.tax_aware:
            terms.append(TaxCost())
        return tuple(terms)

    def _constraints(self) -> list[Constraint | TradeRule]:
        rules: list[Constraint | TradeRule] = [MinCash(0.0), NoBuyAndSell()]
        if self.tax_aware:
            rules.append(WashSaleRule())
        return rules
