"""Trade rules: restrictions and wash sales, as masks on buys and lot sales."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from models.errors import InputError
from models.snapshot import Snapshot
from models.terms import TradeMask

RESTRICTION_RULES = ("no_buy", "no_sell", "no_trade", "liquidate")


@dataclass(frozen=True, slots=True)
class Restrictions:
    """Account-level restrictions by asset.

    Parameters
    ----------
    rules : pd.DataFrame
        Columns ``asset`` and ``rule`` in {no_buy, no_sell, no_trade,
        liquidate}; several rules for one asset combine. Assets the account
        neither holds nor targets are ignored.
    """

    rules: pd.DataFrame
    name: ClassVar[str] = "restrictions"

    def __post_init__(self) -> None:
        for column in ("asset", "rule"):
            if column not in self.rules:
                raise InputError(
                    "missing required column in table 'restrictions'", field=column
                )
        unknown = ~self.rules["rule"].isin(RESTRICTION_RULES)
        if unknown.any():
            row = self.rules[unknown].iloc[0]
            raise InputError(
                f"rule must be one of {RESTRICTION_RULES}, got {row['rule']!r}",
                asset=str(row["asset"]),
                field="rule",
            )

    def mask(self, snapshot: Snapshot) -> TradeMask:
        """Forbid and force trades as the rules say."""
        mask = TradeMask.everything(snapshot)
        for rule, group in self.rules.groupby("rule"):
            assets = snapshot.universe.isin(group["asset"].astype(str))
            lots = assets[snapshot.lot_asset]
            if rule in ("no_buy", "no_trade", "liquidate"):
                mask.can_buy[assets] = False
            if rule in ("no_sell", "no_trade"):
                mask.can_sell[lots] = False
            if rule == "liquidate":
                mask.must_sell[lots] = True
        return mask


@dataclass(frozen=True, slots=True)
class WashSaleRule:
    """Avoid wash sales against trades of the last ``window_days`` days.

    An asset sold at a loss in the window is not bought (a sale whose
    ``realized_gain`` is unknown counts as a loss); a lot at a loss is not
    sold where the asset was bought in the window (by a recent trade or a
    lot acquired in it). Within one rebalance, use :class:`NoBuyAndSell`.
    """

    window_days: int = 30
    name: ClassVar[str] = "wash_sale"

    def mask(self, snapshot: Snapshot) -> TradeMask:
        """Forbid the buys and loss-lot sales that would wash.

        In a tax-advantaged account a loss is no tax loss: nothing to wash.
        """
        mask = TradeMask.everything(snapshot)
        if not snapshot.taxable:
            return mask
        losses, bought = self.recent(snapshot)
        mask.can_buy[losses] = False
        mask.can_sell[bought[snapshot.lot_asset] & at_a_loss(snapshot)] = False
        return mask

    def recent(self, snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return, per asset, a loss sold and a purchase in the window.

        A sale whose ``realized_gain`` is unknown counts as a loss; a
        purchase is a recent buy or a lot acquired in the window.
        """
        start = (snapshot.as_of - pd.Timedelta(days=self.window_days)).to_datetime64()
        losses = np.zeros(snapshot.n_assets, bool)
        bought = np.zeros(snapshot.n_assets, bool)
        bought[snapshot.lot_asset[snapshot.lot_acquired >= start]] = True
        trades = snapshot.recent_trades
        if trades is not None and len(trades):
            asset = snapshot.asset_index(trades["asset"].to_numpy(dtype=object))
            side = trades["side"].to_numpy()
            recent = (trades["date"].to_numpy() >= start) & (asset >= 0)
            gain = trades["realized_gain"].to_numpy(dtype=float)
            losses[asset[recent & (side == "sell") & ~(gain >= 0)]] = True
            bought[asset[recent & (side == "buy")]] = True
        return losses, bought


def at_a_loss(snapshot: Snapshot) -> np.ndarray:
    """Which lots would sell at a loss (the sale's cost can turn a thin gain)."""
    loss: np.ndarray = (
        snapshot.lot_gain_fraction < snapshot.cost_rate[snapshot.lot_asset]
    )
    return loss
