"""One account: cash, tax lots, recent trades and tax rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype

from models._align import first_repeat, require_columns
from models.errors import InputError

LOT_COLUMNS = ("asset", "lot_id", "quantity", "cost_basis", "acquired")
ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
RECENT_TRADE_COLUMNS = ("asset", "date", "side", "quantity")
TRADE_SIDES = ("buy", "sell")


@dataclass(frozen=True)
class Account:
    """Cash and tax lots of one account, validated at construction.

    Parameters
    ----------
    account_id : str
        Identifier used in every message and output row.
    cash : float
        Cash balance in currency; must be finite and non-negative.
    lots : pd.DataFrame
        The ``lots`` table of docs/DATA.md for this account: columns ``asset``,
        ``lot_id``, ``quantity`` (shares), ``cost_basis`` (per share) and
        ``acquired`` (date). Other columns are ignored.
    recent_trades : pd.DataFrame or None
        The ``recent_trades`` table of docs/DATA.md for this account (columns
        ``asset``, ``date``, ``side``, ``quantity``, optional
        ``realized_gain``); used by the wash-sale rule.
    tax_rate_short, tax_rate_long : float
        Tax rates (fractions) on short- and long-term realized gains.
    cash_flow : float
        Money moving in (a deposit, > 0) or out (a withdrawal, < 0) now,
        not yet in ``cash``. The targets apply to the value after it. A
        deposit is invested without counting as turnover; a withdrawal is
        raised by the trades and set aside (post-trade cash stays >= 0),
        and its sales do not count as turnover either.
    account_type : str
        ``taxable`` (default), ``tax_deferred`` (an IRA, a 401(k)) or
        ``tax_exempt`` (a Roth): sales in the last two realise no tax, and
        their losses are not tax losses.
    fractional_shares : bool
        Whether the broker accepts fractional quantities (then lot sizes do
        not apply and quantities are rounded to 1e-4 shares).

    Raises
    ------
    InputError
        On a missing column, a negative or non-finite quantity, cash or cost
        basis, a duplicate lot id or an unreadable date.
    """

    account_id: str
    cash: float
    lots: pd.DataFrame
    recent_trades: pd.DataFrame | None = None
    tax_rate_short: float = 0.408
    tax_rate_long: float = 0.238
    fractional_shares: bool = False
    cash_flow: float = 0.0
    account_type: str = "taxable"

    @property
    def taxable(self) -> bool:
        """Whether sales realise tax (``account_type == "taxable"``)."""
        return self.account_type == "taxable"

    def __post_init__(self) -> None:
        where = {"account_id": self.account_id}
        cash = _finite(self.cash, "cash", self.account_id)
        object.__setattr__(self, "cash", cash)
        if cash < 0:
            raise InputError(f"negative cash {self.cash!r}", field="cash", **where)
        flow = _finite(self.cash_flow, "cash_flow", self.account_id)
        object.__setattr__(self, "cash_flow", flow)
        if self.account_type not in ACCOUNT_TYPES:
            raise InputError(
                f"must be one of {ACCOUNT_TYPES}, got {self.account_type!r}",
                field="account_type",
                **where,
            )
        for field in ("tax_rate_short", "tax_rate_long"):
            check_tax_rate(getattr(self, field), field, account_id=self.account_id)
        object.__setattr__(self, "lots", _clean_lots(self.lots, self.account_id))
        if self.recent_trades is not None:
            trades = _clean_recent_trades(self.recent_trades, self.account_id)
            object.__setattr__(self, "recent_trades", trades)


def _finite(value: object, field: str, account_id: str) -> float:
    """Return ``value`` as a finite float, or raise naming the field."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise InputError(
            f"not a finite number: {value!r}", field=field, account_id=account_id
        )
    return number


def check_tax_rate(rate: float, field: str, *, account_id: str | None = None) -> None:
    """Reject a tax rate outside ``[0, 1)``."""
    if not 0 <= rate < 1:
        raise InputError(
            f"must be in [0, 1), got {rate!r}", field=field, account_id=account_id
        )


def _clean_lots(lots: pd.DataFrame, account_id: str) -> pd.DataFrame:
    """Return the lots with canonical dtypes, or raise on the first bad value.

    Works on the columns' arrays and builds the table once, from all its
    columns: this runs for every account of a batch.
    """
    require_columns(lots, LOT_COLUMNS, table="lots", account_id=account_id)
    given = {field: lots[field].to_numpy() for field in LOT_COLUMNS}
    assets = _identifiers(given, "asset", None, account_id)
    ids = _identifiers(given, "lot_id", assets, account_id)
    repeat = first_repeat(ids)
    if repeat is not None:
        raise InputError(
            "duplicate lot id",
            account_id=account_id,
            lot_id=str(ids[repeat]),
            field="lot_id",
        )

    def refuse(field: str, bad: np.ndarray, message: str) -> None:
        """Raise naming the first bad lot of ``field``, if any.

        ``message`` is formatted with the value given (``{!r}``).
        """
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                message.format(given[field][row]),
                account_id=account_id,
                asset=str(assets[row]),
                lot_id=str(ids[row]),
                field=field,
            )

    columns: dict[str, np.ndarray] = {"asset": assets, "lot_id": ids}
    for field in ("quantity", "cost_basis"):
        values = pd.to_numeric(given[field], errors="coerce").astype(float)
        bad = ~np.isfinite(values) | (values < 0)
        refuse(field, bad, "must be a finite number >= 0, got {!r}")
        columns[field] = values
    acquired = parse_dates(lots["acquired"])
    refuse("acquired", acquired.isna().to_numpy(), "not a date: {!r}")
    instants = acquired.to_numpy()
    columns["acquired"] = instants.astype("datetime64[D]").astype(instants.dtype)
    return pd.DataFrame(columns)


def _identifiers(
    given: dict[str, np.ndarray],
    field: str,
    assets: np.ndarray | None,
    account_id: str,
) -> np.ndarray:
    """Return an identifier column as text; raise on the first blank value.

    ``assets`` (already checked) names the asset of a blank lot id.
    """
    values = given[field]
    text = values.astype(str)
    blank = pd.isna(values) | (np.char.strip(text) == "")
    if blank.any():
        row = int(np.argmax(blank))
        raise InputError(
            f"missing {field}: {values[row]!r}",
            account_id=account_id,
            asset=None if assets is None else str(assets[row]),
            lot_id=None if assets is not None else str(given["lot_id"][row]),
            field=field,
        )
    column: np.ndarray = text.astype(object)
    return column


def _clean_recent_trades(trades: pd.DataFrame, account_id: str) -> pd.DataFrame:
    """Return recent trades with canonical dtypes, or raise on a bad value.

    Works on the columns' arrays and builds the table once, as ``_clean_lots``.
    """
    require_columns(
        trades, RECENT_TRADE_COLUMNS, table="recent_trades", account_id=account_id
    )
    asset = trades["asset"].astype(str).to_numpy()
    side = trades["side"].to_numpy()
    bad_side = ~np.isin(side, TRADE_SIDES)
    if bad_side.any():
        row = int(np.argmax(bad_side))
        raise InputError(
            f"side must be one of {TRADE_SIDES}, got {side[row]!r}",
            account_id=account_id,
            asset=str(asset[row]),
            field="side",
        )
    dates = parse_dates(trades["date"])
    unreadable = dates.isna().to_numpy()
    if unreadable.any():
        row = int(np.argmax(unreadable))
        lot_id = trades["lot_id"].iloc[row] if "lot_id" in trades else None
        raise InputError(
            f"not a date: {trades['date'].iloc[row]!r}",
            account_id=account_id,
            asset=str(asset[row]),
            lot_id=None if lot_id is None else str(lot_id),
            field="date",
        )
    gain = np.full(len(trades), np.nan)
    if "realized_gain" in trades:
        gain = pd.to_numeric(trades["realized_gain"], errors="coerce").to_numpy(float)
    return pd.DataFrame(
        {
            "asset": pd.array(asset, dtype=str),
            "date": dates.dt.normalize().to_numpy(),
            "side": pd.array(side, dtype=str),
            "quantity": trades["quantity"].to_numpy(),
            "realized_gain": gain,
        }
    )


def parse_dates(values: pd.Series) -> pd.Series:
    """Parse ISO dates (docs/DATA.md), as naive UTC; anything unreadable becomes NaT.

    One explicit format: no per-element guessing, and numbers are never read
    as epoch nanoseconds.
    """
    if is_datetime64_any_dtype(values) and getattr(values.dtype, "tz", None) is None:
        return values  # already naive dates (the parse would return them as they are)
    text = values if is_datetime64_any_dtype(values) else values.astype(str)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    dates: pd.Series = parsed.dt.tz_convert(None)
    return dates
