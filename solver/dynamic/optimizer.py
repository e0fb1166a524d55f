"""The optimizer's policy for the backtest: trade when trading pays.

Each look day, a first-order test proves when no trade is optimal; else
the account's snapshot is built from the ledger and solved as
:func:`solver.rebalance` would solve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from models import (
    LinearCost,
    Market,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.account import RECENT_TRADE_COLUMNS
from models.errors import InputError
from models.lots import Lot
from models.snapshot import AccountParts, Snapshot, assemble_snapshot
from models.tax import lot_tax_rates
from models.terms import Constraint, Term, TradeRule
from models.universe import Universe, on_universe
from solver.api import solve_snapshot
from solver.dynamic.policies import Day, Orders, Risk, fifo_sells
from solver.dynamic.tax_rules import is_long_term_on
from solver.result import SolveOptions, Status

ACCOUNT = "backtest"  # the account id errors name
GAIN = "realized_gain"  # the recent trades' optional column, NaN for buys
NO_TRADE_TOLERANCE = 1e-7  # objective a skipped solve may leave, fraction of V


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
    risk_shrinkage : float
        In [0, 1]: the policy weighs tracking error with the day's covariance
        shrunk this far towards equal, uncorrelated variances
        (:meth:`Risk.shrunk`), in its objective and its zero-trade test.
        Realized tracking error is still the account's own.
    name : str
        Label in the results.

    Raises
    ------
    InputError
        A parameter out of its range, naming it.
    """

    tracking_error_weight: float = 100.0
    tax_aware: bool = True
    every: int = 1
    trade_aversion: float = 1.0
    tax_weight: float = 1.0
    loss_factor: float = 1.0
    risk_shrinkage: float = 0.0
    name: str = "optimizer"
    # the universe's numbers under the current risk estimate (``_universe``)
    _kept: dict[Any, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # the current risk estimate and its shrunk copy (``_shrunk``)
    _shrinking: list[Risk] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        ranges = {
            "tracking_error_weight": (self.tracking_error_weight, 0.0, np.inf),
            "trade_aversion": (self.trade_aversion, 0.0, np.inf),
            "tax_weight": (self.tax_weight, 0.0, np.inf),
            "loss_factor": (self.loss_factor, 0.0, 1.0),
            "risk_shrinkage": (self.risk_shrinkage, 0.0, 1.0),
        }
        for name, (value, low, high) in ranges.items():
            if not low <= value <= high:  # NaN fails too
                raise InputError(
                    f"must be in [{low}, {high}], got {value!r}", field=name
                )
        if self.every < 1:
            raise InputError(f"must be >= 1, got {self.every!r}", field="every")

    def decide(self, day: Day) -> Orders | None:
        """Return the optimizer's orders on a look day, else ``None``."""
        if day.index % self.every:
            return None
        if self.risk_shrinkage:
            day = replace(day, risk=self._shrunk(day.risk))
        if self.holds(day):
            return None
        result = solve_snapshot(
            self._snapshot(day),
            self.objective(),
            self._constraints(),
            SolveOptions(rounding="nearest"),
            fractional=True,
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
        if value <= 0 or day.ledger.tax_owed > 0:  # owed tax is raised by sales
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
        assets = pd.Index([lot.asset for lot in lots])
        where = _positions(day, assets, [lot.lot_id for lot in lots])
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

    def _snapshot(self, day: Day) -> Snapshot:
        """Return the account's snapshot, built from the ledger's clean tables.

        What :func:`solver.rebalance` would build from the ledger as an
        ``Account`` and the day as a ``Market``, without checking again what
        the ledger keeps checked; the prices' and risk's numbers on the
        universe are computed once per risk estimate. Tax owed (settled,
        more than the cash) is a withdrawal: the first sales pay it.
        """
        ledger = day.ledger
        lots = ledger.lots()  # every open lot holds shares: the ledger drops sold ones
        held = lots["asset"].to_numpy(dtype=object)
        risky = day.assets[day.target > 0].to_numpy(dtype=object)
        universe = pd.Index(np.union1d(risky, held), name="asset", dtype=str)
        where = _positions(day, universe)
        recent = ledger.recent_trades(day.date, columns=(*RECENT_TRADE_COLUMNS, GAIN))
        cash_target = 1.0 - float(day.target.sum())
        parts = AccountParts(
            account_id=ACCOUNT,
            cash=ledger.cash,
            cash_flow=-ledger.tax_owed,  # settled tax cash did not cover: raised
            lots=lots,
            recent_trades=recent if len(recent) else None,
            tax_rates=(ledger.tax_rate_short, ledger.tax_rate_long),
            taxable=True,
        )
        return assemble_snapshot(
            parts,
            as_of=pd.Timestamp(day.date).normalize(),
            universe=universe,
            shared=self._universe(day, universe).at_prices(
                day.prices[where], universe, ACCOUNT
            ),
            target=day.target[where],
            target_cash=cash_target if cash_target > 0 else 0.0,
        )

    def _universe(self, day: Day, universe: pd.Index) -> Universe:
        """Return the universe's numbers and risk root, kept per risk estimate.

        Checked once through a ``Market`` of the day (the prices change
        each day, the risk monthly): the same numbers ``rebalance`` uses.
        """
        key = (day.cost_bps, tuple(universe))
        kept = self._kept.get(key)
        if kept is not None and kept[0] is day.risk:  # the same estimate
            known: Universe = kept[1]
            return known
        prices = pd.DataFrame(
            {"asset": day.assets, "price": day.prices, "cost_bps": day.cost_bps}
        )
        market = Market(as_of=day.date, prices=prices, risk_model=day.risk.model)
        shared = on_universe(market, universe, ACCOUNT)
        self._kept.clear()  # one risk estimate at a time
        self._kept[key] = (day.risk, shared)
        return shared

    def _shrunk(self, risk: Risk) -> Risk:
        """Return the shrunk risk: one object per estimate, as ``_universe`` keeps."""
        if not self._shrinking or self._shrinking[0] is not risk:
            self._shrinking[:] = [risk, risk.shrunk(self.risk_shrinkage)]
        return self._shrinking[1]

    def _constraints(self) -> list[Constraint | TradeRule]:
        rules: list[Constraint | TradeRule] = [MinCash(0.0), NoBuyAndSell()]
        if self.tax_aware:
            rules.append(WashSaleRule())
        return rules


def _positions(
    day: Day, assets: pd.Index, lot_ids: list[str] | None = None
) -> np.ndarray:
    """Return where each of ``assets`` is among the day's; raise naming one not.

    ``lot_ids``, when the assets are lots' (one each), name the lot too.
    """
    where = day.assets.get_indexer(assets)
    if (where < 0).any():
        k = int(np.argmax(where < 0))
        raise InputError(
            "held, but not one of the day's assets (no price)",
            account_id=ACCOUNT,
            asset=str(assets[k]),
            lot_id=None if lot_ids is None else lot_ids[k],
            field="asset",
        )
    return where
