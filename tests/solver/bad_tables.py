"""Hypothesis strategies that corrupt a small valid batch (``batch_data``).

Each corruption edits the tables in place and returns a label; the test
reports the labels with ``hypothesis.event``.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from models.rules import RESTRICTION_RULES
from solver.batch.config import ACCOUNT_OVERRIDES
from tests.solver.batch_data import AS_OF, batch_tables

REQUIRED_COLUMNS = {
    "accounts": ("account_id", "model_id", "cash"),
    "lots": ("account_id", "asset", "lot_id", "quantity", "cost_basis", "acquired"),
    "targets": ("model_id", "asset", "weight"),
    "prices": ("asset", "price"),
    "factor_loadings": ("asset",),
    "factor_covariance": ("factor",),
    "specific_risk": ("asset", "variance"),
}
NUMBER_COLUMNS = {
    "accounts": ("cash",),
    "lots": ("quantity", "cost_basis"),
    "targets": ("weight",),
    "prices": ("price", "lot_size", "min_trade_value", "cost_bps", "adv"),
    "factor_loadings": ("f00", "f01"),
    "factor_covariance": ("f00", "f01"),
    "specific_risk": ("variance",),
}
BAD_VALUES = st.sampled_from(
    [np.nan, np.inf, -np.inf, None, "abc", "", "1,5", -1.0, 0.0, -1e-12, 1e300, 1e-300]
)
SCALES = st.floats(-9, 12)  # log10 of dollars


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    """Return a copy of ``frame`` with one cell replaced (text if ``value`` is)."""
    out = frame.reset_index(drop=True).copy()
    if not len(out) or column not in out:
        return out
    if isinstance(value, str):
        out[column] = out[column].astype(str)
    elif value is None or isinstance(value, float):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
        value = np.nan if value is None else value
    out.loc[row, column] = value
    return out


def _row(draw: st.DrawFn, frame: pd.DataFrame) -> int:
    return draw(st.integers(0, max(len(frame) - 1, 0)))


def _account(draw: st.DrawFn, t: dict[str, pd.DataFrame]) -> str:
    ids = t["accounts"].get("account_id", pd.Series(dtype=object))
    names = sorted({a for a in ids if isinstance(a, str)})
    return draw(st.sampled_from(names)) if names else "B000"


def drop_column(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(REQUIRED_COLUMNS)))
    column = draw(st.sampled_from(REQUIRED_COLUMNS[table]))
    t[table] = t[table].drop(columns=column, errors="ignore")
    return "missing column"


def bad_number(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(NUMBER_COLUMNS)))
    column = draw(st.sampled_from(NUMBER_COLUMNS[table]))
    value = draw(BAD_VALUES)
    if not len(t[table]) or column not in t[table]:
        return "bad number (no-op)"
    t[table] = _set(t[table], _row(draw, t[table]), column, value)
    return "bad number"


def bad_price(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    value = draw(st.sampled_from([0.0, -5.0, -0.0]) | SCALES.map(lambda e: 10**e))
    if not len(t["prices"]):
        return "bad price (no-op)"
    t["prices"] = _set(t["prices"], _row(draw, t["prices"]), "price", value)
    return "zero, negative or extreme price"


def duplicate_row(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(REQUIRED_COLUMNS)))
    frame = t[table].reset_index(drop=True)
    if not len(frame):
        return "duplicate (no-op)"
    copy = frame.iloc[[_row(draw, frame)]].copy()
    numbers = [c for c in NUMBER_COLUMNS[table] if c in copy]
    if numbers and draw(st.booleans()):
        column = draw(st.sampled_from(numbers))
        copy[column] = pd.to_numeric(copy[column], errors="coerce") * 2
    t[table] = pd.concat([frame, copy], ignore_index=True)
    return f"duplicate {table} row"


def unknown_asset(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(["lots", "targets", "prices", "specific_risk"]))
    frame = t[table]
    if not len(frame) or "asset" not in frame:
        return "unknown asset (no-op)"
    t[table] = _set(frame, _row(draw, frame), "asset", "ZZZ")
    return f"unknown asset in {table}"


def no_lots(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    aid = _account(draw, t)
    lots = t["lots"]
    if "account_id" in lots:
        t["lots"] = lots[lots["account_id"].astype(str) != aid]
    if draw(st.booleans()):
        accounts = t["accounts"]
        rows = np.flatnonzero(
            accounts.get("account_id", pd.Series()).astype(str) == aid
        )
        if "cash" in accounts and len(rows):
            t["accounts"] = _set(accounts, int(rows[0]), "cash", 0.0)
            return "empty account"
    return "cash-only account"


def zero_quantities(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    aid = _account(draw, t)
    lots = t["lots"].copy()
    if "quantity" in lots and "account_id" in lots:
        lots.loc[lots["account_id"].astype(str) == aid, "quantity"] = 0.0
        t["lots"] = lots
    return "all quantities zero"


def target_sum(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    targets = t["targets"].copy()
    if not {"model_id", "weight"} <= set(targets):
        return "target sum (no-op)"
    model = draw(st.sampled_from(["M0", "M1"]))
    factor = draw(st.sampled_from([0.0, 0.5, 0.999, 1.0 + 1e-5, 2.0, 1e9]))
    mine = targets["model_id"] == model
    weights = pd.to_numeric(targets.loc[mine, "weight"], errors="coerce")
    targets.loc[mine, "weight"] = weights * factor
    t["targets"] = targets
    return "targets do not sum to 1"


def cash_target(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    model = draw(st.sampled_from(["M0", "M1"]))
    only_cash = draw(st.booleans())
    targets = t["targets"]
    if "model_id" not in targets:
        return "cash target (no-op)"
    if only_cash:
        targets = targets[targets["model_id"] != model]
    row = {"model_id": model, "asset": "CASH", "weight": 1.0 if only_cash else 0.0}
    t["targets"] = pd.concat([targets, pd.DataFrame([row])], ignore_index=True)
    return "cash target"


def future_lot(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    lots = t["lots"]
    if not len(lots) or "acquired" not in lots:
        return "future lot (no-op)"
    days = draw(st.integers(1, 4000))
    value = draw(
        st.sampled_from([pd.Timestamp(AS_OF) + pd.Timedelta(days=days), "not a date"])
    )
    out = lots.reset_index(drop=True).copy()
    if isinstance(value, str) or not pd.api.types.is_datetime64_any_dtype(
        out["acquired"]
    ):
        out["acquired"] = out["acquired"].astype(str)
        value = str(value)
    out.loc[_row(draw, out), "acquired"] = value
    t["lots"] = out
    return "lot dated in the future or unreadable"


def rescale_account(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    """Scale one account's cash and quantities to a value of 1e-9..1e12 dollars."""
    aid = _account(draw, t)
    exponent = draw(SCALES)
    accounts, lots, prices = t["accounts"].copy(), t["lots"].copy(), t["prices"]
    usable = (
        {"account_id", "cash"} <= set(accounts)
        and {"account_id", "asset", "quantity"} <= set(lots)
        and {"asset", "price"} <= set(prices)
        and prices["asset"].is_unique
        and pd.api.types.is_numeric_dtype(accounts["cash"])
        and pd.api.types.is_numeric_dtype(lots["quantity"])
    )
    if not usable:  # an earlier corruption got there first
        return "rescale (no-op)"
    mine = lots["account_id"].astype(str) == aid
    me = accounts["account_id"].astype(str) == aid
    price = prices.set_index("asset")["price"]
    held = lots.loc[mine, "quantity"]
    priced = pd.to_numeric(lots.loc[mine, "asset"].map(price), errors="coerce")
    value = float((held * priced).sum() + accounts.loc[me, "cash"].sum())
    if not np.isfinite(value) or value <= 0:
        return "rescale (no-op)"
    factor = 10**exponent / value
    lots.loc[mine, "quantity"] = held * factor
    accounts.loc[me, "cash"] = accounts.loc[me, "cash"] * factor
    t["accounts"], t["lots"] = accounts, lots
    return "account scaled to 1e-9..1e12 dollars"


def negative_cash(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    if not len(t["accounts"]) or "cash" not in t["accounts"]:
        return "negative cash (no-op)"
    value = draw(st.sampled_from([-1.0, -1e-9, -1e12]))
    t["accounts"] = _set(t["accounts"], _row(draw, t["accounts"]), "cash", value)
    return "negative cash"


def empty_table(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(REQUIRED_COLUMNS)))
    t[table] = t[table].iloc[0:0]
    return f"empty {table}"


def override(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    column = draw(st.sampled_from(ACCOUNT_OVERRIDES))
    value = draw(BAD_VALUES | st.sampled_from([0.05, 1.0, 2.0]))
    accounts = t["accounts"].copy()
    if not len(accounts):
        return "override (no-op)"
    accounts[column] = np.nan
    t["accounts"] = _set(accounts, _row(draw, accounts), column, value)
    return "account override column"


def optional_tables(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    aid = _account(draw, t)
    asset = draw(st.sampled_from(["A0000", "A0001", "ZZZ"]))
    if draw(st.booleans()):
        rule = draw(st.sampled_from([*RESTRICTION_RULES, "bogus"]))
        t["restrictions"] = pd.DataFrame(
            [{"account_id": aid, "asset": asset, "rule": rule}]
        )
        return "restrictions"
    trade = {
        "account_id": aid,
        "asset": asset,
        "date": draw(st.sampled_from(["2026-11-20", "2027-01-01", "someday"])),
        "side": draw(st.sampled_from(["buy", "sell", "hold"])),
        "quantity": draw(BAD_VALUES | st.just(10.0)),
    }
    frame = pd.DataFrame([trade])
    if isinstance(trade["quantity"], str):
        frame["quantity"] = frame["quantity"].astype(str)
    t["recent_trades"] = frame
    return "recent trades"


def missing_id(t: dict[str, pd.DataFrame], draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(["accounts", "lots", "targets", "prices"]))
    frame = t[table]
    columns = [c for c in ("account_id", "model_id", "asset", "lot_id") if c in frame]
    if not len(frame) or not columns:
        return "missing id (no-op)"
    column = draw(st.sampled_from(columns))
    out = frame.reset_index(drop=True).copy()
    out[column] = out[column].astype(object)
    out.loc[_row(draw, out), column] = draw(st.sampled_from([None, "", " "]))
    t[table] = out
    return f"missing {column} in {table}"


CORRUPTIONS: tuple[Callable[[dict[str, pd.DataFrame], st.DrawFn], str], ...] = (
    drop_column,
    bad_number,
    bad_price,
    duplicate_row,
    unknown_asset,
    no_lots,
    zero_quantities,
    target_sum,
    cash_target,
    future_lot,
    rescale_account,
    negative_cash,
    empty_table,
    override,
    optional_tables,
    missing_id,
)


def writable(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with mixed text-and-number columns as text (for Parquet)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object and len(set(map(type, values))) > 1:
            out[column] = values.where(values.isna(), values.astype(str))
    return out


@st.composite
def corrupted_batches(
    draw: st.DrawFn,
) -> tuple[dict[str, pd.DataFrame], str, list[str]]:
    """Return a small batch with 1-3 corruptions, a format and their labels."""
    tables = batch_tables(
        n_accounts=draw(st.integers(2, 4)),
        n_assets=draw(st.integers(5, 8)),
        n_holdings=3,
        n_factors=2,
        seed=draw(st.integers(0, 3)),
    )
    chosen = draw(st.lists(st.sampled_from(CORRUPTIONS), min_size=1, max_size=3))
    labels = [corruption(tables, draw) for corruption in chosen]
    return tables, draw(st.sampled_from(["parquet", "csv"])), labels
