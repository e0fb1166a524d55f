"""Hypothesis strategies that corrupt one account's ``solver.rebalance`` inputs.

A case holds the raw pieces (cash, lots table, targets, prices table, risk
covariance) so that constructing ``Account`` and ``Market`` is part of what
the test checks.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

AS_OF = pd.Timestamp("2026-06-30")
LOT_COLUMNS = ("asset", "lot_id", "quantity", "cost_basis", "acquired")
PRICE_NUMBERS = ("price", "lot_size", "min_trade_value", "cost_bps", "adv")
BAD_VALUES = st.sampled_from(
    [np.nan, np.inf, -np.inf, None, "abc", "", -1.0, 0.0, -1e-12, 1e300, 1e-300]
)
SCALES = st.floats(-9, 12)  # log10 of dollars

Case = dict[str, Any]  # cash, lots, targets, prices, covariance


@st.composite
def valid_cases(draw: st.DrawFn) -> Case:
    """Return the pieces of a small valid account and market."""
    n = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    assets = [f"S{i}" for i in range(n)]
    prices = rng.uniform(1, 500, n).round(2)
    rows = [
        {
            "asset": asset,
            "lot_id": f"{asset}-{k}",
            "quantity": float(rng.integers(1, 200)),
            "cost_basis": float(prices[i] * rng.uniform(0.5, 1.5)),
            "acquired": AS_OF - pd.Timedelta(days=int(rng.integers(1, 2000))),
        }
        for i, asset in enumerate(assets)
        for k in range(int(rng.integers(0, 3)))
    ]
    weights = rng.dirichlet(np.ones(n))
    factor = rng.normal(size=(n, n)) * 0.1
    return {
        "cash": float(rng.uniform(0, 5000)),
        "lots": pd.DataFrame(rows, columns=list(LOT_COLUMNS)),
        "targets": pd.Series(weights, index=pd.Index(assets, name="asset")),
        "prices": pd.DataFrame(
            {
                "asset": assets,
                "price": prices,
                "cost_bps": rng.uniform(1, 30, n),
                "lot_size": rng.choice([1.0, 10.0], n),
            }
        ),
        "covariance": pd.DataFrame(
            factor @ factor.T + np.diag(rng.uniform(0.005, 0.05, n)),
            index=assets,
            columns=assets,
        ),
    }


def _cell(frame: pd.DataFrame, draw: st.DrawFn, column: str, value: object) -> None:
    """Replace one cell of ``frame`` in place (the column turns to text if needed)."""
    if not len(frame) or column not in frame:
        return
    row = frame.index[draw(st.integers(0, len(frame) - 1))]
    try:
        frame.loc[row, column] = value
    except (TypeError, ValueError):  # e.g. text into a float column
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value


def lots_value(case: Case, draw: st.DrawFn) -> str:
    column = draw(st.sampled_from(["quantity", "cost_basis", "acquired", "lot_id"]))
    value = draw(BAD_VALUES | st.just(AS_OF + pd.Timedelta(days=3)))
    _cell(case["lots"], draw, column, value)
    return f"lots {column}"


def lots_shape(case: Case, draw: st.DrawFn) -> str:
    lots = case["lots"]
    change = draw(st.sampled_from(["drop", "duplicate", "unknown", "empty"]))
    if change == "drop":
        column = draw(st.sampled_from(LOT_COLUMNS))
        case["lots"] = lots.drop(columns=column, errors="ignore")
    elif change == "duplicate":
        case["lots"] = pd.concat([lots, lots.head(1)], ignore_index=True)
    elif change == "unknown":
        _cell(lots, draw, "asset", "ZZZ")
    else:
        case["lots"] = lots.iloc[0:0]
    return f"lots {change}"


def cash(case: Case, draw: st.DrawFn) -> str:
    case["cash"] = draw(BAD_VALUES | SCALES.map(lambda e: 10**e) | st.just(0.0))
    return "cash"


def targets(case: Case, draw: st.DrawFn) -> str:
    weights = case["targets"].astype(object)
    change = draw(
        st.sampled_from(["value", "sum", "duplicate", "unknown", "empty", "cash"])
    )
    if change == "value" and len(weights):
        weights.iloc[draw(st.integers(0, len(weights) - 1))] = draw(BAD_VALUES)
    elif change == "sum":
        factor = draw(st.sampled_from([0.0, 0.5, 1 + 1e-5, 3.0]))
        weights = pd.to_numeric(weights, errors="coerce") * factor
    elif change == "duplicate":
        weights = pd.concat([weights, weights.head(1)])
    elif change == "unknown":
        weights = (
            weights.rename(index={weights.index[0]: "ZZZ"}) if len(weights) else weights
        )
    elif change == "empty":
        weights = weights.iloc[0:0]
    else:
        weights = pd.Series({"CASH": 1.0})
    case["targets"] = weights
    return f"targets {change}"


def prices(case: Case, draw: st.DrawFn) -> str:
    table = case["prices"]
    change = draw(st.sampled_from(["value", "extreme", "drop", "duplicate", "remove"]))
    if change == "value":
        _cell(table, draw, draw(st.sampled_from(PRICE_NUMBERS)), draw(BAD_VALUES))
    elif change == "extreme":
        _cell(table, draw, "price", draw(SCALES.map(lambda e: 10**e)))
    elif change == "drop":
        column = draw(st.sampled_from(["asset", "price"]))
        case["prices"] = table.drop(columns=column, errors="ignore")
    elif change == "duplicate":
        case["prices"] = pd.concat([table, table.tail(1)], ignore_index=True)
    else:
        case["prices"] = table.iloc[1:]
    return f"prices {change}"


def covariance(case: Case, draw: st.DrawFn) -> str:
    sigma = case["covariance"].astype(object)
    i = draw(st.integers(0, len(sigma) - 1))
    sigma.iloc[i, i] = draw(BAD_VALUES)
    case["covariance"] = sigma
    return "covariance"


def rescale(case: Case, draw: st.DrawFn) -> str:
    """Scale cash and quantities so the account is worth 1e-9..1e12 dollars."""
    lots, table = case["lots"], case["prices"]
    try:
        price = lots["asset"].map(table.set_index("asset")["price"]).astype(float)
        value = float((lots["quantity"].astype(float) * price).sum()) + case["cash"]
    except (KeyError, TypeError, ValueError, pd.errors.InvalidIndexError):
        # an earlier corruption made the value unreadable
        return "rescale (no-op)"
    if not np.isfinite(value) or value <= 0:
        return "rescale (no-op)"
    factor = 10 ** draw(SCALES) / value
    case["lots"] = lots.assign(quantity=lots["quantity"].astype(float) * factor)
    case["cash"] *= factor
    return "account scaled to 1e-9..1e12 dollars"


CORRUPTIONS: tuple[Callable[[Case, st.DrawFn], str], ...] = (
    lots_value,
    lots_shape,
    cash,
    targets,
    prices,
    covariance,
    rescale,
)


@st.composite
def corrupted_cases(draw: st.DrawFn) -> tuple[Case, list[str], bool, str]:
    """Return a case, its corruption labels, fractional shares and a rounding."""
    case = draw(valid_cases())
    chosen = draw(st.lists(st.sampled_from(CORRUPTIONS), min_size=0, max_size=3))
    labels = [corruption(case, draw) for corruption in chosen] or ["valid"]
    fractional = draw(st.booleans())
    rounding = draw(st.sampled_from(["auto", "greedy", "nearest", "none"]))
    return case, labels, fractional, rounding
