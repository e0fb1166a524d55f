"""What every account on one universe of assets shares: checked prices and risk."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.errors import InputError
from models.market import NUMERIC_COLUMNS, Market, bad_numbers, number_rule
from models.risk import RiskRoot
from models.risk_scale import warn_if_implausible

MAX_UNIVERSES = 64  # universes a market keeps numbers for


@dataclass(frozen=True)
class Universe:
    """What every account on one universe shares: checked prices, sectors, risk."""

    numbers: dict[str, np.ndarray]
    sector: pd.Series
    risk: RiskRoot

    def at_prices(
        self, prices: np.ndarray, universe: pd.Index, account_id: str
    ) -> Universe:
        """Return the same numbers and risk at new prices over ``universe``.

        The prices are checked as a market's are; a bad one is named.
        """
        _check_numbers({"price": prices}, universe, account_id)
        return replace(self, numbers={**self.numbers, "price": prices})


def on_universe(market: Market, universe: pd.Index, account_id: str) -> Universe:
    """Return the market's numbers on ``universe``, computed once per universe.

    Accounts of one model hold the same assets, so a batch mostly rebuilds
    the same thing; only a successful check is kept (a bad value is raised
    again, naming each account). The arrays are read-only: they are shared.
    """
    key = tuple(universe)
    shared: Universe | None = market.cache.get(key)
    if shared is not None:
        return shared
    _check_readable(market, universe, account_id)
    table = market.prices.loc[universe]
    numbers = _price_numbers(table, account_id)
    risk = market.risk_model.root(universe, account_id=account_id)
    warn_if_implausible(risk.volatility(), universe, account_id)
    for array in (*numbers.values(), risk.G, risk.d):
        array.flags.writeable = False
    shared = Universe(
        numbers=numbers,
        sector=table["sector"]
        if "sector" in table
        else pd.Series(index=universe, dtype=str),
        risk=risk,
    )
    if len(market.cache) >= MAX_UNIVERSES:
        market.cache.clear()
    market.cache[key] = shared
    return shared


def _check_readable(market: Market, universe: pd.Index, account_id: str) -> None:
    """Raise naming the first text given where the universe needs a number."""
    for field, text in market.unreadable.items():
        used = text.index.intersection(universe)
        if len(used):
            raise InputError(
                f"not a number: {text[used[0]]!r}",
                account_id=account_id,
                asset=str(used[0]),
                field=field,
            )


def _price_numbers(table: pd.DataFrame, account_id: str) -> dict[str, np.ndarray]:
    """Return the numeric price columns; name the first bad value used."""
    out = {c: table[c].to_numpy(dtype=float) for c in NUMERIC_COLUMNS}
    _check_numbers(out, table.index, account_id)
    return out


def _check_numbers(
    numbers: dict[str, np.ndarray], assets: pd.Index, account_id: str
) -> None:
    """Raise naming the first number that breaks its column's rule."""
    for field in NUMERIC_COLUMNS:
        if field not in numbers:
            continue
        values = numbers[field]
        bad = bad_numbers(field, values)
        if bad.any():
            raise InputError(
                f"{number_rule(field)}, got {float(values[bad][0])!r}",
                account_id=account_id,
                asset=str(assets[bad][0]),
                field=field,
            )
