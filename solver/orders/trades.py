"""Turn an outcome (fractions of V) into the docs/DATA.md trades table, and back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models._align import text
from models.snapshot import Snapshot
from models.terms import Outcome
from solver.program.sides import NOISE
from solver.result import TRADE_COLUMNS, empty_trades


def clean(o: Outcome) -> Outcome:
    """Drop noise-sized trades; round near-full lot sales up to the full lot."""
    s = o.snapshot
    buys = np.where(o.buys > NOISE, o.buys, 0.0)
    sales = np.where(o.lot_sales > NOISE, o.lot_sales, 0.0)
    sales = np.where(s.lot_capacity - sales < NOISE, s.lot_capacity, sales)
    return Outcome(s, buys, sales)


def continuous_shares(o: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Return shares bought per asset and sold per lot of a continuous outcome."""
    s = o.snapshot
    quantity = s.lot_quantity
    lot_shares = np.minimum(o.lot_sales * s.value / s.prices[s.lot_asset], quantity)
    return o.buys * s.value / s.prices, lot_shares


def trades_table(
    s: Snapshot,
    buy_shares: np.ndarray,
    lot_shares: np.ndarray,
    forced: np.ndarray | None = None,
) -> pd.DataFrame:
    """Return one row per lot sold, then one per asset bought.

    ``forced`` marks the lots a rule makes the account sell (``liquidate``).
    """
    bought = np.flatnonzero(buy_shares > 0)
    sold = np.flatnonzero(lot_shares > 0)
    if not len(bought) and not len(sold):
        return empty_trades()
    sold_asset = s.lot_asset[sold]
    lot_price = s.prices[sold_asset]
    sell_quantity = lot_shares[sold]
    gain = sell_quantity * (lot_price - s.lot_basis[sold])
    price = np.concatenate([lot_price, s.prices[bought]])
    quantity = np.concatenate([sell_quantity, buy_shares[bought]])
    value = quantity * price
    no_buy_field = np.full(len(bought), np.nan, dtype=object)
    is_forced = np.zeros(len(sold), bool) if forced is None else forced[sold]
    assets = s.universe.to_numpy(dtype=object)
    table = pd.DataFrame(
        {
            "account_id": text(np.full(len(price), s.account_id, dtype=object)),
            "asset": text(np.concatenate([assets[sold_asset], assets[bought]])),
            "side": text(np.repeat(["sell", "buy"], [len(sold), len(bought)])),
            "quantity": quantity,
            "lot_id": text(np.concatenate([s.lot_ids[sold], no_buy_field])),
            "price": price,
            "value": value,
            "realized_gain": np.concatenate([gain, np.zeros(len(bought))]),
            "term": text(
                np.concatenate(
                    [np.where(s.lot_long_term[sold], "long", "short"), no_buy_field]
                )
            ),
            "est_tax": np.concatenate(
                [gain * s.lot_tax_rate[sold], np.zeros(len(bought))]
            ),
            "est_cost": value * s.cost_rate[np.concatenate([sold_asset, bought])],
            "reason": text(
                np.concatenate(
                    [
                        sale_reasons(s, sold_asset, gain, is_forced, bought),
                        buy_reasons(s, bought, sold_asset),
                    ]
                )
            ),
        },
        columns=list(TRADE_COLUMNS),
        copy=False,
    )
    return table


def sale_reasons(
    s: Snapshot,
    asset: np.ndarray,
    gain: np.ndarray,
    forced: np.ndarray,
    bought: np.ndarray,
) -> np.ndarray:
    """Say why each lot is sold (docs/DATA.md ``trades.reason``).

    ``asset`` is each sale's asset, ``bought`` the assets bought. A sale a
    restriction forces is "liquidate (restricted)"; a loss sold where the
    asset is bought back, or at or below its target, "harvest loss"; a sale
    of an asset above its target, "to target"; else "raise cash" (for the
    cash floor or the buys).
    """
    above = s.current[asset] > s.target[asset]
    rebought = np.isin(asset, bought)
    reason = np.where(gain < 0, "harvest loss", "raise cash").astype(object)
    reason[above & ~(rebought & (gain < 0))] = "to target"
    reason[forced] = "liquidate (restricted)"
    return reason


def buy_reasons(s: Snapshot, bought: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """Say why each asset is bought (docs/DATA.md ``trades.reason``).

    ``sold`` holds the assets of the lots sold. "replace sold lots" when the
    asset is sold too, "to target" below its target, "substitute" without
    one (a replacement for a harvested loss), else "beyond target" (risk or
    spare cash).
    """
    below = s.current[bought] < s.target[bought]
    reason = np.where(below, "to target", "beyond target").astype(object)
    reason[s.target[bought] == 0] = "substitute"
    reason[np.isin(bought, sold)] = "replace sold lots"
    return reason


def outcome_from_trades(s: Snapshot, trades: pd.DataFrame) -> Outcome:
    """Rebuild the outcome from a trades table (for independent verification).

    Sells must name a lot of the account; unknown lots or assets raise
    ``KeyError`` naming them, which verification reports.
    """
    return trade_rows(s, trades).outcome(s)


@dataclass(frozen=True)
class TradeRows:
    """A trades table's rows as positions in a snapshot, for the checks."""

    bought: np.ndarray  # bool per row
    sold: np.ndarray  # bool per row
    asset: np.ndarray  # the row's asset in the universe
    lot: np.ndarray  # the sale's lot (-1 on buys)
    quantity: np.ndarray  # shares

    def outcome(self, s: Snapshot) -> Outcome:
        """Return the buys and lot sales at the snapshot's prices."""
        value = self.quantity * s.prices[np.maximum(self.asset, 0)]
        buys = np.zeros(s.n_assets)
        lot_sales = np.zeros(s.n_lots)
        np.add.at(buys, self.asset[self.bought], value[self.bought])
        np.add.at(lot_sales, self.lot[self.sold], value[self.sold])
        return Outcome(s, buys / s.value, lot_sales / s.value)


def trade_rows(s: Snapshot, trades: pd.DataFrame) -> TradeRows:
    """Locate every row's asset and lot; raise ``KeyError`` naming an unknown one.

    The table must have the columns ``asset``, ``side``, ``quantity`` and
    ``lot_id`` (``KeyError`` naming the first missing), even without sales.
    """
    for column in ("asset", "side", "quantity", "lot_id"):
        if column not in trades:
            raise KeyError(f"trades table without column {column!r}")
    side = trades["side"].to_numpy(dtype=object)
    bought, sold = side == "buy", side == "sell"
    names = trades["asset"].to_numpy(dtype=object)
    asset = s.asset_index(names)
    unknown = bought & (asset < 0)
    if unknown.any():
        raise KeyError(f"buy of unknown asset {names[unknown.argmax()]!r}")
    lot = np.full(len(trades), -1)
    if sold.any():
        lot_ids = trades["lot_id"].to_numpy(dtype=object)[sold]
        lot[sold] = s.lot_index(lot_ids)
        if (lot[sold] < 0).any():
            raise KeyError(f"sale of unknown lot {lot_ids[lot[sold] < 0][0]!r}")
        wrong_asset = s.lot_asset[lot[sold]] != asset[sold]
        if wrong_asset.any():
            raise KeyError(f"lot {lot_ids[wrong_asset][0]!r} of another asset")
    quantity = trades["quantity"].to_numpy(dtype=float)
    return TradeRows(bought, sold, asset, lot, quantity)
