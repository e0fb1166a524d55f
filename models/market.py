"""The market snapshot shared by every account: prices and a risk model."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from models._align import by_asset, require_columns
from models.errors import InputError
from models.risk import RiskModel

PRICE_DEFAULTS = {
    "lot_size": 1.0,
    "min_trade_value": 0.0,
    "cost_bps": 0.0,
    "tax_drag": 0.0,  # share of the value lost to tax on income a year, if taxable
}
OPTIONAL_PRICE_COLUMNS = ("adv", "volatility")
REQUIRED_NUMBERS = ("price", *PRICE_DEFAULTS)  # must be finite where used
NUMERIC_COLUMNS = (*REQUIRED_NUMBERS, *OPTIONAL_PRICE_COLUMNS)
POSITIVE_NUMBERS = ("price", "lot_size", "adv")  # > 0; the others >= 0


def bad_numbers(field: str, values: np.ndarray) -> np.ndarray:
    """Whether each value of a price column breaks its rule (``number_rule``).

    Empty (NaN) is allowed only in the optional columns (no impact term).
    """
    with np.errstate(invalid="ignore"):
        wrong = ~np.isfinite(values) | (
            values <= 0 if field in POSITIVE_NUMBERS else values < 0
        )
    empty_allowed = field in OPTIONAL_PRICE_COLUMNS
    bad: np.ndarray = wrong & ~(np.isnan(values) & empty_allowed)
    return bad


def number_rule(field: str) -> str:
    """Say what a price column's values must be."""
    sign = ">" if field in POSITIVE_NUMBERS else ">="
    empty = " or empty" if field in OPTIONAL_PRICE_COLUMNS else ""
    return f"must be a finite number {sign} 0{empty}"


ROUND_LOT_TIERS = ((250.0, 100.0), (1_000.0, 40.0), (10_000.0, 10.0))


def tiered_lot_sizes(prices: pd.Series) -> pd.Series:
    """Return price-tiered round lots (Reg NMS Rule 600(b), from November 2025).

    Up to $250 a round lot is 100 shares, up to $1,000 40, up to $10,000 10,
    and 1 share above. Assign the result to the ``lot_size`` column.
    """
    sizes = pd.Series(1.0, index=prices.index, name="lot_size")
    for ceiling, size in reversed(ROUND_LOT_TIERS):
        sizes[prices <= ceiling] = size
    return sizes


@dataclass(frozen=True)
class Market:
    """Prices, trading parameters and a risk model as of one date.

    Parameters
    ----------
    as_of : pd.Timestamp
        Trade date; holding periods and wash-sale windows count to it.
    prices : pd.DataFrame or pd.Series
        The ``prices`` table of docs/DATA.md: column ``asset`` (or the index)
        and ``price``, and optionally ``lot_size`` (default 1),
        ``min_trade_value`` (default 0), ``cost_bps`` (default 0), ``adv``
        (shares/day), ``volatility`` (daily) and ``sector``; or a Series (or
        dict) of prices by asset. Stored indexed by ``asset``.
    risk_model : RiskModel
        Covariance of asset returns in annual variance (a 20% volatility is
        0.04), the units of every tracking error reported.

    Raises
    ------
    InputError
        On a missing column or a duplicate asset. Values are checked per
        account, for the assets that account uses: a number outside its
        column's rule, or text in a numeric column (kept in ``unreadable``,
        so text is never read as empty).
    """

    as_of: pd.Timestamp
    prices: pd.DataFrame
    risk_model: RiskModel
    # per-universe numbers shared by the accounts that hold the same assets
    cache: dict[tuple[str, ...], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # numeric column -> the text given where a number belongs, by asset
    unreadable: dict[str, pd.Series] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def usable_assets(self) -> pd.Index:
        """The assets ``buy_any`` may buy, found once per market.

        Every price column within its rule, and a risk model entry.
        """
        ok = np.ones(len(self.prices), bool)
        for column in NUMERIC_COLUMNS:
            ok &= ~bad_numbers(column, self.prices[column].to_numpy(dtype=float))
        usable = self.prices.index[ok]
        for text in self.unreadable.values():
            usable = usable.difference(text.index)
        return usable.intersection(self.risk_model.assets)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the cache (a worker fills its own)."""
        return {**self.__dict__, "cache": {}}

    def __post_init__(self) -> None:
        given = _price_table(self.prices)
        require_columns(given, ("asset", "price"), table="prices")
        assets = given["asset"].astype(str)
        duplicated = assets[assets.duplicated()]
        if len(duplicated):
            raise InputError(
                "duplicate asset in prices",
                asset=str(duplicated.iloc[0]),
                field="asset",
            )
        defaults = {**PRICE_DEFAULTS, **dict.fromkeys(OPTIONAL_PRICE_COLUMNS, np.nan)}
        names = [c for c in given.columns if c != "asset"]
        names += [c for c in defaults if c not in given]
        columns = {}  # built once: per-column assignment costs more than the checks
        for column in names:
            if column not in NUMERIC_COLUMNS:
                columns[column] = given[column].to_numpy()
            elif column in given:
                numbers = pd.to_numeric(given[column], errors="coerce")
                columns[column] = numbers.to_numpy(dtype=float, na_value=np.nan)
                text = numbers.isna().to_numpy() & given[column].notna().to_numpy()
                if text.any():
                    self.unreadable[column] = pd.Series(
                        given[column].to_numpy()[text], index=assets.to_numpy()[text]
                    )
            else:
                columns[column] = np.full(len(given), defaults[column])
        index = pd.Index(assets.to_numpy(), name="asset", dtype=assets.dtype)
        object.__setattr__(self, "prices", pd.DataFrame(columns, index=index))
        object.__setattr__(self, "as_of", pd.Timestamp(self.as_of).normalize())


def _price_table(prices: object) -> pd.DataFrame:
    """Return the prices as a table with an ``asset`` column (a copy)."""
    if isinstance(prices, pd.DataFrame):
        if "asset" in prices.columns:
            return prices.copy()
        if "price" in prices.columns:
            return prices.rename_axis("asset").reset_index()
    return by_asset(prices, "price", table="prices").reset_index()
