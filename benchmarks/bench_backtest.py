"""Which rebalancing policy wins: calendar, bands, tracking-error trigger, optimizer.

Real data: daily adjusted closes of 20 S&P 500 stocks shipped in ``skfolio``
(the ``data`` extra), 2004-2022; the first 252 days only feed the risk
estimate, so the backtest runs 2005-2022. Equal-weight target, $1M, 10 bp
linear cost, 40.8% short- and 23.8% long-term tax, dividends reinvested
through the total-return prices and not taxed. Prints the metrics table and
writes three figures (weights drift, cumulative cost and tax, the tracking
error vs cost frontier) next to this script in ``figures/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from models.history import sp500_prices
from solver.dynamic.policies import (
    OptimizerPolicy,
    Policy,
    band_policy,
    calendar_policy,
    tracking_error_policy,
)
from solver.dynamic.simulation import BacktestConfig, BacktestResult, backtest

FIGURES = Path(__file__).resolve().parent / "figures"
CONFIG = BacktestConfig(cost_bps=10.0, tax_rate_short=0.408, tax_rate_long=0.238)


def policies(quick: bool) -> list[Policy]:
    """Return the policies compared, with a few parameters each (the frontier)."""
    rules: list[Policy] = [
        calendar_policy("monthly"),
        calendar_policy("quarterly"),
        calendar_policy("annual"),
        band_policy(0.01),
        band_policy(0.02),
        band_policy(None, 0.25),
        band_policy(0.02, to_edge=True),
        tracking_error_policy(0.01),
        tracking_error_policy(0.02),
    ]
    optimizers: list[Policy] = [
        OptimizerPolicy(weight, tax_aware=aware, every=5, name=f"{label} λ={weight:g}")
        for weight in ((20.0,) if quick else (5.0, 20.0, 100.0))
        for aware, label in (
            (False, "optimizer tax-blind"),
            (True, "optimizer tax-aware"),
        )
    ]
    return rules + optimizers


def run(
    start: str, end: str, quick: bool, skip: Sequence[str]
) -> dict[str, BacktestResult]:
    """Run every policy but those whose name contains one of ``skip``."""
    prices = sp500_prices(start, end)
    target = pd.Series(1.0 / prices.shape[1], index=prices.columns)
    results = {}
    chosen = [p for p in policies(quick) if not any(s in p.name for s in skip)]
    for policy in chosen:
        began = time.perf_counter()
        results[policy.name] = backtest(prices, target, policy, CONFIG)
        seconds = time.perf_counter() - began
        results[policy.name].metrics["seconds"] = seconds
    return results


def table(results: dict[str, BacktestResult]) -> pd.DataFrame:
    """Return the comparison table, in readable units."""
    metrics = pd.DataFrame({k: r.metrics for k, r in results.items()}).T
    years = next(iter(results.values())).daily.shape[0] / 252
    base = metrics["after_tax_wealth"].iloc[0]

    def growth(wealth: pd.Series) -> pd.Series:
        return (wealth / CONFIG.initial_value) ** (1 / years)

    return pd.DataFrame(
        {
            "TE %": 100 * metrics["tracking_error"],
            "turnover %/yr": 100 * metrics["turnover_per_year"],
            "rebalances": metrics["rebalances"].astype(int),
            "costs $k": metrics["costs"] / 1e3,
            "taxes paid $k": metrics["taxes_paid"] / 1e3,
            "losses harvested $k": metrics["harvested_losses"] / 1e3,
            "after-tax wealth $M": metrics["after_tax_wealth"] / 1e6,
            "pre-tax %/yr": 100 * (growth(metrics["pre_tax_wealth"]) - 1),
            "after-tax %/yr": 100 * metrics["after_tax_return"],
            "tax drag %/yr": 100
            * (growth(metrics["pre_tax_wealth"]) - growth(metrics["after_tax_wealth"])),
            "vs monthly %/yr": 100
            * ((metrics["after_tax_wealth"] / base) ** (1 / years) - 1),
            "seconds": metrics["seconds"],
        }
    )


def figures(results: dict[str, BacktestResult], summary: pd.DataFrame) -> list[Path]:
    """Write the three figures; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(exist_ok=True)
    paths = [FIGURES / n for n in ("drift.png", "cost_tax.png", "frontier.png")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, name in zip(axes, ("calendar annual", "bands 0.02 to target"), strict=True):
        weights = results[name].weights
        ax.plot(weights.index, weights.to_numpy(), lw=0.6)
        ax.axhline(0.05, color="k", lw=1)
        ax.set_title(f"{name}: weights of the 20 stocks")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, result in results.items():
        if "λ=20" in name or name in ("calendar monthly", "bands 0.02 to target"):
            spent = (result.daily["cost"].iloc[1:] + result.daily["tax"]).cumsum()
            ax.plot(spent.index, spent / 1e3, label=name)
    ax.set_ylabel("cumulative cost + tax paid, $k")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, marker in (
        ("calendar", "o"),
        ("bands", "s"),
        ("TE", "^"),
        ("optimizer tax-blind", "x"),
        ("optimizer tax-aware", "D"),
    ):
        rows = summary[summary.index.str.startswith(family)]
        ax.scatter(rows["turnover %/yr"], rows["TE %"], marker=marker, label=family)
        for name, row in rows.iterrows():
            ax.annotate(
                str(name).split(" ", 1)[-1],
                (row["turnover %/yr"], row["TE %"]),
                fontsize=6,
            )
    ax.set_xlabel("turnover, % per year")
    ax.set_ylabel("realized tracking error, %")
    ax.set_title("Tracking error vs trading across policies")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close("all")
    return paths


def markdown(frame: pd.DataFrame) -> str:
    """Return ``frame`` as a markdown table, numbers to two decimals."""
    header = ["policy", *frame.columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---" + "|---:" * len(frame.columns) + "|",
    ]
    for name, row in frame.iterrows():
        cells = [f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2004-01-01")
    parser.add_argument("--end", default="2022-12-28")
    parser.add_argument("--quick", action="store_true", help="one optimizer weight")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="leave out policies whose name has these"
    )
    parser.add_argument("--csv", type=Path, help="also write the metrics here")
    args = parser.parse_args(argv)
    print(f"# policy backtest, {dt.datetime.now().isoformat(timespec='seconds')}")
    results = run(args.start, args.end, args.quick, args.skip)
    summary = table(results)
    print(markdown(summary))
    if args.csv is not None:
        summary.to_csv(args.csv)
    for path in figures(results, summary):
        print(f"figure: {path.relative_to(FIGURES.parent.parent)}")
    print(
        "\nTE: annualised std of the daily return minus the daily-rebalanced"
        " target's.\nAfter-tax wealth: liquidation value after tax at the end;"
        " vs monthly: its yearly growth over calendar monthly's."
    )


if __name__ == "__main__":
    main()
