"""How a result reads in a notebook: an HTML summary and a weights chart."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from solver.result import RebalanceResult

LARGEST_TRADES = 10


def money_figures(result: RebalanceResult) -> pd.Series:
    """Return the summary's figures with their units in the labels."""
    s = result.summary
    buys = result.trades.loc[result.trades["side"] == "buy", "value"]
    sells = result.trades.loc[result.trades["side"] == "sell", "value"]
    figures = {
        "tracking error before, % a year": 100 * s["tracking_error_before"],
        "tracking error after, % a year": 100 * s["tracking_error_after"],
        "turnover, % of value (one way)": 100 * s["turnover"],
        "bought, money": float(buys.sum()),
        "sold, money": float(sells.sum()),
        "estimated cost, money": s["est_cost"],
        "estimated tax, money (< 0: a benefit)": s["est_tax"],
        "realized gain short-term, money": s["realized_gain_short"],
        "realized gain long-term, money": s["realized_gain_long"],
        "cash after, money": s["cash_after"],
    }
    return pd.Series(figures, name=result.account_id, dtype=float)


def largest_trades(
    result: RebalanceResult, count: int = LARGEST_TRADES
) -> pd.DataFrame:
    """Return the largest trades by value, lots of one asset and side together."""
    trades = result.trades
    if trades.empty:
        return pd.DataFrame(columns=["asset", "side", "quantity", "value", "reason"])
    grouped = trades.groupby(["asset", "side"], sort=False).agg(
        quantity=("quantity", "sum"),
        value=("value", "sum"),
        reason=("reason", lambda r: ", ".join(dict.fromkeys(r))),
    )
    return grouped.sort_values("value", ascending=False).head(count).reset_index()


def to_html(result: RebalanceResult) -> str:
    """Return the status, message, money figures and largest trades as HTML."""
    status = html.escape(str(result.status))
    parts = [f"<div><p>Account {html.escape(result.account_id)}: <b>{status}</b>"]
    if result.message:
        parts.append(f" ({html.escape(result.message)})")
    parts.append("</p>")
    figures = money_figures(result).dropna()
    parts.append(figures.to_frame("").to_html(float_format="{:,.2f}".format))
    if not result.trades.empty:
        shown = largest_trades(result)
        rows = f"by asset and side, of {len(result.trades)} trade rows"
        parts.append(f"<p>Largest trades by value ({rows})</p>")
        parts.append(shown.to_html(index=False, float_format="{:,.2f}".format))
    parts.append("</div>")
    return "".join(parts)


def plot_weights(result: RebalanceResult, ax: Any = None, top: int = 30) -> Any:
    """Draw current, target and after weights (%) of the ``top`` largest assets.

    Needs matplotlib (the ``plot`` extra). Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    weights = result.weights
    if weights.empty:
        raise ValueError(f"account {result.account_id!r} has no weights to plot")
    size = weights[["current", "target", "after"]].abs().max(axis=1)
    shown = weights.loc[size.sort_values(ascending=False).index[:top]]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(shown)), 3.5))
    x = np.arange(len(shown))
    for k, column in enumerate(("current", "target", "after")):
        ax.bar(x + (k - 1) * 0.27, 100 * shown[column], width=0.27, label=column)
    ax.set_xticks(x, shown.index, rotation=90)
    ax.set_ylabel("weight, % of account value")
    ax.set_title(f"{result.account_id}: {result.status}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax
