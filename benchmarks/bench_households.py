"""Households: one joint program against each account solved on its own.

A household of 2, 3 or 4 accounts (``--accounts``) over N names
(``--sizes``, default 500) is rebalanced two ways, in the same run and on
the same accounts:

(j) jointly, ``solver.rebalance_household``: one tracking error for the
    household's total holdings, tax only in taxable accounts,
    ``NoBuyAndSell`` and ``WashSaleRule`` across accounts, each account's
    own cash floor; orders rounded account by account.
(s) separately, ``solver.rebalance`` on each account against the
    household's target; the household's time is the sum of its accounts'.

Objective ``(TrackingError(100), LinearCost(), TaxCost())``, constraints
``(MinCash(0.005), NoBuyAndSell(), WashSaleRule())``, default options. The
accounts come from ``models.synthetic`` (20-factor market, one target per
size, a different seed per account); the first account is taxable, then
tax-deferred, taxable, tax-exempt. A household of k accounts is the one of
k - 1 accounts plus one account, so the rows differ only by that account.

Quality is measured on the orders (after rounding): the household's
tracking error after, annualised, from its summed holdings against the
target with the dense covariance ``B F B' + D`` (for (j) also the result's
own ``summary["tracking_error_after"]``, and the largest difference between
the two is printed as a check), and the estimated tax, the sum of the
accounts' ``est_tax``. Below the table, the household's objective in
dollars, ``100 TE^2 V + cost + tax`` with V the household's value, shows
which way wins on what (j) minimises; (s) minimises the sum of its
accounts' own tracking-error penalties instead, never less than the household's.
The separate solves see neither ``NoBuyAndSell`` nor the wash-sale rule
across accounts, so a note counts what they do that the household may not:
assets bought in one account and sold in another, and the tax benefit
claimed on losses sold in a taxable account of an asset bought in another
account the same day (an upper bound of what the wash-sale rule would
disallow: the whole loss, not only the shares bought back).

Times are medians over ``--households`` households (default 5; the default
run takes well under a minute on 2 cores), after one untimed warm-up
household at 50 names.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version

import numpy as np
import pandas as pd

import solver
from models import (
    Account,
    LinearCost,
    Market,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
    WashSaleRule,
)
from models.risk import FactorRiskModel
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver import HouseholdResult, RebalanceResult

OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())
CONSTRAINTS = (MinCash(0.005), NoBuyAndSell(), WashSaleRule())
ACCOUNT_TYPES = ("taxable", "tax_deferred", "taxable", "tax_exempt")
ACCOUNT_VALUES = (1_000_000.0, 600_000.0, 400_000.0, 250_000.0)
SOLVED = ("optimal", "optimal_inaccurate", "no_trade")
WARM_UP_ASSETS = 50


@dataclass
class Measured:
    """What one household size measured, one entry per household."""

    joint_seconds: list[float] = field(default_factory=list)
    separate_seconds: list[float] = field(default_factory=list)
    joint_te: list[float] = field(default_factory=list)
    separate_te: list[float] = field(default_factory=list)
    joint_tax: list[float] = field(default_factory=list)
    separate_tax: list[float] = field(default_factory=list)
    joint_objective: list[float] = field(default_factory=list)
    separate_objective: list[float] = field(default_factory=list)
    both_ways: list[int] = field(default_factory=list)
    washed_tax: list[float] = field(default_factory=list)
    te_check: list[float] = field(default_factory=list)  # |recomputed - summary|
    notes: list[str] = field(default_factory=list)


def household(
    market: Market, targets: pd.Series, n_accounts: int, index: int
) -> list[Account]:
    """Return household ``index``: ``n_accounts`` accounts, a seed each."""
    accounts = []
    for k in range(n_accounts):
        account = synthetic_account(
            market,
            targets,
            account_id=f"H{index:02d}-{k}",
            value=ACCOUNT_VALUES[k % len(ACCOUNT_VALUES)],
            seed=1000 + 10 * index + k,
        )
        kind = ACCOUNT_TYPES[k % len(ACCOUNT_TYPES)]
        accounts.append(replace(account, account_type=kind))
    return accounts


def account_value(account: Account, market: Market) -> float:
    """Return cash plus the lots at market prices."""
    lots = account.lots
    prices = market.prices["price"].reindex(lots["asset"]).to_numpy(dtype=float)
    return float(account.cash + lots["quantity"].to_numpy(dtype=float) @ prices)


def covariance(market: Market, assets: pd.Index) -> np.ndarray:
    """Return the dense annual covariance ``B F B' + D`` over ``assets``."""
    risk = market.risk_model
    if not isinstance(risk, FactorRiskModel):
        raise TypeError(f"needs a FactorRiskModel, got {type(risk).__name__}")
    B = risk.loadings.reindex(assets).to_numpy(dtype=float)
    F = risk.factor_covariance.to_numpy(dtype=float)
    D = risk.specific_variance.reindex(assets).to_numpy(dtype=float)
    sigma: np.ndarray = B @ F @ B.T + np.diag(D)
    return sigma


def household_te(
    results: Sequence[RebalanceResult],
    values: Sequence[float],
    targets: pd.Series,
    sigma: np.ndarray,
) -> float:
    """Return the tracking error of the accounts' summed holdings after trading.

    Each account's ``weights["after"]`` (a fraction of its own pre-trade
    value) times that value, summed over accounts and divided by the
    household's value, against the target; ``sqrt(a' Sigma a)``, annual.
    """
    total = np.zeros(len(targets))
    for result, value in zip(results, values, strict=True):
        after = result.weights["after"].drop("CASH", errors="ignore")
        extra = after.index.difference(targets.index)
        if (after[extra].abs() > 0).any():
            raise ValueError(f"{result.account_id} holds untargeted {list(extra)}")
        total += after.reindex(targets.index, fill_value=0.0).to_numpy() * value
    active = total / sum(values) - targets.to_numpy(dtype=float)
    return float(np.sqrt(active @ sigma @ active))


def total(results: Sequence[RebalanceResult], name: str) -> float:
    """Return the accounts' sum of a summary field (``est_tax``, ``est_cost``)."""
    return float(sum(r.summary[name] for r in results))


def objective_dollars(
    results: Sequence[RebalanceResult], values: Sequence[float], te: float
) -> float:
    """Return the household's objective in dollars: 100 TE^2 V + cost + tax."""
    weight = OBJECTIVE[0].weight
    penalty = weight * te**2 * sum(values)
    return penalty + total(results, "est_cost") + total(results, "est_tax")


def conflicts(
    accounts: Sequence[Account], results: Sequence[RebalanceResult]
) -> tuple[int, float]:
    """Return what separate orders do that one household may not.

    The number of assets bought in one account and sold in another, and
    the est_tax (negative: a benefit) of loss sales in taxable accounts of
    assets another account buys.
    """
    bought: list[set[str]] = []
    sold: set[str] = set()
    for result in results:
        trades = result.trades
        bought.append(set(trades.loc[trades["side"] == "buy", "asset"]))
        sold |= set(trades.loc[trades["side"] == "sell", "asset"])
    washed = 0.0
    for k, (account, result) in enumerate(zip(accounts, results, strict=True)):
        if not account.taxable:
            continue
        elsewhere = set().union(*(b for j, b in enumerate(bought) if j != k))
        trades = result.trades
        loss = (trades["side"] == "sell") & (trades["realized_gain"] < 0)
        washed += float(
            trades.loc[loss & trades["asset"].isin(elsewhere), "est_tax"].sum()
        )
    return len(set().union(*bought) & sold), washed


def solve_joint(
    hid: str, accounts: list[Account], targets: pd.Series, market: Market
) -> tuple[float, HouseholdResult]:
    """Rebalance the household with one program; return seconds and result."""
    start = time.perf_counter()
    result = solver.rebalance_household(
        hid,
        accounts,
        targets=targets,
        market=market,
        objective=OBJECTIVE,
        constraints=CONSTRAINTS,
    )
    return time.perf_counter() - start, result


def solve_separate(
    accounts: list[Account], targets: pd.Series, market: Market
) -> tuple[float, list[RebalanceResult]]:
    """Rebalance each account alone; return summed seconds and results."""
    seconds, results = 0.0, []
    for account in accounts:
        start = time.perf_counter()
        result = solver.rebalance(
            account,
            targets=targets,
            market=market,
            objective=OBJECTIVE,
            constraints=CONSTRAINTS,
        )
        seconds += time.perf_counter() - start
        results.append(result)
    return seconds, results


def check_statuses(
    hid: str, joint: HouseholdResult, separate: Sequence[RebalanceResult]
) -> list[str]:
    """Describe any answer that is not optimal or a no-trade."""
    notes = []
    if str(joint.status) not in SOLVED:
        notes.append(f"{hid} (j): {joint.status}: {joint.message}")
    for r in separate:
        if str(r.status) not in SOLVED:
            notes.append(f"{hid} (s) {r.account_id}: {r.status}: {r.message}")
    return notes


def measure(n_assets: int, n_accounts: int, n_households: int) -> Measured:
    """Solve ``n_households`` households both ways; return what was measured."""
    market = synthetic_market(n_assets, n_factors=20, seed=0)
    targets = synthetic_targets(market, seed=0)
    sigma = covariance(market, targets.index)
    out = Measured()
    for index in range(n_households):
        hid = f"H{index:02d}"
        accounts = household(market, targets, n_accounts, index)
        values = [account_value(a, market) for a in accounts]
        t_joint, joint = solve_joint(hid, accounts, targets, market)
        t_separate, separate = solve_separate(accounts, targets, market)
        own = [joint.accounts[a.account_id] for a in accounts]
        recomputed = household_te(own, values, targets, sigma)
        reported = float(joint.summary["tracking_error_after"])
        out.joint_seconds.append(t_joint)
        out.separate_seconds.append(t_separate)
        separate_te = household_te(separate, values, targets, sigma)
        out.joint_te.append(reported)
        out.separate_te.append(separate_te)
        out.joint_tax.append(total(own, "est_tax"))
        out.separate_tax.append(total(separate, "est_tax"))
        out.joint_objective.append(objective_dollars(own, values, reported))
        out.separate_objective.append(objective_dollars(separate, values, separate_te))
        out.te_check.append(abs(recomputed - reported))
        both_ways, washed = conflicts(accounts, separate)
        out.both_ways.append(both_ways)
        out.washed_tax.append(washed)
        out.notes += check_statuses(hid, joint, separate)
    return out


def warm_up() -> None:
    """Solve one small household both ways, untimed (imports, first calls)."""
    market = synthetic_market(WARM_UP_ASSETS, n_factors=20, seed=0)
    targets = synthetic_targets(market, seed=0)
    accounts = household(market, targets, 2, 99)
    solve_joint("WARM", accounts, targets, market)
    solve_separate(accounts, targets, market)


def row(n_assets: int, n_accounts: int, n_households: int, m: Measured) -> str:
    """Return one markdown table row."""
    joint = statistics.median(m.joint_seconds)
    separate = statistics.median(m.separate_seconds)
    cells = [
        f"{n_accounts}",
        f"{n_assets}",
        f"{n_households}",
        f"{joint:.2f} ({joint / n_accounts:.2f})",
        f"{separate:.2f} ({separate / n_accounts:.2f})",
        f"{joint / separate:.2f}",
        f"{100 * statistics.median(m.joint_te):.3f}",
        f"{100 * statistics.median(m.separate_te):.3f}",
        f"{statistics.median(m.joint_tax):,.0f}",
        f"{statistics.median(m.separate_tax):,.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500])
    parser.add_argument("--households", type=int, default=5)
    parser.add_argument("--accounts", type=int, nargs="+", default=[2, 3, 4])
    args = parser.parse_args(argv)
    now = dt.datetime.now().isoformat(timespec="seconds")
    print(f"# household benchmark, {now}")
    print(
        f"Python {platform.python_version()}, cvxpy {version('cvxpy')}, "
        f"clarabel {version('clarabel')}\n"
    )
    warm_up()
    header = [
        "accounts",
        "names",
        "households",
        "(j) joint s/household (per account)",
        "(s) separate s/household (per account)",
        "(j)/(s)",
        "(j) TE after %",
        "(s) TE after %",
        "(j) tax $",
        "(s) tax $",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    checks: list[float] = []
    notes: list[str] = []
    objectives: list[str] = []
    for n_assets, n_accounts in itertools.product(args.sizes, args.accounts):
        m = measure(n_assets, n_accounts, args.households)
        print(row(n_assets, n_accounts, args.households, m), flush=True)
        checks += m.te_check
        joint_objective = statistics.median(m.joint_objective)
        separate_objective = statistics.median(m.separate_objective)
        objectives.append(
            f"- {n_accounts} x {n_assets}: (j) {joint_objective:,.0f}, "
            f"(s) {separate_objective:,.0f}; (s) buys in one account and sells "
            f"in another {statistics.median(m.both_ways):.0f} assets, and counts "
            f"a tax saving of {-statistics.median(m.washed_tax):,.0f} $ on losses "
            "of assets another account buys (would be washed)"
        )
        notes += [f"{n_accounts} x {n_assets}: {note}" for note in m.notes]
    print(
        "\nMedians over the households. Seconds are wall time per household "
        "(per account in brackets); (s) sums its accounts' solves. TE = the "
        "household's tracking error after the rounded orders, annualised; "
        "tax = the accounts' summed est_tax."
    )
    print("\nHousehold objective $, 100 TE^2 V + cost + tax, median:")
    for line in objectives:
        print(line)
    print(
        "\nCheck: (j) TE recomputed from its accounts' weights with B F B' + D "
        f"differs from its summary by at most {100 * max(checks):.1e} % points."
    )
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
