"""Speed and quality of turning the continuous trade list into whole-lot orders.

The pipeline timed here is the library's internal one: ``optimize`` (the
continuous solve), then the discrete step ``build_ladders`` + ``discretize``
with each rounding method (``nearest``, ``greedy``, ``milp``). A method that
raises is reported as ``n/a`` (with the error under the tables) instead of
stopping the run. Three sections:

1. speed: N = 50, 500, 2000 assets (20 factors), lot size 1, several
   accounts per N; median ms of the continuous solve and of the discrete
   step, and their ratio (target: discrete step <= 25% of the solve at
   N = 500); plus end-to-end ``solver.rebalance`` per ``rounding`` option;
2. quality: $1M accounts at N = 500, lot size 1 and 100; tracking-error gap,
   objective gap and leftover cash against the continuous optimum (targets:
   TE gap <= 1 bp at lot 1, <= 10 bp at lot 100);
3. from cash: a $1M all-cash account at N = 500, lot size 1 and 100.

Every order list is also checked by ``solver.orders.checks.verify`` (whole lots,
minimum trades, cash floor, turnover). Run ``python
benchmarks/bench_orders.py [--sizes 50 500 2000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import cvxpy as cp
import numpy as np
import pandas as pd

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
from models.account import LOT_COLUMNS
from models.snapshot import Snapshot, build_snapshot
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from models.terms import Constraint, Outcome
from solver.orders.checks import verify
from solver.orders.discrete import Rounded, discretize
from solver.orders.ladders import Ladders, build_ladders
from solver.orders.trades import trades_table
from solver.program.continuous import optimize
from solver.program.report import objective_value
from solver.program.solve import Solution
from solver.result import SolveOptions

N_FACTORS = 20
MARKET_SEED = 0
TARGET_SEED = 0
WARMUP_SEED = 999
FIRST_ACCOUNT_SEED = 100
RUNS_BY_SIZE = ((50, 15), (500, 11), (2000, 5))
FALLBACK_RUNS = 3
QUALITY_SIZE = 500
QUALITY_RUNS = 11
LOT_SIZES = (1, 100)
FROM_CASH_REPEATS = 3  # timings of the all-cash account: median of repeats
VALUE = 1_000_000.0
METHODS = ("nearest", "greedy", "milp")
END_TO_END = ("none", "nearest", "greedy", "milp")
TE_WEIGHT = 100.0
TURNOVER = 0.10
MIN_CASH = 0.005
OVERHEAD_TARGET = 0.25  # discrete step / continuous solve at N = 500
TE_GAP_TARGET_BP = {1: 1.0, 100: 10.0}
BP = 1e4


def objective_terms() -> tuple[TrackingError, LinearCost, TaxCost]:
    """Return the benchmark objective."""
    return (TrackingError(TE_WEIGHT), LinearCost(), TaxCost())


def drifted_constraints() -> list[Constraint]:
    """Constraints for drifted accounts (sections 1 and 2)."""
    return [MaxTurnover(TURNOVER), MinCash(MIN_CASH), NoBuyAndSell()]


def from_cash_constraints() -> list[Constraint]:
    """Constraints for the all-cash account: no turnover cap (it would stop
    investing at 2 * TURNOVER of V)."""
    return [MinCash(MIN_CASH), NoBuyAndSell()]


@dataclass(frozen=True)
class Rounding:
    """One method's orders for one account, or the error it raised."""

    seconds: float = np.nan
    te_bp: float = np.nan  # annualised tracking error after the orders
    te_gap_bp: float = np.nan  # minus the continuous tracking error
    objective_gap_bp: float = np.nan  # minus the continuous objective, bp of V
    cash: float = np.nan  # leftover cash, currency
    cash_fraction: float = np.nan
    orders: tuple[np.ndarray, np.ndarray] | None = None  # buy, lot shares
    violations: tuple[str, ...] = ()  # "name" (hard) or "name (soft)"
    error: str = ""


@dataclass(frozen=True)
class Case:
    """One account: the continuous optimum and every method's orders."""

    snapshot: Snapshot
    continuous_seconds: float
    te_bp: float
    cash: float
    cash_fraction: float
    roundings: dict[str, Rounding] = field(default_factory=dict)


def lot_market(base: Market, lot_size: float) -> Market:
    """Return ``base`` with every asset's lot size set to ``lot_size``."""
    return Market(
        as_of=base.as_of,
        prices=base.prices.reset_index().assign(lot_size=lot_size),
        risk_model=base.risk_model,
    )


def cash_account(account_id: str, cash: float) -> Account:
    """Return an account that holds only cash."""
    lots = pd.DataFrame({c: [] for c in LOT_COLUMNS}).astype(
        {"quantity": float, "cost_basis": float, "acquired": "datetime64[ns]"}
    )
    return Account(account_id=account_id, cash=cash, lots=lots)


def timed(function: Callable[[], object]) -> tuple[float, object]:
    """Return ``(seconds, value)`` of one call."""
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def tracking_error(s: Snapshot, o: Outcome) -> float:
    """Return the annualised tracking error of an outcome."""
    return float(np.sqrt(s.risk.variance(o.active)))


def round_with(
    s: Snapshot,
    optimum: Solution,
    constraints: Sequence[Constraint],
    method: str,
    repeats: int = 1,
) -> Rounding:
    """Time the discrete step with ``method``; evaluate and verify its orders."""
    objective = objective_terms()

    def step() -> tuple[Ladders, Rounded]:  # the timed discrete step
        ladders = build_ladders(s, optimum.mask, objective, fractional=False)
        rounded = discretize(ladders, optimum.answer, objective, constraints, method)
        return ladders, rounded

    try:
        times = []
        for _ in range(repeats):
            seconds, (ladders, rounded) = timed(step)
            times.append(seconds)
    except Exception as exc:  # report, do not stop the benchmark
        return Rounding(error=f"{type(exc).__name__}: {exc}")
    after = Outcome(
        s,
        rounded.buy_shares * s.prices / s.value,
        rounded.lot_shares * s.prices[s.lot_asset] / s.value,
    )
    te_cont = tracking_error(s, optimum.answer)
    te_after = tracking_error(s, after)
    gap = objective_value(objective, after) - objective_value(objective, optimum.answer)
    return Rounding(
        seconds=statistics.median(times),
        te_bp=te_after * BP,
        te_gap_bp=(te_after - te_cont) * BP,
        objective_gap_bp=gap * BP,
        cash=after.cash * s.value,
        cash_fraction=after.cash,
        orders=(rounded.buy_shares, rounded.lot_shares),
        violations=checked(
            s, rounded.buy_shares, rounded.lot_shares, ladders, constraints
        ),
    )


def checked(
    s: Snapshot,
    buy_shares: np.ndarray,
    lot_shares: np.ndarray,
    ladders: Ladders,
    constraints: Sequence[Constraint],
) -> tuple[str, ...]:
    """Return the constraints the orders break, as ``verify`` sees them."""
    try:
        trades = trades_table(s, buy_shares, lot_shares)
        _, violations = verify(s, trades, constraints, [], step=ladders.buy.step)
    except Exception as exc:  # the check itself failed: say so
        return (f"verify raised {type(exc).__name__}",)
    return tuple(
        row.constraint if not row.is_soft else f"{row.constraint} (soft)"
        for row in violations.itertuples()
    )


def solve_case(
    account: Account,
    targets: pd.Series,
    market: Market,
    constraints: Sequence[Constraint],
    methods: Sequence[str],
    repeats: int = 1,
) -> Case:
    """Solve one account (timed), then round it with every method (timed)."""
    s = build_snapshot(account, targets, market)
    times = []
    for _ in range(repeats):
        seconds, optimum = timed(
            lambda: optimize(s, objective_terms(), constraints, [], SolveOptions())
        )
        times.append(seconds)
    assert isinstance(optimum, Solution)
    return Case(
        snapshot=s,
        continuous_seconds=statistics.median(times),
        te_bp=tracking_error(s, optimum.answer) * BP,
        cash=optimum.answer.cash * s.value,
        cash_fraction=optimum.answer.cash,
        roundings={m: round_with(s, optimum, constraints, m, repeats) for m in methods},
    )


def accounts(market: Market, targets: pd.Series, runs: int) -> list[Account]:
    """Return ``runs`` drifted $1M accounts with different seeds."""
    return [
        synthetic_account(
            market,
            targets,
            seed=FIRST_ACCOUNT_SEED + k,
            account_id=f"B{k:02d}",
            value=VALUE,
        )
        for k in range(runs)
    ]


def rebalance_seconds(
    account: Account, targets: pd.Series, market: Market, rounding: str
) -> float:
    """Time the public call with one ``rounding`` option; nan if it raises."""
    try:
        seconds, _ = timed(
            lambda: solver.rebalance(
                account,
                targets=targets,
                market=market,
                objective=objective_terms(),
                constraints=drifted_constraints(),
                options=SolveOptions(rounding=rounding),
            )
        )
    except Exception:
        return np.nan
    return seconds


@dataclass(frozen=True)
class SpeedResult:
    """Section 1 for one universe size."""

    cases: list[Case]
    end_to_end: dict[str, list[float]]


def bench_speed(n_assets: int, runs: int) -> SpeedResult:
    """Time the pipeline on ``runs`` accounts of one market (lot size 1)."""
    market = lot_market(
        synthetic_market(n_assets, n_factors=N_FACTORS, seed=MARKET_SEED), 1
    )
    targets = synthetic_targets(market, seed=TARGET_SEED)
    warmup = synthetic_account(market, targets, seed=WARMUP_SEED, account_id="WARM")
    solve_case(warmup, targets, market, drifted_constraints(), METHODS)  # untimed
    for rounding in END_TO_END:
        rebalance_seconds(warmup, targets, market, rounding)
    population = accounts(market, targets, runs)
    cases = [
        solve_case(a, targets, market, drifted_constraints(), METHODS)
        for a in population
    ]
    end_to_end = {
        r: [rebalance_seconds(a, targets, market, r) for a in population]
        for r in END_TO_END
    }
    return SpeedResult(cases, end_to_end)


def bench_quality(runs: int) -> dict[int, list[Case]]:
    """Round ``runs`` $1M accounts at N = 500 for each lot size."""
    base = synthetic_market(QUALITY_SIZE, n_factors=N_FACTORS, seed=MARKET_SEED)
    out = {}
    for lot in LOT_SIZES:
        market = lot_market(base, lot)
        targets = synthetic_targets(market, seed=TARGET_SEED)
        out[lot] = [
            solve_case(a, targets, market, drifted_constraints(), METHODS)
            for a in accounts(market, targets, runs)
        ]
    return out


def bench_from_cash() -> dict[int, Case]:
    """Invest a $1M all-cash account at N = 500 for each lot size."""
    base = synthetic_market(QUALITY_SIZE, n_factors=N_FACTORS, seed=MARKET_SEED)
    out = {}
    for lot in LOT_SIZES:
        market = lot_market(base, lot)
        targets = synthetic_targets(market, seed=TARGET_SEED)
        out[lot] = solve_case(
            cash_account("CASH", VALUE),
            targets,
            market,
            from_cash_constraints(),
            METHODS,
            repeats=FROM_CASH_REPEATS,
        )
    return out


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{1e3 * seconds:.1f}"


def failed(roundings: Sequence[Rounding]) -> bool:
    """Whether a method raised on any of the accounts."""
    return any(r.error for r in roundings)


def same_orders(a: Rounding, b: Rounding) -> bool:
    """Whether two methods returned identical orders."""
    if a.orders is None or b.orders is None:
        return False
    return all(np.array_equal(x, y) for x, y in zip(a.orders, b.orders, strict=True))


def speed_table(results: dict[int, SpeedResult]) -> str:
    """Return the speed table (section 1)."""
    head = "| N | accounts | continuous solve median ms |"
    rule = "|---:|---:|---:|"
    for m in METHODS:
        head += f" {m}: discrete ms | {m}: / solve |"
        rule += "---:|---:|"
    lines = [head, rule]
    for n, result in results.items():
        cases = result.cases
        row = (
            f"| {n} | {len(cases)} "
            f"| {ms(statistics.median(c.continuous_seconds for c in cases))} |"
        )
        for m in METHODS:
            runs = [c.roundings[m] for c in cases]
            if failed(runs):
                row += " n/a | n/a |"
                continue
            ratio = statistics.median(
                r.seconds / c.continuous_seconds
                for r, c in zip(runs, cases, strict=True)
            )
            row += f" {ms(statistics.median(r.seconds for r in runs))} | {ratio:.0%} |"
        lines.append(row)
    return "\n".join(lines)


def end_to_end_table(results: dict[int, SpeedResult]) -> str:
    """Return the end-to-end ``solver.rebalance`` table (section 1b)."""
    lines = [
        "| N | " + " | ".join(f"rounding={r} median ms" for r in END_TO_END) + " |",
        "|---:|" + "---:|" * len(END_TO_END),
    ]
    for n, result in results.items():
        cells = []
        for r in END_TO_END:
            values = result.end_to_end[r]
            cells.append(
                "n/a" if any(np.isnan(values)) else ms(statistics.median(values))
            )
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def med_max(values: Sequence[float], digits: int) -> str:
    """Format ``median / max``."""
    return f"{statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def violation_summary(runs: Sequence[Rounding]) -> str:
    """Count the accounts breaking each constraint, e.g. ``min_cash 2/7``."""
    counts: dict[str, int] = {}
    for r in runs:
        for name in set(r.violations):
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return "none"
    return ", ".join(f"{k} {v}/{len(runs)}" for k, v in sorted(counts.items()))


def quality_table(results: dict[int, list[Case]]) -> str:
    """Return the quality table (section 2)."""
    lines = [
        "| lot | method | TE after median bp | TE gap bp median / max "
        "| objective gap bp of V median / max | leftover cash $ median / max "
        "| leftover cash % of V median | same orders as nearest / greedy "
        "| violations |",
        "|---:|:---|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for lot, cases in results.items():
        k = len(cases)
        lines.append(
            f"| {lot} | continuous "
            f"| {statistics.median(c.te_bp for c in cases):.2f} | 0 | 0 "
            f"| {med_max([c.cash for c in cases], 0)} "
            f"| {100 * statistics.median(c.cash_fraction for c in cases):.2f} "
            "| | |"
        )
        for m in METHODS:
            runs = [c.roundings[m] for c in cases]
            if failed(runs):
                lines.append(f"| {lot} | {m} | n/a | n/a | n/a | n/a | n/a | n/a | |")
                continue
            same = [
                sum(same_orders(c.roundings[other], c.roundings[m]) for c in cases)
                for other in ("nearest", "greedy")
            ]
            lines.append(
                f"| {lot} | {m} "
                f"| {statistics.median(r.te_bp for r in runs):.2f} "
                f"| {med_max([r.te_gap_bp for r in runs], 2)} "
                f"| {med_max([r.objective_gap_bp for r in runs], 2)} "
                f"| {med_max([r.cash for r in runs], 0)} "
                f"| {100 * statistics.median(r.cash_fraction for r in runs):.2f} "
                f"| {same[0]}/{k} / {same[1]}/{k} | {violation_summary(runs)} |"
            )
    return "\n".join(lines)


def from_cash_table(results: dict[int, Case]) -> str:
    """Return the from-cash table (section 3)."""
    lines = [
        "| lot | method | leftover cash $ | leftover cash % of V | TE after bp "
        "| time ms | violations |",
        "|---:|:---|---:|---:|---:|---:|:---|",
    ]
    for lot, case in results.items():
        lines.append(
            f"| {lot} | continuous (solve) | {case.cash:.0f} "
            f"| {100 * case.cash_fraction:.2f} | {case.te_bp:.2f} "
            f"| {ms(case.continuous_seconds)} | |"
        )
        for m in METHODS:
            r = case.roundings[m]
            if r.error:
                lines.append(f"| {lot} | {m} | n/a | n/a | n/a | n/a | |")
                continue
            lines.append(
                f"| {lot} | {m} | {r.cash:.0f} | {100 * r.cash_fraction:.2f} "
                f"| {r.te_bp:.2f} | {ms(r.seconds)} | {violation_summary([r])} |"
            )
    return "\n".join(lines)


def errors(cases: Sequence[Case]) -> list[str]:
    """Return one line per method error (first message of each)."""
    seen: dict[str, str] = {}
    for c in cases:
        for m, r in c.roundings.items():
            if r.error and m not in seen:
                seen[m] = r.error
    return [f"{m} failed: {e}" for m, e in seen.items()]


def version(package: str) -> str:
    """Return an installed package's version, or ``-``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


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
        help="accounts per size in the speed section (default: 15, 11, 5 for "
        "N = 50, 500, 2000)",
    )
    parser.add_argument(
        "--quality-runs",
        type=int,
        default=QUALITY_RUNS,
        help="accounts per lot size in the quality section",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print markdown tables."""
    args = parse_args(argv)
    default_runs = dict(RUNS_BY_SIZE)
    speed = {
        n: bench_speed(n, args.runs or default_runs.get(n, FALLBACK_RUNS))
        for n in args.sizes
    }
    quality = bench_quality(args.quality_runs)
    from_cash = bench_from_cash()

    print(f"# orders benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"cvxpy {cp.__version__}, pandas {pd.__version__}, "
        f"clarabel {version('clarabel')}, highspy {version('highspy')}; "
        f"{platform.machine()}"
    )
    print(
        f"{N_FACTORS} factors; objective {TE_WEIGHT:g} * TE^2 + linear cost + tax; "
        f"MaxTurnover({TURNOVER}), MinCash({MIN_CASH}), NoBuyAndSell(); "
        f"${VALUE:,.0f} accounts; wall time, one untimed warm-up account per size"
    )
    print()
    print("## 1. Speed (lot size 1)")
    print()
    print(speed_table(speed))
    print()
    print(
        "Continuous solve = `optimize`; discrete = `build_ladders` + `discretize`; "
        "/ solve = median per-account ratio "
        f"(target at N = 500: <= {OVERHEAD_TARGET:.0%})."
    )
    print()
    print(end_to_end_table(speed))
    print()
    print(
        "End-to-end `solver.rebalance` (snapshot, solve, rounding, trades table, "
        "verification) per `SolveOptions(rounding=...)`, same accounts."
    )
    print()
    print(f"## 2. Quality (N = {QUALITY_SIZE}, {args.quality_runs} accounts per lot)")
    print()
    print(quality_table(quality))
    print()
    print(
        "Gaps are orders minus continuous optimum (TE annualised, bp; objective in "
        "bp of V); targets: TE gap <= "
        + ", ".join(f"{v:g} bp at lot {k}" for k, v in TE_GAP_TARGET_BP.items())
        + "; violations = accounts whose orders `verify` flags."
    )
    print()
    print(f"## 3. From cash (N = {QUALITY_SIZE}, ${VALUE:,.0f} cash, no lots)")
    print()
    print(from_cash_table(from_cash))
    print()
    print(
        f"MinCash({MIN_CASH}) and NoBuyAndSell() only (a turnover cap would stop "
        "investing at 20% of V); times are the median of "
        f"{FROM_CASH_REPEATS} repeats (solve for the continuous row, "
        "discrete step otherwise)."
    )
    problems = errors(
        [c for r in speed.values() for c in r.cases]
        + [c for cases in quality.values() for c in cases]
        + list(from_cash.values())
    )
    if problems:
        print()
        for line in problems:
            print(f"- {line}")


if __name__ == "__main__":
    main()
