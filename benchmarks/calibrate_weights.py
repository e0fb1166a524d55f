"""What a tracking-error weight means in money, on real prices and tax lots.

The objective is ``w * TE^2 + cost_weight * cost / V + tax_weight * tax / V``,
every term a fraction of the account value ``V`` and ``TE`` the annualised
tracking error (a fraction) when the risk model holds annual variances of
returns. So holding a tracking error ``TE`` costs ``w * TE^2 * V`` of money in
the objective, and at the optimum the trades stop where one more point of
tracking error saved would cost more than ``2 * w * TE * V / 100`` in tax
and cost. This script measures it on the 20 S&P 500 stocks that ship with
``skfolio`` (``models.history.sp500_prices``), as of 2022-12-28, with an
annual Ledoit-Wolf covariance of the last two years of daily returns
(``shrunk_covariance``, x 252), 10 bp costs, 40.8% / 23.8% tax, an
equal-weight target (4.95% each, 1% cash), one side per asset and a 0.5%
cash floor. It prints markdown tables:

1. the worked example: a $1M account 65% in AAPL (bought 2010 and 2016) with
   a few other positions, two of them at a loss, rebalanced at each weight;
   orders from ``solver.rebalance`` (fractional shares, greedy rounding),
   with the objective re-computed from the summary as a check;
2. the same account with the risk model in the wrong units (daily variance,
   price levels) and with the other knobs (``tax_weight``, ``loss_factor``);
3. the same account under ``MaxTurnover(0.10)``, with and without
   ``MaxCash``: where the proceeds of a capped sale go;
4. the evidence for a default: 20 accounts, each 60% in one stock bought ten
   years earlier (2012-12-31) and 39% spread equally over the other 19 bought
   two years earlier, at each weight: medians of tax paid and tracking error
   kept, and the rule of thumb ``TE kept = (r g + 2 c) / (2 w s)`` against
   the measure (``r g`` the tax per dollar sold, ``c`` the cost rate, ``s``
   the tracking error of one unit of overweight in the stock funded from the
   rest of the target).

Runs in a few seconds:
``python benchmarks/calibrate_weights.py [--weights 1 3 10 20 30 100] [--value 1e6]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

import solver
from models import (
    Account,
    LinearCost,
    Market,
    MaxCash,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    shrunk_covariance,
)
from models.history import sp500_prices
from models.terms import Constraint

AS_OF = "2022-12-28"  # the last day of the bundled prices
LOOKBACK_DAYS = 504  # two years of daily returns for the risk model
COST_BPS = 10.0
TAX_RATE_LONG = 0.238
CASH_TARGET = 0.01
CONCENTRATED_SINCE = "2012-12-31"
REST_SINCE = "2020-12-31"
WORKED_LOTS = (  # asset, bought, fraction of V at AS_OF; the rest is cash
    ("AAPL", "2010-01-04", 0.55),
    ("AAPL", "2016-06-01", 0.10),
    ("MSFT", "2013-06-03", 0.10),
    ("JNJ", "2016-03-01", 0.08),
    ("XOM", "2014-06-02", 0.07),
    ("AMD", "2021-11-29", 0.05),
    ("BAC", "2022-02-10", 0.03),
)
OPTIONS = solver.SolveOptions(rounding="greedy")


def first_day(prices: pd.DataFrame, date: str) -> tuple[pd.Timestamp, pd.Series]:
    """Return the first trading day on or after ``date`` and its prices."""
    row = int(prices.index.searchsorted(date))
    return pd.Timestamp(prices.index[row]), prices.iloc[row]


def volatility(market: Market, assets: pd.Index) -> np.ndarray:
    """Return each asset's volatility in the risk model's own units."""
    root = market.risk_model.root(pd.Index(assets.astype(str), name="asset"))
    vol: np.ndarray = np.sqrt((root.G**2).sum(axis=0) + root.d)
    return vol


def make_market(
    prices: pd.DataFrame, *, periods_per_year: int = 252, on_levels: bool = False
) -> Market:
    """Return the market as of the last price; risk from the last two years."""
    window = prices.iloc[-LOOKBACK_DAYS - 1 :]
    history = window.iloc[1:] if on_levels else window.pct_change().iloc[1:]
    risk = shrunk_covariance(history, periods_per_year=periods_per_year)
    table = pd.DataFrame(
        {
            "asset": prices.columns,
            "price": prices.iloc[-1].to_numpy(),
            "cost_bps": COST_BPS,
        }
    )
    return Market(as_of=prices.index[-1], prices=table, risk_model=risk)


def equal_targets(assets: pd.Index) -> pd.Series:
    """Return equal weights over ``assets`` and the cash target."""
    targets = pd.Series((1 - CASH_TARGET) / len(assets), index=assets.astype(str))
    targets["CASH"] = CASH_TARGET
    return targets


def make_account(
    prices: pd.DataFrame,
    holdings: Sequence[tuple[str, str, float]],
    *,
    value: float,
    account_id: str,
) -> Account:
    """Return an account holding ``(asset, bought, fraction of V)`` lots, rest cash."""
    last = prices.iloc[-1]
    rows = []
    for asset, bought, fraction in holdings:
        day, then = first_day(prices, bought)
        rows.append(
            {
                "asset": asset,
                "lot_id": f"{asset}-{day.date()}",
                "quantity": fraction * value / last[asset],
                "cost_basis": float(then[asset]),
                "acquired": day,
            }
        )
    cash = value * (1 - sum(f for _, _, f in holdings))
    lots = pd.DataFrame(rows)
    return Account(account_id, cash=cash, lots=lots, fractional_shares=True)


@dataclass(frozen=True)
class Answer:
    """One rebalance in money: value, tracking errors, trades, tax, objective."""

    value: float
    te_before: float
    te_after: float
    turnover: float  # one-way, money
    tax: float
    cost: float
    cash_after: float
    aapl_sold: float
    objective: float  # summary.objective_discrete, fractions of V
    objective_check: float  # w TE^2 + (cost + tax_weight tax) / V


def solve(
    account: Account,
    market: Market,
    targets: pd.Series,
    weight: float,
    *,
    tax_weight: float = 1.0,
    loss_factor: float = 1.0,
    constraints: Sequence[Constraint] = (NoBuyAndSell(), MinCash(0.005)),
) -> Answer:
    """Rebalance at one tracking-error weight; return the figures in money."""
    result = solver.rebalance(
        account,
        targets=targets,
        market=market,
        objective=(
            TrackingError(weight),
            LinearCost(),
            TaxCost(loss_factor, weight=tax_weight),
        ),
        constraints=constraints,
        options=OPTIONS,
    )
    s, trades = result.summary, result.trades
    price = market.prices.loc[account.lots["asset"], "price"].to_numpy()
    value = account.cash + float((account.lots["quantity"].to_numpy() * price).sum())
    te = float(s["tracking_error_after"])
    cost, tax = float(s["est_cost"]), float(s["est_tax"])
    sold = trades[(trades["side"] == "sell") & (trades["asset"] == "AAPL")]
    return Answer(
        value=value,
        te_before=float(s["tracking_error_before"]),
        te_after=te,
        turnover=float(s["turnover"]) * value,
        tax=tax,
        cost=cost,
        cash_after=float(s["cash_after"]),
        aapl_sold=float(sold["value"].sum()),
        objective=float(s["objective_discrete"]),
        objective_check=weight * te**2 + (cost + tax_weight * tax) / value,
    )


def active_volatility(market: Market, targets: pd.Series, asset: str) -> float:
    """Return the tracking error of one unit overweight in ``asset``.

    The unit is funded from the other target assets in proportion to their
    targets: the direction the optimizer trades along when it sells ``asset``.
    """
    risky = targets.drop("CASH")
    others = risky.drop(asset)
    direction = pd.Series(0.0, index=risky.index)
    direction[asset] = 1.0
    direction[others.index] = -others / others.sum()
    root = market.risk_model.root(pd.Index(risky.index, name="asset"))
    return float(np.sqrt(root.variance(direction.to_numpy())))


def money(x: float) -> str:
    """Return whole dollars with thousands separators."""
    return f"{x:,.0f}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a markdown table, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|---" + "|---:" * (len(header) - 1) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def worked_example(
    prices: pd.DataFrame, weights: Sequence[float], value: float
) -> None:
    """Print the worked example's table at each weight."""
    market = make_market(prices)
    targets = equal_targets(prices.columns)
    account = make_account(prices, WORKED_LOTS, value=value, account_id="WORKED")
    rows, worst = [], 0.0
    first = solve(account, market, targets, 0.0)
    held = sum(f for a, _, f in WORKED_LOTS if a == "AAPL")
    print(
        f"## Worked example: ${money(value)}, {held:.0%} in AAPL, TE before "
        f"{first.te_before:.2%}\n"
    )
    previous: Answer | None = None
    for w in weights:
        r = solve(account, market, targets, w)
        worst = max(worst, abs(r.objective - r.objective_check))
        te = r.te_after
        measured = ""
        if previous is not None and previous.te_after - te > 1e-4:
            paid = r.tax + r.cost - previous.tax - previous.cost
            measured = money(paid / (previous.te_after - te) * 0.001)
        rows.append(
            [
                f"{w:g}",
                money(r.turnover),
                money(r.aapl_sold),
                f"{money(r.tax)} ({r.tax / value:.1%})",
                f"{te:.2%}",
                money(r.cash_after),
                money(w * te**2 * value),
                money(2 * w * te * value * 0.001),
                measured,
            ]
        )
        previous = r
    print(
        markdown(
            [
                "w",
                "turnover $",
                "AAPL sold $",
                "est. tax $ (% of V)",
                "TE after",
                "cash after $",
                "w TE^2 V $",
                "margin: 2 w TE V / 1000 $",
                "measured from the row above $",
            ],
            rows,
        )
    )
    print(
        "\nw TE^2 V: what the tracking error left costs in the objective. "
        "Margin: what the optimizer pays in tax and cost, at most, for 0.1 "
        "point less tracking error at its answer; measured: the extra tax and "
        "cost of this row over the row above, per 0.1 point of tracking error "
        "it removed (it lies between the two rows' margins when the answers "
        "are on one smooth curve). Numeric check, summary objective_discrete "
        f"against w TE^2 + (cost + tax) / V: largest difference {worst:.1e} of "
        "V.\n"
    )


def wrong_units(prices: pd.DataFrame, value: float) -> None:
    """Print the worked example with a daily or a price-level risk model."""
    targets = equal_targets(prices.columns)
    account = make_account(prices, WORKED_LOTS, value=value, account_id="WORKED")
    annual, daily = make_market(prices), make_market(prices, periods_per_year=1)
    levels = make_market(prices, on_levels=True)
    cases = [
        ("annual (right)", annual, 100.0, 1.0, 1.0),
        ("daily", daily, 100.0, 1.0, 1.0),
        ("annual, w / 252", annual, 100.0 / 252, 1.0, 1.0),
        ("price levels x 252", levels, 100.0, 1.0, 1.0),
        ("annual, tax_weight 0 (tax-blind)", annual, 20.0, 0.0, 1.0),
        ("annual, tax_weight 0.5", annual, 20.0, 0.5, 1.0),
        ("annual (right)", annual, 20.0, 1.0, 1.0),
        ("annual, tax_weight 2", annual, 20.0, 2.0, 1.0),
        ("annual, loss_factor 0", annual, 20.0, 1.0, 0.0),
    ]
    rows, notes = [], []
    for name, market, w, tax_weight, loss_factor in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = solve(
                account,
                market,
                targets,
                w,
                tax_weight=tax_weight,
                loss_factor=loss_factor,
            )
        notes += [f"- {name}: {x.category.__name__}: {x.message}" for x in caught]
        rows.append(
            [
                name,
                f"{w:.4g}",
                f"{tax_weight:g} / {loss_factor:g}",
                f"{r.te_before:.2%}",
                money(r.turnover),
                money(r.tax),
                f"{r.te_after:.2%}",
                money(r.cash_after),
            ]
        )
    print("## Units of the risk model and the other weights (worked example)\n")
    print(
        markdown(
            [
                "risk model / knob",
                "w",
                "tax_weight / loss_factor",
                "TE before (model units)",
                "turnover $",
                "est. tax $",
                "TE after (model units)",
                "cash after $",
            ],
            rows,
        )
    )
    print(
        "\nTE after is in the model's own units: a daily model reports daily "
        "tracking errors (x sqrt(252) for annual); on price levels it means "
        "nothing. Median asset volatility of the daily model: "
        f"{np.median(volatility(daily, prices.columns)):.2%} "
        "(per day).\n"
    )
    print("Warnings from the library:\n" + ("\n".join(notes) or "- none") + "\n")


def turnover_cap(prices: pd.DataFrame, value: float) -> None:
    """Print the worked example under a turnover cap, with and without MaxCash."""
    market = make_market(prices)
    targets = equal_targets(prices.columns)
    account = make_account(prices, WORKED_LOTS, value=value, account_id="WORKED")
    cases: list[tuple[str, tuple[Constraint, ...]]] = [
        ("cash floor 0.5%", (NoBuyAndSell(), MinCash(0.005))),
        ("+ MaxTurnover(0.10)", (NoBuyAndSell(), MinCash(0.005), MaxTurnover(0.1))),
        (
            "+ MaxTurnover(0.10), MaxCash(0.02)",
            (NoBuyAndSell(), MinCash(0.005), MaxTurnover(0.1), MaxCash(0.02)),
        ),
    ]
    rows = []
    for name, constraints in cases:
        for w in (20.0, 100.0):
            r = solve(account, market, targets, w, constraints=constraints)
            rows.append(
                [
                    name,
                    f"{w:g}",
                    money(r.aapl_sold),
                    money(r.tax),
                    f"{r.te_after:.2%}",
                    f"{money(r.cash_after)} ({r.cash_after / value:.1%})",
                ]
            )
    print("## A turnover cap leaves the proceeds in cash (worked example)\n")
    print(
        markdown(
            [
                "constraints",
                "w",
                "AAPL sold $",
                "est. tax $",
                "TE after",
                "cash after $",
            ],
            rows,
        )
    )
    print()


def typical_accounts(
    prices: pd.DataFrame, weights: Sequence[float], value: float
) -> None:
    """Print medians over 20 concentrated accounts, and the rule of thumb's error."""
    market = make_market(prices)
    targets = equal_targets(prices.columns)
    last = prices.iloc[-1]
    _, then = first_day(prices, CONCENTRATED_SINCE)
    cost = COST_BPS / 1e4
    gains: dict[str, float] = {}
    per_weight: dict[float, list[tuple[str, float, Answer, float]]] = {
        w: [] for w in weights
    }
    for asset in prices.columns.astype(str):
        rest = [(a, REST_SINCE, 0.39 / 19) for a in prices.columns if a != asset]
        holdings = [(asset, CONCENTRATED_SINCE, 0.60), *rest]
        account = make_account(prices, holdings, value=value, account_id=asset)
        gain = 1 - float(then[asset]) / float(last[asset])
        gains[asset] = gain
        spread = active_volatility(market, targets, asset)
        for w in weights:
            r = solve(account, market, targets, w)
            rule = (TAX_RATE_LONG * max(gain, 0.0) + 2 * cost) / (2 * w * spread)
            rule = min(rule, r.te_before)
            per_weight[w].append((asset, gain, r, rule))
    appreciated = [a for a, g in gains.items() if g > 0]
    print(
        f"## 20 accounts, 60% in one stock bought {CONCENTRATED_SINCE}\n\n"
        f"{len(appreciated)} of 20 concentrated lots are at a gain (median gain "
        f"{statistics.median(gains[a] for a in appreciated):.0%} of the price); "
        f"medians over those {len(appreciated)}:\n"
    )
    rows = []
    for w in weights:
        kept = [x for x in per_weight[w] if x[1] > 0]
        te = [x[2].te_after for x in kept]
        ratio = [x[2].te_after / x[3] for x in kept]
        rows.append(
            [
                f"{w:g}",
                f"{statistics.median(x[2].te_before for x in kept):.2%}",
                f"{statistics.median(te):.2%} ({min(te):.2%}-{max(te):.2%})",
                money(statistics.median(x[2].turnover for x in kept)),
                money(statistics.median(x[2].tax for x in kept)),
                f"{statistics.median(x[2].tax / value for x in kept):.1%}",
                f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})",
                f"{statistics.median(w * t for t in te):.2f}",
            ]
        )
    print(
        markdown(
            [
                "w",
                "TE before",
                "TE after: median (range)",
                "turnover $",
                "est. tax $",
                "tax % of V",
                "measured / rule: median (range)",
                "w x TE after (a fraction): median",
            ],
            rows,
        )
    )
    spreads = [active_volatility(market, targets, a) for a in appreciated]
    s = statistics.median(spreads)
    g = statistics.median(gains[a] for a in appreciated)
    print(
        f"\nActive volatility s of one unit of overweight: median {s:.1%} "
        f"({min(spreads):.1%}-{max(spreads):.1%}). For the median lot (gain "
        f"{g:.0%}) the rule w = (r g + 2 c) / (2 s TE) gives: "
        + ", ".join(
            f"TE {te:.0%} -> w = {(TAX_RATE_LONG * g + 2 * cost) / (2 * s * te):.0f}"
            for te in (0.01, 0.02, 0.03, 0.05)
        )
        + "; with no gain to realize (cost only): TE 0.1% -> w = "
        f"{2 * cost / (2 * s * 0.001):.0f}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[1.0, 3.0, 10.0, 20.0, 30.0, 100.0]
    )
    parser.add_argument("--value", type=float, default=1e6, help="account value $")
    args = parser.parse_args()
    began = time.perf_counter()
    prices = sp500_prices("2010-01-01", AS_OF)
    worked_example(prices, args.weights, args.value)
    wrong_units(prices, args.value)
    turnover_cap(prices, args.value)
    typical_accounts(prices, args.weights, args.value)
    print(f"{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
