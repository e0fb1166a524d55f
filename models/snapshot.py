"""An account's data aligned to its universe, as numpy arrays.

Every vector is a fraction of the pre-trade value ``V`` unless its name says
otherwise; ``universe`` orders the assets and ``lot_ids`` the lots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models._align import align, by_asset, first_repeat
from models.account import Account
from models.errors import InputError
from models.market import Market
from models.risk import RiskRoot
from models.tax import is_long_term, lot_tax_rates
from models.universe import Universe, on_universe

CASH = "CASH"
TARGET_SUM_TOLERANCE = 1e-6

Targets = pd.Series | Mapping[str, float] | pd.DataFrame  # weights by asset


@dataclass(frozen=True)
class Snapshot:
    """Aligned numeric state of one account before trading."""

    account_id: str
    as_of: pd.Timestamp
    universe: pd.Index
    value: float  # V, currency: holdings, cash and the cash flow
    cash: float  # fraction of V, with the cash flow (< 0: a withdrawal to raise)
    prices: np.ndarray  # currency per share
    current: np.ndarray  # w0
    target: np.ndarray  # risky target weights; the rest is the cash target
    target_cash: float
    cost_rate: np.ndarray  # linear cost per unit traded (bps / 1e4)
    lot_size: np.ndarray  # shares
    min_trade_value: np.ndarray  # currency
    tax_drag: np.ndarray  # yearly tax on the income held, 0 where untaxed
    impact_scale: np.ndarray  # sigma * sqrt(V / (ADV * price)); 0 without ADV
    sector: pd.Series  # index asset
    risk: RiskRoot
    lots: pd.DataFrame  # cleaned lots of Account, in lot order
    lot_asset: np.ndarray  # index into universe, per lot
    lot_quantity: np.ndarray  # shares, per lot (``lots["quantity"]``)
    lot_capacity: np.ndarray  # lot value / V
    lot_gain_fraction: np.ndarray  # (p - basis) / p
    lot_long_term: np.ndarray  # bool
    lot_tax_rate: np.ndarray
    holdings: sp.csr_array  # S: (n assets, n lots) 0/1 membership
    recent_trades: pd.DataFrame | None  # dated up to as_of; None if not given
    deposit: float = 0.0  # money coming in now, fraction of V (in ``cash``)
    withdrawal: float = 0.0  # money going out now, fraction of V (out of ``cash``)
    taxable: bool = True  # sales realise tax (``Account.account_type``)
    # the real asset of each universe entry when one asset appears several
    # times (a household's accounts); None: each entry is its own asset
    group: np.ndarray | None = None
    # whether each lot's sales realise tax (a household's accounts differ);
    # None: every lot as ``taxable``
    lot_taxable: np.ndarray | None = None

    @property
    def n_assets(self) -> int:
        """Number of assets in the universe."""
        return len(self.universe)

    @property
    def n_lots(self) -> int:
        """Number of tax lots."""
        return len(self.lot_asset)

    @cached_property
    def lot_ids(self) -> np.ndarray:
        """The lots' ids, in lot order (object array of str, read-only)."""
        ids: np.ndarray = self.lots["lot_id"].to_numpy(dtype=object, copy=True)
        ids.flags.writeable = False  # ``lot_index`` reads it
        return ids

    @cached_property
    def _lot_position(self) -> dict[str, int]:
        return {lot: k for k, lot in enumerate(self.lot_ids)}

    @cached_property
    def _asset_position(self) -> dict[str, int]:
        return {asset: k for k, asset in enumerate(self.universe)}

    def lot_index(self, lot_ids: np.ndarray) -> np.ndarray:
        """Return each lot id's position among the lots (-1 where unknown)."""
        return _positions(self._lot_position, lot_ids)

    def asset_index(self, assets: np.ndarray) -> np.ndarray:
        """Return each asset's position in ``universe`` (-1 where unknown)."""
        return _positions(self._asset_position, assets)

    @cached_property
    def lot_taxed_gain(self) -> np.ndarray:
        """Gain per unit sold that counts for tax, per lot (0 if untaxed)."""
        taxable = self.taxable if self.lot_taxable is None else self.lot_taxable
        gain: np.ndarray = self.lot_gain_fraction * taxable
        return gain

    @cached_property
    def lot_basis(self) -> np.ndarray:
        """Cost basis per share, per lot (currency)."""
        basis: np.ndarray = self.lots["cost_basis"].to_numpy(dtype=float)
        return basis

    @cached_property
    def lot_acquired(self) -> np.ndarray:
        """Purchase date per lot (``datetime64``)."""
        acquired: np.ndarray = self.lots["acquired"].to_numpy()
        return acquired


def _positions(position: dict[str, int], names: np.ndarray) -> np.ndarray:
    """Return each name's position (-1 where unknown).

    A dict: for the few rows of an order list or of recent trades, 10-30
    times faster than a pandas index lookup.
    """
    found: np.ndarray = np.fromiter(
        (position.get(name, -1) for name in names), dtype=np.int64, count=len(names)
    )
    return found


def build_snapshot(
    account: Account,
    targets: Targets,
    market: Market,
    *,
    buy_any: bool = False,
    include: Sequence[str] = (),
) -> Snapshot:
    """Validate and align one account against its targets and the market.

    Parameters
    ----------
    account : Account
        Cash, lots and recent trades.
    targets : pd.Series, dict or pd.DataFrame
        Target weights by asset (a DataFrame: columns ``asset``, ``weight``);
        may hold a ``CASH`` entry; sums to 1.
    market : Market
        Prices and risk model.
    buy_any : bool
        Also put in the universe every asset with a price and a row in the
        risk model, so that any of them can be bought (a substitute for a
        harvested loss), not only held or targeted ones.
    include : sequence of str
        More assets for the universe (a household's: every account's).

    Returns
    -------
    Snapshot
        The universe is every held or targeted asset (and with ``buy_any``
        every priced, risk-modelled one), sorted.

    Raises
    ------
    InputError
        Naming account, asset, lot and field of the first bad value.
    """
    aid = account.account_id
    weights = by_asset(targets, "weight", table="targets", account_id=aid)
    target_cash, risky_targets = _check_targets(weights, aid)
    lots = account.lots
    held_lots = lots["quantity"].to_numpy() > 0
    if not held_lots.all():
        lots = lots[held_lots].reset_index(drop=True)
    held = lots["asset"].to_numpy(dtype=object)
    assets = np.union1d(risky_targets.index.to_numpy(dtype=object), held)
    if len(include):
        assets = np.union1d(assets, np.asarray(include, dtype=object))
    if buy_any:
        usable = market.usable_assets
        assets = np.union1d(assets, usable.to_numpy(dtype=object))
    universe = pd.Index(assets, name="asset", dtype=str)
    unknown = universe.difference(market.prices.index)
    if len(unknown):
        raise InputError(
            "no price for a held or targeted asset",
            account_id=aid,
            asset=str(unknown[0]),
            field="price",
        )
    parts = AccountParts(
        account_id=aid,
        cash=account.cash,
        cash_flow=account.cash_flow,
        lots=lots,
        recent_trades=_recent(account, market.as_of),
        tax_rates=(account.tax_rate_short, account.tax_rate_long),
        taxable=account.taxable,
    )
    return assemble_snapshot(
        parts,
        as_of=market.as_of,
        universe=universe,
        shared=on_universe(market, universe, aid),
        target=align(
            risky_targets, universe, field="weight", account_id=aid, default=0.0
        ),
        target_cash=target_cash,
    )


@dataclass(frozen=True)
class AccountParts:
    """What a snapshot reads of an account, checked.

    ``lots`` are clean (``Account.lots``), each held (quantity > 0) and
    priced; ``recent_trades`` are clean and dated up to the trade date.
    """

    account_id: str
    cash: float
    cash_flow: float
    lots: pd.DataFrame
    recent_trades: pd.DataFrame | None
    tax_rates: tuple[float, float]  # short-term, long-term
    taxable: bool


def assemble_snapshot(
    parts: AccountParts,
    *,
    as_of: pd.Timestamp,
    universe: pd.Index,
    shared: Universe,
    target: np.ndarray,
    target_cash: float,
) -> Snapshot:
    """Return the snapshot of checked parts: the arrays the program reads.

    ``shared`` holds the universe's checked prices and risk, ``target`` the
    risky target weights aligned to ``universe``. :func:`build_snapshot`
    checks an account's input and calls this; a backtest, whose ledger
    keeps its lots clean, calls it directly.
    """
    aid, lots, taxable = parts.account_id, parts.lots, parts.taxable
    cash, cash_flow = parts.cash, parts.cash_flow
    numbers = shared.numbers
    prices = numbers["price"]
    acquired = lots["acquired"].to_numpy()
    late = acquired > as_of.to_datetime64()
    if late.any():
        row = lots.iloc[int(np.argmax(late))]
        raise InputError(
            f"acquired {row['acquired'].date()} is after as_of {as_of.date()}",
            account_id=aid,
            asset=str(row["asset"]),
            lot_id=str(row["lot_id"]),
            field="acquired",
        )
    lot_asset = universe.get_indexer(pd.Index(lots["asset"]))
    lot_price = prices[lot_asset]
    quantity = lots["quantity"].to_numpy(dtype=float)
    lot_market_value = quantity * lot_price
    holdings_value = float(lot_market_value.sum())
    value = cash + cash_flow + holdings_value
    if value <= 0 and cash_flow < 0:
        raise InputError(
            f"withdrawal of {-cash_flow:,.2f} is not less than the "
            f"account's cash and holdings, {cash + holdings_value:,.2f}",
            account_id=aid,
            field="cash_flow",
        )
    if value <= 0:
        raise InputError(
            "account has no value (no cash, no priced lots)",
            account_id=aid,
            field="cash",
        )
    holdings = sp.csr_array(
        (np.ones(len(lots)), (lot_asset, np.arange(len(lots)))),
        shape=(len(universe), len(lots)),
    )
    long_term = is_long_term(lots["acquired"], as_of)
    adv = numbers["adv"]
    with np.errstate(divide="ignore", invalid="ignore"):
        impact = numbers["volatility"] * np.sqrt(value / (adv * prices))
    tax_rate_short, tax_rate_long = parts.tax_rates
    return Snapshot(
        account_id=aid,
        as_of=as_of,
        universe=universe,
        value=value,
        cash=(cash + cash_flow) / value,  # < 0: a withdrawal to raise
        prices=prices,
        current=holdings @ lot_market_value / value,
        target=target,
        target_cash=target_cash,
        cost_rate=numbers["cost_bps"] / 1e4,
        lot_size=numbers["lot_size"],
        min_trade_value=numbers["min_trade_value"],
        impact_scale=np.where(np.isfinite(impact) & (adv > 0), impact, 0.0),
        sector=shared.sector,
        risk=shared.risk,
        lots=lots,
        lot_asset=lot_asset,
        lot_quantity=quantity,
        lot_capacity=lot_market_value / value,
        lot_gain_fraction=1.0 - lots["cost_basis"].to_numpy() / lot_price,
        lot_long_term=long_term,
        lot_tax_rate=lot_tax_rates(
            long_term,
            tax_rate_short=tax_rate_short,
            tax_rate_long=tax_rate_long,
        )
        * taxable,  # no tax, and no tax loss, in a tax-advantaged account
        holdings=holdings,
        recent_trades=parts.recent_trades,
        deposit=max(cash_flow, 0.0) / value,
        withdrawal=max(-cash_flow, 0.0) / value,
        taxable=taxable,
        tax_drag=numbers["tax_drag"] * taxable,
    )


def _check_targets(targets: pd.Series, account_id: str) -> tuple[float, pd.Series]:
    """Split targets into the cash target and risky weights; check the sum."""
    names = targets.index.to_numpy().astype(str)
    values = targets.to_numpy()
    if values.dtype.kind not in "fiu":
        values = pd.to_numeric(values, errors="coerce")
    values = values.astype(float)
    repeat = first_repeat(names)
    if repeat is not None:
        raise InputError(
            "duplicate asset",
            account_id=account_id,
            asset=str(names[repeat]),
            field="weight",
        )
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"must be a finite number >= 0, got {values[row]!r}",
            account_id=account_id,
            asset=str(names[row]),
            field="weight",
        )
    total = float(values.sum())
    if abs(total - 1.0) > TARGET_SUM_TOLERANCE:
        raise InputError(
            f"target weights sum to {total:.9g}, not 1 "
            f"(tolerance {TARGET_SUM_TOLERANCE:g})",
            account_id=account_id,
            field="weight",
        )
    cash = names == CASH
    risky = ~cash & (values > 0)
    return float(values[cash].sum()), pd.Series(values[risky], index=names[risky])


def _recent(account: Account, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """Return the account's recent trades dated on or before ``as_of``."""
    trades = account.recent_trades
    if trades is None:
        return None
    return trades[trades["date"] <= as_of].reset_index(drop=True)
