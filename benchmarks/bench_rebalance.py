"""Speed of ``solver.rebalance`` against a plain cvxpy program of the same problem.

For each universe size one synthetic market is built and several accounts
(different seeds) are rebalanced three ways, each timed as a whole:

(a) ``solver.rebalance`` with tracking error, linear cost and tax cost under
    ``MaxTurnover(0.10)`` and ``MinCash(0.005)``;
(b) a plain cvxpy program written here from the raw tables (lots, cash,
    prices, factor model, targets), rebuilt from scratch for every account;
(c) (a) plus ``NoBuyAndSell()`` (solve, fix sides, re-solve), for information.

(a) and (b) must reach the same optimum. Run ``python
benchmarks/bench_rebalance.py [--sizes 50 500 2000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import clarabel
import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

import solver
from models import (
    Account,
    LinearCost,
    Market,
    MaxTurnover,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.result import SolveOptions

N_FACTORS = 20
MARKET_SEED = 0
TARGET_SEED = 0
WARMUP_SEED = 999
FIRST_ACCOUNT_SEED = 100
RUNS_BY_SIZE = ((50, 15), (500, 11), (2000, 5))
FALLBACK_RUNS = 5
TE_WEIGHT = 100.0
TURNOVER = 0.10
MIN_CASH = 0.005
RTOL = 1e-5  # same objective: |a - b| / max(|b|, 1e-8) below this
SIDE_TOLERANCE = 1e-9  # fraction of V, as in the library's trade cleaning


@dataclass(frozen=True)
class Plain:
    """What the plain cvxpy run returns."""

    objective: float
    status: str
    compile_seconds: float
    solve_seconds: float


@dataclass(frozen=True)
class Run:
    """Timings and checks for one account."""

    rebalance_seconds: float
    plain_seconds: float
    one_side_seconds: float
    rel_diff: float
    compile_seconds: float
    solver_seconds: float
    both_sides: bool  # (a) buys and sells one asset: NoBuyAndSell re-solves
    one_sided: bool  # (c) never buys and sells one asset
    one_side_objective_gap: float  # (c) minus (a), fraction of V


CONTINUOUS = SolveOptions(rounding="none")  # this benchmark times the continuous solve


def objective_terms() -> tuple[TrackingError, LinearCost, TaxCost]:
    """Return the benchmark objective."""
    return (TrackingError(weight=TE_WEIGHT), LinearCost(), TaxCost(loss_factor=1.0))


def run_rebalance(
    account: Account, targets: pd.Series, market: Market, *, one_side: bool
) -> solver.RebalanceResult:
    """Rebalance with the library (optionally with ``NoBuyAndSell``)."""
    constraints: tuple[MaxTurnover | MinCash | NoBuyAndSell, ...] = (
        MaxTurnover(TURNOVER),
        MinCash(MIN_CASH),
    )
    if one_side:
        constraints = (*constraints, NoBuyAndSell())
    result = solver.rebalance(
        account,
        targets=targets,
        market=market,
        objective=objective_terms(),
        constraints=constraints,
        options=CONTINUOUS,
    )
    if result.status != "optimal":
        raise RuntimeError(f"{account.account_id}: status {result.status}")
    return result


def run_plain(account: Account, targets: pd.Series, market: Market) -> Plain:
    """Build and solve the same problem as plain cvxpy from the raw inputs."""
    lots = account.lots[account.lots["quantity"] > 0]
    risky = targets.drop("CASH", errors="ignore")
    assets = risky.index.union(pd.Index(lots["asset"].unique()))
    table = market.prices.loc[assets]
    price = table["price"].to_numpy(dtype=float)
    cost = table["cost_bps"].to_numpy(dtype=float) / 1e4
    wt = risky.reindex(assets, fill_value=0.0).to_numpy(dtype=float)

    lot_asset = assets.get_indexer(lots["asset"])
    lot_price = price[lot_asset]
    lot_value = lots["quantity"].to_numpy(dtype=float) * lot_price
    V = account.cash + lot_value.sum()
    n, m = len(assets), len(lots)
    S = sp.csr_array((np.ones(m), (lot_asset, np.arange(m))), shape=(n, m))
    w0 = S @ lot_value / V
    capacity = lot_value / V
    cash0 = account.cash / V

    long_term = (market.as_of > lots["acquired"] + pd.DateOffset(years=1)).to_numpy()
    rate = np.where(long_term, account.tax_rate_long, account.tax_rate_short)
    tax = rate * (lot_price - lots["cost_basis"].to_numpy(dtype=float)) / lot_price

    risk = market.risk_model
    B = risk.loadings.loc[assets].to_numpy(dtype=float)
    F = risk.factor_covariance.loc[
        risk.loadings.columns, risk.loadings.columns
    ].to_numpy(dtype=float)
    Fh = np.linalg.cholesky(F).T  # Fh' Fh = F
    d = risk.specific_variance.loc[assets].to_numpy(dtype=float)

    b = cp.Variable(n, nonneg=True)
    s = cp.Variable(m, nonneg=True)
    sells = S @ s
    w = w0 + b - sells
    active = w - wt
    tracking = cp.sum_squares(Fh @ (B.T @ active)) + cp.sum_squares(
        cp.multiply(np.sqrt(d), active)
    )
    trading = cost @ (b + sells)
    cash = cash0 - cp.sum(b) + cp.sum(s) - trading
    problem = cp.Problem(
        cp.Minimize(TE_WEIGHT * tracking + trading + tax @ s),
        [
            s <= capacity,
            cash >= 0,
            cash >= MIN_CASH,
            cp.sum(b) + cp.sum(s) <= 2 * TURNOVER,
        ],
    )
    problem.solve(solver="CLARABEL")
    return Plain(
        objective=float(problem.value),
        status=str(problem.status),
        compile_seconds=float(problem.compilation_time or np.nan),
        solve_seconds=float(problem.solver_stats.solve_time or np.nan),
    )


def buys_and_sells(trades: pd.DataFrame) -> bool:
    """Return whether some asset is both bought and sold in a trades table."""
    traded = trades[trades["value"] > 0]
    bought = set(traded.loc[traded["side"] == "buy", "asset"])
    sold = set(traded.loc[traded["side"] == "sell", "asset"])
    return bool(bought & sold)


def timed(function, *args, **kwargs):
    """Return ``(seconds, value)`` of one call."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def bench_account(account: Account, targets: pd.Series, market: Market) -> Run:
    """Time the three approaches on one account and compare the optima."""
    seconds_a, result_a = timed(run_rebalance, account, targets, market, one_side=False)
    seconds_b, plain = timed(run_plain, account, targets, market)
    seconds_c, result_c = timed(run_rebalance, account, targets, market, one_side=True)
    if plain.status != cp.OPTIMAL:
        raise RuntimeError(f"{account.account_id}: plain status {plain.status}")
    obj_a = float(result_a.summary["objective_continuous"])
    obj_c = float(result_c.summary["objective_continuous"])
    return Run(
        rebalance_seconds=seconds_a,
        plain_seconds=seconds_b,
        one_side_seconds=seconds_c,
        rel_diff=abs(obj_a - plain.objective) / max(abs(plain.objective), 1e-8),
        compile_seconds=plain.compile_seconds,
        solver_seconds=plain.solve_seconds,
        both_sides=buys_and_sells(result_a.trades),
        one_sided=not buys_and_sells(result_c.trades),
        one_side_objective_gap=obj_c - obj_a,
    )


def bench_size(n_assets: int, runs: int) -> list[Run]:
    """Benchmark ``runs`` accounts on one market of ``n_assets`` assets."""
    market = synthetic_market(n_assets, n_factors=N_FACTORS, seed=MARKET_SEED)
    targets = synthetic_targets(market, seed=TARGET_SEED)
    warmup = synthetic_account(market, targets, seed=WARMUP_SEED, account_id="WARM")
    bench_account(warmup, targets, market)  # untimed: imports, caches, JIT paths
    return [
        bench_account(
            synthetic_account(
                market, targets, seed=FIRST_ACCOUNT_SEED + k, account_id=f"B{k:02d}"
            ),
            targets,
            market,
        )
        for k in range(runs)
    ]


def median_ms(values: Sequence[float]) -> float:
    """Return the median of seconds, in milliseconds."""
    return 1e3 * statistics.median(values)


def report(results: dict[int, list[Run]]) -> str:
    """Return the markdown tables for all sizes."""
    lines = [
        "| N | accounts | rebalance median ms | plain cvxpy median ms "
        "| ratio (plain / rebalance) | rebalance+NoBuyAndSell median ms "
        "| max rel. objective diff | same objective |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for n, runs in results.items():
        a = median_ms([r.rebalance_seconds for r in runs])
        b = median_ms([r.plain_seconds for r in runs])
        c = median_ms([r.one_side_seconds for r in runs])
        worst = max(r.rel_diff for r in runs)
        same = "yes" if worst < RTOL else "no"
        lines.append(
            f"| {n} | {len(runs)} | {a:.1f} | {b:.1f} | {b / a:.2f} | {c:.1f} "
            f"| {worst:.2e} | {same} |"
        )
    lines += [
        "",
        "| N | median rel. objective diff | plain: median compilation_time ms "
        "| plain: median solver solve_time ms | NoBuyAndSell: re-solve needed "
        "| NoBuyAndSell: one-sided result | NoBuyAndSell: median time / rebalance "
        "| NoBuyAndSell: median objective cost |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, runs in results.items():
        k = len(runs)
        slowdown = statistics.median(
            r.one_side_seconds / r.rebalance_seconds for r in runs
        )
        lines.append(
            f"| {n} | {statistics.median(r.rel_diff for r in runs):.2e} "
            f"| {median_ms([r.compile_seconds for r in runs]):.1f} "
            f"| {median_ms([r.solver_seconds for r in runs]):.1f} "
            f"| {sum(r.both_sides for r in runs)}/{k} "
            f"| {sum(r.one_sided for r in runs)}/{k} "
            f"| {slowdown:.2f} "
            f"| {statistics.median(r.one_side_objective_gap for r in runs):.2e} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[n for n, _ in RUNS_BY_SIZE]
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="accounts per size (default: 15, 11, 5 for N = 50, 500, 2000)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print markdown tables."""
    args = parse_args(argv)
    default_runs = dict(RUNS_BY_SIZE)
    print(f"# rebalance benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"Python {platform.python_version()}, cvxpy {cp.__version__}, "
        f"clarabel {clarabel.__version__}, numpy {np.__version__}, "
        f"pandas {pd.__version__}; {platform.machine()}"
    )
    print(
        f"{N_FACTORS} factors; objective {TE_WEIGHT:g} * TE^2 + linear cost + tax "
        f"(loss_factor 1); MaxTurnover({TURNOVER}), MinCash({MIN_CASH}); "
        "wall time per account, one untimed warm-up account per size"
    )
    print()
    results = {}
    for n in args.sizes:
        runs = args.runs or default_runs.get(n, FALLBACK_RUNS)
        results[n] = bench_size(n, runs)
    print(report(results))
    print()
    print(
        "ratio > 1: rebalance faster. NoBuyAndSell re-solve needed = accounts "
        "whose (a) trades buy and sell one asset; one-sided = (c) trades never do; "
        "time / rebalance approximates the number of solves (at most 2); objective "
        "cost = (c) minus (a) objective_continuous, fraction of V."
    )


if __name__ == "__main__":
    main()
