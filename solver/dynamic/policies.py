"""Rebalancing policies for the backtest: whether to trade today, and what.

A policy sees the day (:class:`Day`, plain arrays over the target's assets)
and returns :class:`Orders` or ``None``. The rule-based policies (calendar,
bands, tracking-error trigger) trade to the target, or to the band's edge,
selling lots first-in first-out as a broker does by default: they are
tax-blind. :class:`OptimizerPolicy` asks :func:`solver.rebalance` what to
trade, with its costs, taxes and wash-sale rule.
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
from models.errors import InputError
from models.lots import Lot
from models.snapshot import CASH
from models.tax import lot_tax_rates
from models.terms import Constraint, Term, TradeRule
from solver.api import rebalance
from solver.dynamic.tax_rules import is_long_term_on
from solver.result import SolveOptions, Status
from solver.triggers import Calendar, Drift, DriftBands, TrackingErrorTrigger, Trigger

if TYPE_CHECKING:
    from solver.dynamic.ledger import Ledger

SHARE_TOLERANCE = 1e-9  # share changes smaller than this are not traded
NO_TRADE_TOLERANCE = 1e-7  # objective a skipped solve may leave, fraction of V


@dataclass(frozen=True)
class Risk:
    """An annualised covariance over the day's assets; its risk model on demand."""

    assets: pd.Index
    covariance: np.ndarray

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


@dataclass(frozen=True)
class OptimizerPolicy:
    """Ask the optimizer every ``every`` days when trading can pay.

    The policy's objective is ``tracking_error_weight`` times the squared
    tracking error plus ``trade_aversion`` times the linear cost plus
    ``tax_weight`` times the tax (when tax-aware); the account still pays the
    true cost and tax. A trade aversion above 1 widens the no-trade region, as
    multi-period theory asks of a one-period objective (a day's tracking
    error against a cost paid once). Before solving, a first-order test
    proves when no trade is optimal (:meth:`holds`); the solver then does not
    run.

    Parameters
    ----------
    tracking_error_weight : float
        Weight of the squared (annualised) tracking error.
    tax_aware : bool
        Taxes (and harvested losses, scaled by ``loss_factor``) enter the
        objective, lots are chosen by tax and wash sales are avoided. When
        False, the optimizer's sales per asset are taken from lots first in
        first out.
    every : int
        Trading days between two looks (1 = daily).
    trade_aversion : float
        Multiplier of the linear cost in the objective, >= 0.
    tax_weight : float
        Weight of the tax in the objective, >= 0. Equal to ``trade_aversion``,
        cost and tax keep their true ratio and a loss is harvested whenever
        its tax value beats the cost of the trades; 1 prices tax at its face
        value against the tracking error.
    loss_factor : float
        Share of a realised loss's tax value the objective counts, in [0, 1]:
        below 1, a loss is harvested only when worth more than its costs
        and tracking error by that margin.
    name : str
        Label in the results.
    """

    tracking_error_weight: float = 100.0
    tax_aware: bool = True
    every: int = 1
    trade_aversion: float = 1.0
    tax_weight: float = 1.0
    loss_factor: float = 1.0
    name: str = "optimizer"

    def decide(self, day: Day) -> Orders | None:
        """Return the optimizer's orders on a look day, else ``None``."""
        if day.index % self.every or self.holds(day):
            return None
        result = rebalance(
            self._account(day),
            targets=self._targets(day),
            market=self._market(day),
            objective=self.objective(),
            constraints=self._constraints(),
            options=SolveOptions(rounding="nearest"),
        )
        if result.status not in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE):
            return None
        trades = result.trades
        side = trades["side"].to_numpy()
        quantity = trades["quantity"].to_numpy(float)
        # every traded asset has a price, so it is one of the day's assets
        where = day.assets.get_indexer(pd.Index(trades["asset"]))
        bought, sold = side == "buy", side == "sell"

        def per_asset(rows: np.ndarray) -> np.ndarray:
            shares: np.ndarray = np.bincount(
                where[rows], weights=quantity[rows], minlength=len(day.assets)
            )
            return shares

        if self.tax_aware:
            lot_ids = trades["lot_id"].to_numpy()[sold]
            sells = dict(zip(lot_ids, quantity[sold], strict=True))
        else:
            sells = fifo_sells(day.ledger, day.assets, per_asset(sold))
        orders = Orders(per_asset(bought), sells)
        return None if orders.empty else orders

    def objective(self) -> tuple[Term, ...]:
        """Return the policy's objective terms."""
        terms: list[Term] = [
            TrackingError(self.tracking_error_weight),
            LinearCost(self.trade_aversion),
        ]
        if self.tax_aware:
            terms.append(TaxCost(self.loss_factor, weight=self.tax_weight))
        return tuple(terms)

    def holds(self, day: Day) -> bool:
        """Return whether no trade is provably optimal for the policy's program.

        In the program's variables (buys and lot sales as fractions of V, all
        >= 0) the objective is convex and, but for the tracking error, linear,
        with slopes at zero ``g_i + k c_i`` for a buy and ``-g_i + k c_i + t
        tax_l`` for a lot sale (``g = 2 lambda Sigma (w0 - w_tgt)``, ``k`` the
        trade aversion, ``t`` the tax weight). If no
        sale and no buy funded by a sale has a negative slope, convexity bounds
        what any trade can gain by the slope of the best buy times the cash
        it may spend; the test holds when that bound is at most
        ``NO_TRADE_TOLERANCE`` (exactly zero when there is no cash).
        Constraints only remove trades, so the test holds with them too.
        """
        value = float(day.shares @ day.prices) + day.ledger.cash
        if value <= 0:
            return False
        active = day.shares * day.prices / value - day.target
        gradient = 2 * self.tracking_error_weight * (day.risk.covariance @ active)
        rate = day.cost_bps / 1e4
        best_buy = float((gradient + self.trade_aversion * rate).min())
        lots = day.ledger.fifo()
        if lots:
            sells = self._sale_slopes(day, gradient, lots)
            funded = best_buy + (1 + rate) / (1 - rate) * float(sells.min())
            if sells.min() < 0 or funded < 0:
                return False
        gain_bound = max(-best_buy, 0.0) * day.ledger.cash / value / (1 + rate)
        return gain_bound <= NO_TRADE_TOLERANCE

    def _sale_slopes(
        self, day: Day, gradient: np.ndarray, lots: list[Lot]
    ) -> np.ndarray:
        """Return the objective's slope at zero of selling each lot."""
        where = day.assets.get_indexer(pd.Index([lot.asset for lot in lots]))
        if (where < 0).any():
            unknown = lots[int(np.argmax(where < 0))]
            raise InputError(
                "held, but not one of the day's assets",
                asset=unknown.asset,
                lot_id=unknown.lot_id,
                field="asset",
            )
        costs = np.full(len(lots), self.trade_aversion * day.cost_bps / 1e4)
        if self.tax_aware:
            basis = np.array([lot.cost_basis for lot in lots])
            long_term = np.array([is_long_term_on(x.acquired, day.date) for x in lots])
            rates = lot_tax_rates(
                long_term,
                tax_rate_short=day.ledger.tax_rate_short,
                tax_rate_long=day.ledger.tax_rate_long,
            )
            tax = TaxCost(loss_factor=self.loss_factor)
            lot_tax = tax.lot_costs(rates, 1.0 - basis / day.prices[where])
            costs = costs + self.tax_weight * lot_tax
        slopes: np.ndarray = -gradient[where] + costs
        return slopes

    def _targets(self, day: Day) -> pd.Series:
        """Return the day's target weights, the rest of 1 as the cash target."""
        targets = pd.Series(day.target, index=day.assets)
        cash = 1.0 - float(day.target.sum())
        return pd.concat([targets, pd.Series({CASH: cash})]) if cash > 0 else targets

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
            {"asset": day.assets, "price": day.prices, "cost_bps": day.cost_bps}
        )
        return Market(as_of=day.date, prices=prices, risk_model=day.risk.model)

    def _constraints(self) -> list[Constraint | TradeRule]:
        rules: list[Constraint | TradeRule] = [MinCash(0.0), NoBuyAndSell()]
        if self.tax_aware:
            rules.append(WashSaleRule())
        return rules
