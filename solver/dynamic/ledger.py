"""Tax-lot ledger of one account: cash, lots, US capital-gains tax.

Simplifications of the US rules (long term: held more than one year, as in
``models.tax.is_long_term``; costs add to buy basis and cut sale proceeds):

- Wash sales (IRC 1091) match a loss sale, earliest first, with shares of the
  same asset only, bought within ``wash_sale_days`` of it; shares bought
  before count while held and if not from the sold shares' purchase (Rev.
  Rul. 56-602). Other accounts are ignored. Matched shares take the loss into
  their basis and the sold shares' holding period (tacked on to a later buy's;
  for shares held together, counted once); a bigger lot is split.
- A loss is disallowed in the year of its sale, even when a January buy
  washes it, so a year is settled once its last wash-sale window has closed
  (:meth:`Ledger.settles_on`); a buy washing a settled year's loss is refused.
- First in, first out: oldest holding period first, then opening order.
- Net losses are deducted from ordinary income at the short-term rate, up to
  the limit, short-term part first; the rest carries forward by term. No state
  tax, NIIT, AMT, dividends or interest. Trades in date order. Closing values:
  :mod:`solver.dynamic.closing`.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pandas as pd

from models.errors import InputError
from models.lots import Lot, Realization
from models.tax import annual_tax
from solver.dynamic.tables import TRADE_COLUMNS, Trade, lot_table, trade_table
from solver.dynamic.tax_rules import (
    Booked,
    check_trade,
    is_long_term_on,
    require,
    year_gains,
)

_REL_TOL = 1e-9  # relative tolerance on cash and share quantities
_DAY_NS = 86_400 * 10**9


class Ledger:
    """Cash, tax lots, trades and capital-gains tax of one account.

    ``cash`` never goes below 0: settled tax it cannot cover is ``tax_owed``,
    which later deposits and sale proceeds pay first. ``realizations`` lists
    every sale, in order; ``loss_carryforward`` is the (short, long) capital
    loss carried to the next year, ``settled_through`` the last settled year.
    The tax parameters are kept as attributes.

    Parameters
    ----------
    cash : float
        Opening cash in currency, finite and >= 0.
    tax_rate_short, tax_rate_long : float
        Rates (fractions) on short- and long-term net gains.
    loss_deduction_limit : float
        Net capital loss deductible from ordinary income per year.
    wash_sale_days : int
        Half-width of the wash-sale window, in calendar days.

    Raises
    ------
    InputError
        Here and from every method, naming the asset, lot and field, on any
        bad value, date out of order or in a settled year, unknown lot id,
        oversale, or cash short of a buy, cost or withdrawal.
    """

    def __init__(
        self,
        cash: float,
        *,
        tax_rate_short: float = 0.408,
        tax_rate_long: float = 0.238,
        loss_deduction_limit: float = 3000.0,
        wash_sale_days: int = 30,
    ) -> None:
        require(np.isfinite(cash) and cash >= 0, f"bad cash {cash!r}", field="cash")
        rates = {"tax_rate_short": tax_rate_short, "tax_rate_long": tax_rate_long}
        for field, rate in rates.items():
            require(0 <= rate < 1, f"must be in [0, 1), got {rate!r}", field=field)
        require(loss_deduction_limit >= 0, "< 0", field="loss_deduction_limit")
        require(wash_sale_days >= 0, "< 0", field="wash_sale_days")
        self.cash, self.tax_owed = float(cash), 0.0
        self.realizations: list[Realization] = []
        self.tax_rate_short, self.tax_rate_long = tax_rate_short, tax_rate_long
        self.loss_deduction_limit = loss_deduction_limit
        self._annual_tax = partial(
            annual_tax,
            rates=(tax_rate_short, tax_rate_long),
            deduction_limit=loss_deduction_limit,
        )
        self._window = pd.Timedelta(days=wash_sale_days)
        self._lots: dict[str, Lot] = {}
        self._purchase: dict[str, int] = {}  # which buy each lot comes from
        self._replacements: set[str] = set()  # lots holding replacement shares
        self._washed: list[float] = []  # loss shares matched, per realization
        self._booked: Booked = []  # gains of unsettled years
        self._trades: list[Trade] = []
        self.loss_carryforward = (0.0, 0.0)  # short- and long-term, >= 0
        self.settled_through: int | None = None  # the last settled year
        self._last: pd.Timestamp | None = None
        self._lot_count = self._purchases = 0
        self._fifo: dict[str, tuple[int, int]] = {}  # lot id -> (acquired, opened)
        self._losses: dict[str, list[int]] = {}  # asset -> its loss sales
        self._of_asset: dict[str, dict[str, None]] = {}  # asset -> its lot ids
        self._held: dict[str, float] = {}  # asset -> shares in its lots

    def buy(
        self,
        date: pd.Timestamp,
        asset: str,
        quantity: float,
        price: float,
        cost: float = 0.0,
    ) -> Lot:
        """Buy ``quantity`` shares at ``price``; ``cost`` adds to the basis.

        Shares that replace earlier loss sales form one lot per sale, ahead of
        the unmatched rest; the first lot created is returned.
        """
        day = self._day(date, trade=True)
        check_trade(quantity, price, cost, asset=asset)
        quantity, price, cost = float(quantity), float(price), float(cost)
        total = quantity * price + cost
        if total - self.cash > _REL_TOL * total:
            raise InputError(f"needs {total:.2f}", asset=asset, field="cash")
        start, losses = day - self._window, self._losses.get(asset, [])
        first = len(losses)
        while first and self.realizations[losses[first - 1]].date >= start:
            first -= 1  # sales are in date order: look only inside the window
        for index in losses[first:]:  # refused before anything changes
            sale, done = self.realizations[index], self.settled_through
            if sale.quantity - self._washed[index] > _REL_TOL * quantity:
                if done is not None and (year := sale.date.year) <= done:
                    problem = f"washes a {sale.date.date()} loss of settled year {year}"
                    raise InputError(
                        problem, asset=asset, lot_id=sale.lot_id, field="date"
                    )
                break  # the loss it washes first; the rest are of later years
        self.cash, self._last = max(self.cash - total, 0.0), day
        self._trades.append((asset, day, "buy", quantity, price, np.nan))
        self._purchases += 1
        basis, left, created = price + cost / quantity, quantity, list[Lot]()
        for index in losses[first:]:
            sale = self.realizations[index]
            matched = min(left, sale.quantity - self._washed[index])
            if matched <= _REL_TOL * quantity:
                continue
            self._wash(index, matched)
            acquired = day - (sale.date - sale.acquired)
            adjusted = basis - sale.gain / sale.quantity
            created.append(self._new_lot(asset, matched, adjusted, acquired))
            self._replacements.add(created[-1].lot_id)
            left -= matched
        if left > _REL_TOL * quantity:
            created.append(self._new_lot(asset, left, basis, day))
        return created[0]

    def sell(
        self,
        date: pd.Timestamp,
        lot_id: str,
        quantity: float,
        price: float,
        cost: float = 0.0,
    ) -> Realization:
        """Sell shares of a lot at ``price``; ``cost`` reduces the proceeds."""
        day = self._day(date, trade=True)
        lot = self._lots.get(lot_id)
        if lot is None:
            raise InputError("unknown lot id", lot_id=lot_id, field="lot_id")
        asset, where = lot.asset, {"asset": lot.asset, "lot_id": lot_id}
        check_trade(quantity, price, cost, **where)
        quantity, price, cost = float(quantity), float(price), float(cost)
        ok = quantity <= lot.quantity * (1 + _REL_TOL)
        if not ok:
            problem = f"sells {quantity!r} of {lot.quantity!r}"
            raise InputError(problem, **where, field="quantity")
        quantity = min(quantity, lot.quantity)
        proceeds = quantity * price - cost
        ok = self.cash + proceeds >= -_REL_TOL * cost
        require(ok, "cash cannot pay the cost", **where, field="cash")
        self.cash, self._last = max(self.cash + proceeds, 0.0), day
        basis, long_term = quantity * lot.cost_basis, is_long_term_on(lot.acquired, day)
        gain, held = proceeds - basis, lot.acquired
        row = (day, asset, lot_id, quantity, proceeds, basis, gain, long_term, held)
        self.realizations.append(Realization(*row))
        self._washed.append(0.0)
        self._booked.append((day.year, long_term, gain))
        self._trades.append((asset, day, "sell", quantity, price, gain))
        purchase = self._purchase[lot_id]
        if lot.quantity - quantity <= _REL_TOL * lot.quantity:
            del self._lots[lot_id], self._purchase[lot_id], self._fifo[lot_id]
            del self._of_asset[asset][lot_id]
            self._held[asset] -= quantity
            if not self._of_asset[asset]:
                del self._held[asset]
            self._replacements.discard(lot_id)
        else:
            self._lots[lot_id] = lot.with_quantity(lot.quantity - quantity)
            self._held[asset] -= quantity
        if gain < 0:
            self._losses.setdefault(asset, []).append(len(self.realizations) - 1)
            self._wash_with_earlier_buys(len(self.realizations) - 1, purchase)
        self._pay_tax_owed()
        return self.realizations[-1]

    def deposit(self, amount: float) -> None:
        """Add cash (negative: withdraw, at most the cash); pay ``tax_owed`` first."""
        require(np.isfinite(amount), f"not finite: {amount!r}", field="amount")
        ok = self.cash + amount >= -_REL_TOL * abs(amount)
        require(ok, f"withdraws more than cash {self.cash:.2f}", field="amount")
        self.cash = max(self.cash + amount, 0.0)
        self._pay_tax_owed()

    def lots(self) -> pd.DataFrame:
        """Return the open lots: the ``lots`` table columns, one row per lot."""
        rows = [
            (lot.asset, lot.lot_id, lot.quantity, lot.cost_basis, lot.acquired)
            for lot in self._lots.values()
        ]
        return lot_table(rows)

    def lot(self, lot_id: str) -> Lot | None:
        """Return an open lot by id (``None`` once sold in full)."""
        return self._lots.get(lot_id)

    def fifo(self, asset: str | None = None) -> list[Lot]:
        """Return the open lots (of ``asset``, or all), first in first out."""
        ids = self._lots if asset is None else self._of_asset.get(asset, ())
        return [self._lots[i] for i in sorted(ids, key=self._fifo.__getitem__)]

    def shares(self) -> dict[str, float]:
        """Return the shares held per asset."""
        return dict(self._held)

    def settles_on(self, year: int) -> pd.Timestamp:
        """Return the first day ``year`` can be settled: its wash windows closed."""
        return pd.Timestamp(year, 12, 31) + self._window + pd.Timedelta(days=1)

    def market_value(self, prices: pd.Series) -> float:
        """Return lots at ``prices`` (index ``asset``) + cash - ``tax_owed``.

        Every held asset's price is checked finite and > 0.
        """
        require(prices.index.is_unique, "duplicate asset", field="price")
        price_of, values = prices.to_dict(), []
        for lot in self._lots.values():
            price = float(price_of.get(lot.asset, np.nan))
            ok = np.isfinite(price) and price > 0
            if not ok:
                raise InputError(f"bad price {price!r}", asset=lot.asset, field="price")
            values.append(lot.quantity * price)
        return sum(values) + self.cash - self.tax_owed

    def recent_trades(
        self,
        date: pd.Timestamp,
        days: int = 30,
        columns: tuple[str, ...] = TRADE_COLUMNS,
    ) -> pd.DataFrame:
        """Return the trades dated in ``[date - days, date]``, oldest first.

        ``columns`` of :data:`TRADE_COLUMNS`; ``realized_gain`` is the gain
        before wash sales, NaN for buys.
        """
        day = self._day(date, trade=False)
        start = day - pd.Timedelta(days=days)
        first = len(self._trades)
        while first and self._trades[first - 1][1] >= start:
            first -= 1  # trades are in date order: read only the window
        rows = [trade for trade in self._trades[first:] if trade[1] <= day]
        return trade_table(rows, columns)

    def settle_year(self, year: int) -> float:
        """Tax a calendar year's allowed gains and losses, and debit cash.

        Returns the tax, negative for the benefit of a deducted net loss.
        Years are settled in order, each once (else ``InputError``).
        """
        done = self.settled_through
        require(done is None or year > done, f"settled through {done}", field="year")
        earlier = min((y for y, _, _ in self._booked), default=year)
        due = earlier if done is None else done + 1  # a year without sales too
        require(due >= year, f"settle {due} first", field="year")
        gains = year_gains(self._booked, year)
        tax, self.loss_carryforward = self._annual_tax(gains, self.loss_carryforward)
        self.settled_through = year
        self._booked = [entry for entry in self._booked if entry[0] > year]
        self.tax_owed += tax  # paid from cash next line; a benefit (< 0) too
        self._pay_tax_owed()
        return tax

    def copy(self) -> Ledger:
        """Return an independent copy (records are shared: they never change)."""
        other = copy.copy(self)
        for name in ("_lots", "_purchase", "_fifo", "_booked", "_held", "_trades"):
            setattr(other, name, copy.copy(getattr(self, name)))
        for name in ("realizations", "_washed", "_replacements"):
            setattr(other, name, copy.copy(getattr(self, name)))
        other._of_asset = {a: dict(ids) for a, ids in self._of_asset.items()}
        other._losses = {a: list(sales) for a, sales in self._losses.items()}
        return other

    def unsettled_years(self) -> list[int]:
        """Return the years with booked gains or losses not yet settled."""
        return sorted({year for year, _, _ in self._booked})

    def _day(self, date: object, *, trade: bool) -> pd.Timestamp:
        """Return ``date`` at midnight, not before the last accepted trade.

        No time zones: the ledger's tables read dates as naive.
        """
        if isinstance(date, pd.Timestamp) and date.tz is None:
            day = date if not date.value % _DAY_NS else date.normalize()
        else:
            parsed = pd.to_datetime(date, errors="coerce")  # type: ignore[call-overload]
            if not isinstance(parsed, pd.Timestamp) or parsed.tz is not None:
                raise InputError(f"not a date, or zoned: {date!r}", field="date")
            day = parsed.normalize()
        ok = self._last is None or day >= self._last
        if not ok:
            raise InputError(f"{day.date()} is before the last trade", field="date")
        if trade:
            done = self.settled_through
            if done is not None and day.year <= done:
                raise InputError(f"{done} settled", field="date")
        return day

    def _new_lot(
        self, asset: str, quantity: float, basis: float, acquired: pd.Timestamp
    ) -> Lot:
        """Open a lot of the latest purchase with the next id."""
        self._lot_count += 1
        lot = Lot(f"{asset}-{self._lot_count}", asset, quantity, basis, acquired)
        self._lots[lot.lot_id], self._purchase[lot.lot_id] = lot, self._purchases
        self._fifo[lot.lot_id] = (acquired.value, self._lot_count)
        self._held[asset] = self._held.get(asset, 0.0) + quantity
        self._of_asset.setdefault(asset, {})[lot.lot_id] = None
        return lot

    def _wash(self, index: int, matched: float) -> None:
        """Disallow the loss on ``matched`` shares of a sale, in the sale's year."""
        sale = self.realizations[index]
        amount = -sale.gain / sale.quantity * matched
        self.realizations[index] = sale.with_disallowed(sale.disallowed + amount)
        self._washed[index] += matched
        self._booked.append((sale.date.year, sale.long_term, amount))

    def _wash_with_earlier_buys(self, index: int, purchase: int) -> None:
        """Match a loss sale with held shares bought in the window before it.

        Their holding period includes the sold shares', counted once where the
        two overlap: it starts when the earlier of the two began.
        """
        sale = self.realizations[index]
        start = (sale.date - self._window).value
        candidates = []
        # lots that are not replacements are opened in date order: newest first
        for lot_id in reversed(self._of_asset.get(sale.asset, {})):
            if lot_id in self._replacements:
                continue
            held_from = self._fifo[lot_id][0]  # the lot's acquired date, in ns
            if held_from < start:
                break
            if self._purchase[lot_id] != purchase:
                candidates.append((held_from, self._purchase[lot_id], lot_id))
        if not candidates:
            return
        candidates.sort()
        per_share, since = -sale.gain / sale.quantity, sale.acquired
        for *_, lot_id in candidates:
            lot, left = self._lots[lot_id], sale.quantity - self._washed[index]
            if left <= _REL_TOL * sale.quantity:
                break
            matched = min(left, lot.quantity)
            self._wash(index, matched)
            basis, acquired = lot.cost_basis + per_share, min(lot.acquired, since)
            if lot.quantity - matched > _REL_TOL * lot.quantity:
                self._lots[lot_id] = lot.with_quantity(lot.quantity - matched)
                self._held[lot.asset] -= matched  # back in the lot opened next
                lot = self._new_lot(lot.asset, matched, basis, acquired)
                self._purchase[lot.lot_id] = self._purchase[lot_id]
            else:
                self._lots[lot_id] = Lot(
                    lot_id, lot.asset, lot.quantity, basis, acquired
                )
                self._fifo[lot_id] = (acquired.value, self._fifo[lot_id][1])
            self._replacements.add(lot.lot_id)

    def _pay_tax_owed(self) -> None:
        """Pay as much of ``tax_owed`` as cash allows."""
        paid = min(self.cash, self.tax_owed)
        self.cash, self.tax_owed = self.cash - paid, self.tax_owed - paid
