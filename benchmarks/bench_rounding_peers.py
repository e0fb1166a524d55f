"""Whole-share orders from cash: this library against PyPortfolioOpt.

Why: ``solver.rebalance`` turns the continuous answer into whole shares
(``SolveOptions(rounding=...)``); PyPortfolioOpt's ``DiscreteAllocation`` does
the same job for a portfolio bought from cash (``greedy_portfolio``, a greedy
share-by-share fill, and ``lp_portfolio``, an integer program minimising the
L1 dollar gap plus leftover cash). This measures how close each comes to the
target in what matters here: ex-ante tracking error.

What: a seeded set of all-cash accounts (cash log-uniform $5k-$250k, 20-80
names drawn from one 100-asset market with a 4-factor risk model, prices
log-uniform $5-$600, lot size 1, no trading costs, Dirichlet(1) target
weights over the account's names). The library solves ``TrackingError(1.0)``
with ``MinCash(0.0)`` only, once per rounding method (``auto``, ``greedy``,
``milp``); PyPortfolioOpt gets the same weights, prices and cash, with a
fresh ``DiscreteAllocation`` per method and ``lp_portfolio(solver="HIGHS")``.

Every allocation is scored here, not by either library's report: ``w = shares
* price / V`` (V = the account's cash), ``a = w - target``, ``TE = sqrt(a'
Sigma a)`` with Sigma the dense ``B F B' + diag(D)`` of the market's factor
model (annualised, bp). Each allocation is also checked for spending more than
V and for fractional or negative shares; the library's ``result.status`` must be
``optimal``. A method that raises (or returns another status) is counted and
its first error listed, not allowed to stop the run. Times are wall time per
account, after one untimed warm-up account; no timing is asserted.

Run ``python benchmarks/bench_rounding_peers.py [--accounts 120] [--seed 1]
[--cash-target 0]`` (needs ``pip install pyportfolioopt``; about 1-2 minutes
for the default 120 accounts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cvxpy as cp
import numpy as np
import pandas as pd
from bench_orders import cash_account, version  # benchmarks/ runs as scripts
from pypfopt import DiscreteAllocation

import solver
from models import FactorRiskModel, Market, MinCash, TrackingError
from models.synthetic import synthetic_market
from solver.result import SolveOptions, Status

N_ASSETS = 100
N_FACTORS = 4
MARKET_SEED = 0
PRICE_SEED = 7
PRICE_RANGE = (5.0, 600.0)
CASH_RANGE = (5_000.0, 250_000.0)
NAMES_RANGE = (20, 80)  # inclusive
DIRICHLET_ALPHA = 1.0
DEFAULT_ACCOUNTS = 120
DEFAULT_SEED = 1
WARMUP_INDEX = 10**6  # seed of the untimed warm-up account
OURS = ("auto", "greedy", "milp")
PEERS = ("pfo_greedy", "pfo_lp")
LP_SOLVER = "HIGHS"
TE_TOLERANCE = 1e-9  # in TE units (fraction, annualised) for "ours <= peer"
SPEND_TOLERANCE = 1e-6  # currency: spending above V by more is an overspend
SHARE_TOLERANCE = 1e-9  # shares off a whole number by more are fractional
BP = 1e4
WORST = 5


@dataclass(frozen=True)
class Case:
    """One all-cash account: its cash, names, prices and target weights."""

    index: int
    cash: float
    names: pd.Index
    prices: np.ndarray
    target: np.ndarray  # risky weights; 1 - sum is the cash target
    sigma: np.ndarray  # dense covariance on ``names``

    def targets(self) -> pd.Series:
        """Return the library's targets (with ``CASH`` when it is not zero)."""
        weights = pd.Series(self.target, index=self.names, name="weight")
        cash_target = 1.0 - float(self.target.sum())
        if cash_target > 0:
            weights["CASH"] = cash_target
        return weights.rename_axis("asset")


@dataclass(frozen=True)
class Allocation:
    """One method's whole shares for one account, scored here, or its error."""

    seconds: float = np.nan
    te: float = np.nan  # annualised, fraction
    leftover: float = np.nan  # fraction of V
    overspend: float = 0.0  # currency spent above V (0 when within V)
    problems: tuple[str, ...] = ()  # fractional / negative shares, sells
    error: str = ""
    reported_te: float = np.nan  # the library's own summary, for a cross-check

    @property
    def ok(self) -> bool:
        """Whether the method answered."""
        return not self.error


@dataclass
class Row:
    """Every method's allocation for one account."""

    case: Case
    allocations: dict[str, Allocation] = field(default_factory=dict)


def bench_market() -> tuple[Market, pd.DataFrame]:
    """Return the market (no costs, lot size 1) and its dense covariance."""
    base = synthetic_market(N_ASSETS, n_factors=N_FACTORS, seed=MARKET_SEED)
    rng = np.random.default_rng(PRICE_SEED)
    low, high = np.log(PRICE_RANGE[0]), np.log(PRICE_RANGE[1])
    prices = pd.DataFrame(
        {
            "asset": base.prices.index,
            "price": np.round(np.exp(rng.uniform(low, high, N_ASSETS)), 2),
            "lot_size": 1.0,
            "cost_bps": 0.0,
        }
    )
    risk = base.risk_model
    assert isinstance(risk, FactorRiskModel)
    B = risk.loadings.to_numpy()
    F = risk.factor_covariance.to_numpy()
    D = risk.specific_variance.reindex(risk.loadings.index).to_numpy()
    sigma = pd.DataFrame(
        B @ F @ B.T + np.diag(D), index=risk.loadings.index, columns=risk.loadings.index
    )
    return Market(as_of=base.as_of, prices=prices, risk_model=risk), sigma


def make_case(
    index: int, seed: int, market: Market, sigma: pd.DataFrame, cash_target: float
) -> Case:
    """Draw account ``index`` (its own stream: the set does not depend on N)."""
    rng = np.random.default_rng([seed, index])
    cash = round(float(np.exp(rng.uniform(*np.log(CASH_RANGE)))), 2)
    n = int(rng.integers(NAMES_RANGE[0], NAMES_RANGE[1] + 1))
    names = pd.Index(
        sorted(rng.choice(market.prices.index.to_numpy(), n, replace=False)),
        name="asset",
    )
    target = rng.dirichlet(np.full(n, DIRICHLET_ALPHA)) * (1.0 - cash_target)
    return Case(
        index=index,
        cash=cash,
        names=names,
        prices=market.prices.loc[names, "price"].to_numpy(),
        target=target,
        sigma=sigma.loc[names, names].to_numpy(),
    )


def score(
    case: Case, shares: np.ndarray, seconds: float, problems: Sequence[str] = ()
) -> Allocation:
    """Score whole shares independently: TE, leftover cash, overspend, shape."""
    problems = list(problems)
    if np.any(np.abs(shares - np.round(shares)) > SHARE_TOLERANCE):
        problems.append("fractional shares")
    if np.any(shares < 0):
        problems.append("negative shares")
    spent = float(shares @ case.prices)
    active = shares * case.prices / case.cash - case.target
    return Allocation(
        seconds=seconds,
        te=float(np.sqrt(max(active @ case.sigma @ active, 0.0))),
        leftover=(case.cash - spent) / case.cash,
        overspend=max(0.0, spent - case.cash - SPEND_TOLERANCE),
        problems=tuple(problems),
    )


def ours(case: Case, market: Market, rounding: str) -> Allocation:
    """Run ``solver.rebalance`` with one rounding method; score its buys."""
    start = time.perf_counter()
    try:
        result = solver.rebalance(
            cash_account(f"P{case.index:03d}", case.cash),
            targets=case.targets(),
            market=market,
            objective=(TrackingError(1.0),),
            constraints=[MinCash(0.0)],
            options=SolveOptions(rounding=rounding),
        )
    except Exception as exc:  # report, do not stop the benchmark
        return Allocation(error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    if result.status is not Status.OPTIMAL:
        return Allocation(error=f"status {result.status}: {result.message}")
    trades = result.trades
    buys = trades[trades["side"] == "buy"]
    shares = (
        buys.groupby("asset")["quantity"]
        .sum()
        .reindex(case.names, fill_value=0.0)
        .to_numpy(dtype=float)
    )
    problems = ["sells"] if (trades["side"] != "buy").any() else []
    reported = float(result.summary.get("tracking_error_after", np.nan))
    return replace(score(case, shares, seconds, problems), reported_te=reported)


def peer(case: Case, method: str, caught: dict[str, int]) -> Allocation:
    """Run one PyPortfolioOpt method on a fresh ``DiscreteAllocation``.

    Weights and prices are given in the same order: ``lp_portfolio`` pairs
    ``latest_prices.values`` with the weights by position, and
    ``greedy_portfolio`` sorts the object's weights in place.
    """
    weights = {a: float(w) for a, w in zip(case.names, case.target, strict=True)}
    prices = pd.Series(case.prices, index=case.names)
    allocate: Callable[[DiscreteAllocation], tuple[dict[str, int], float]] = (
        (lambda d: d.greedy_portfolio())
        if method == "pfo_greedy"
        else (lambda d: d.lp_portfolio(solver=LP_SOLVER))
    )
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            allocation, _ = allocate(
                DiscreteAllocation(weights, prices, total_portfolio_value=case.cash)
            )
    except Exception as exc:  # report, do not stop the benchmark
        return Allocation(error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    for w in seen:
        key = f"{method}: {w.category.__name__}: {str(w.message)[:120]}"
        caught[key] = caught.get(key, 0) + 1
    shares = (
        pd.Series(allocation, dtype=float)
        .reindex(case.names, fill_value=0.0)
        .to_numpy()
    )
    return score(case, shares, seconds)


def run_case(case: Case, market: Market, caught: dict[str, int]) -> Row:
    """Allocate one account with every method."""
    row = Row(case)
    for m in OURS:
        row.allocations[m] = ours(case, market, m)
    for m in PEERS:
        row.allocations[m] = peer(case, m, caught)
    return row


def ratio(a: float, b: float) -> float:
    """Return ``a / b`` (1 when both are 0)."""
    if b > 0:
        return a / b
    return 1.0 if a <= 0 else np.inf


def best_peer(row: Row) -> float:
    """Return the lower TE of the peers that answered (nan if none did)."""
    tes = [row.allocations[p].te for p in PEERS if row.allocations[p].ok]
    return min(tes) if tes else np.nan


def med(values: Sequence[float], fmt: str = ".2f") -> str:
    """Format a median, or ``n/a`` for no values."""
    return format(statistics.median(values), fmt) if values else "n/a"


def med_max(values: Sequence[float]) -> str:
    """Format ``median / max`` of ratios, or ``n/a``."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def peers_table(rows: Sequence[Row]) -> str:
    """Return the library-vs-peers table: one row per library method."""
    lines = [
        "| method | answered | TE <= best peer | TE <= pfo greedy | TE <= pfo lp "
        "| TE / pfo greedy median / max | TE / pfo lp median / max "
        "| TE median bp |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in OURS:
        answered = [r for r in rows if r.allocations[m].ok]
        cells = []
        for reference in (best_peer, *(_peer_te(p) for p in PEERS)):
            pairs = [
                (r.allocations[m].te, reference(r))
                for r in answered
                if not np.isnan(reference(r))
            ]
            wins = sum(a <= b + TE_TOLERANCE for a, b in pairs)
            cells.append(f"{wins}/{len(pairs)}")
        ratios = [
            med_max(
                [
                    ratio(r.allocations[m].te, r.allocations[p].te)
                    for r in answered
                    if r.allocations[p].ok
                ]
            )
            for p in PEERS
        ]
        lines.append(
            f"| {m} | {len(answered)}/{len(rows)} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(ratios)
            + f" | {med([BP * r.allocations[m].te for r in answered])} |"
        )
    return "\n".join(lines)


def _peer_te(p: str) -> Callable[[Row], float]:
    """Return a function giving peer ``p``'s TE of a row (nan if it failed)."""

    def te(row: Row) -> float:
        a = row.allocations[p]
        return a.te if a.ok else np.nan

    return te


def methods_table(rows: Sequence[Row]) -> str:
    """Return the all-methods table: TE, leftover cash, time, failures."""
    lines = [
        "| method | answered | TE median bp | TE p90 bp | leftover cash median % of V "
        "| time median ms | overspent | other problems |",
        "|:---|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for m in (*OURS, *PEERS):
        done = [r.allocations[m] for r in rows if r.allocations[m].ok]
        te = [BP * a.te for a in done]
        problems: dict[str, int] = {}
        for a in done:
            for p in set(a.problems):
                problems[p] = problems.get(p, 0) + 1
        p90 = f"{np.percentile(te, 90):.2f}" if te else "n/a"
        lines.append(
            f"| {m} | {len(done)}/{len(rows)} | {med(te)} | {p90} "
            f"| {med([100 * a.leftover for a in done], '.3f')} "
            f"| {med([1e3 * a.seconds for a in done], '.1f')} "
            f"| {sum(a.overspend > 0 for a in done)} "
            f"| {', '.join(f'{k} {v}' for k, v in problems.items()) or 'none'} |"
        )
    return "\n".join(lines)


def worst_table(rows: Sequence[Row], method: str = "auto") -> str:
    """Return the accounts where ``method`` trails the better peer the most."""
    scored = [
        r for r in rows if r.allocations[method].ok and not np.isnan(best_peer(r))
    ]
    scored.sort(key=lambda r: r.allocations[method].te - best_peer(r), reverse=True)
    columns = (*OURS, *PEERS)
    lines = [
        "| account | cash $ | names | "
        + " | ".join(f"{m} TE bp" for m in columns)
        + f" | {method} - best peer bp |",
        "|---:|---:|---:|" + "---:|" * (len(columns) + 1),
    ]
    for r in scored[:WORST]:
        tes = [
            f"{BP * r.allocations[m].te:.2f}" if r.allocations[m].ok else "n/a"
            for m in columns
        ]
        lines.append(
            f"| {r.case.index} | {r.case.cash:,.0f} | {len(r.case.names)} | "
            + " | ".join(tes)
            + f" | {BP * (r.allocations[method].te - best_peer(r)):+.2f} |"
        )
    return "\n".join(lines)


def overspends(rows: Sequence[Row]) -> list[str]:
    """Return one line per allocation that spends more than the cash."""
    return [
        f"account {r.case.index} ({m}): spent ${a.overspend + SPEND_TOLERANCE:,.2f} "
        f"more than ${r.case.cash:,.2f}"
        for r in rows
        for m, a in r.allocations.items()
        if a.ok and a.overspend > 0
    ]


def cross_check(rows: Sequence[Row]) -> str:
    """Compare the TE scored here with the library's ``tracking_error_after``."""
    gaps = [
        abs(a.te - a.reported_te)
        for r in rows
        for m in OURS
        if (a := r.allocations[m]).ok and not np.isnan(a.reported_te)
    ]
    if not gaps:
        return "library summary has no tracking_error_after to cross-check"
    return (
        f"cross-check: TE scored here vs the library's summary "
        f"`tracking_error_after`: max |difference| {BP * max(gaps):.2g} bp over "
        f"{len(gaps)} allocations"
    )


def errors(rows: Sequence[Row]) -> list[str]:
    """Return one line per failing method: count and first message."""
    first: dict[str, tuple[int, str]] = {}
    for r in rows:
        for m, a in r.allocations.items():
            if not a.ok:
                count, message = first.get(m, (0, f"account {r.case.index}: {a.error}"))
                first[m] = (count + 1, message)
    return [f"{m} failed on {k} accounts; first: {e}" for m, (k, e) in first.items()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--accounts",
        type=int,
        default=DEFAULT_ACCOUNTS,
        help="number of all-cash accounts (each has its own seed stream, so "
        "a smaller set is a prefix of a larger one)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--cash-target",
        type=float,
        default=0.0,
        help="cash target weight (risky targets sum to 1 - this); PyPortfolioOpt "
        "gets the risky weights and the whole cash",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print markdown tables."""
    args = parse_args(argv)
    market, sigma = bench_market()
    caught: dict[str, int] = {}
    run_case(
        make_case(WARMUP_INDEX, args.seed, market, sigma, args.cash_target),
        market,
        {},
    )  # untimed warm-up
    start = time.perf_counter()
    rows = [
        run_case(
            make_case(k, args.seed, market, sigma, args.cash_target), market, caught
        )
        for k in range(args.accounts)
    ]
    wall = time.perf_counter() - start

    now = dt.datetime.now().isoformat(timespec="seconds")
    print(f"# rounding vs PyPortfolioOpt, {now}")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"pandas {pd.__version__}, cvxpy {cp.__version__}, "
        f"pypfopt {version('pyportfolioopt')}, highspy {version('highspy')}; "
        f"{platform.machine()}"
    )
    cash = [r.case.cash for r in rows]
    names = [len(r.case.names) for r in rows]
    print(
        f"{args.accounts} all-cash accounts (seed {args.seed}): cash log-uniform "
        f"${CASH_RANGE[0]:,.0f}-${CASH_RANGE[1]:,.0f} (median ${med(cash, ',.0f')}), "
        f"{NAMES_RANGE[0]}-{NAMES_RANGE[1]} names (median {med(names, '.0f')}) of a "
        f"{N_ASSETS}-asset, {N_FACTORS}-factor market; prices log-uniform "
        f"${PRICE_RANGE[0]:g}-${PRICE_RANGE[1]:g}, lot size 1, no costs; targets "
        f"Dirichlet({DIRICHLET_ALPHA:g}) over the names, cash target "
        f"{args.cash_target:g}. Library: TrackingError(1.0), MinCash(0.0), "
        f"SolveOptions(rounding=m) (auto = milp up to "
        f"{SolveOptions().milp_max_assets} assets). PyPortfolioOpt: "
        f"greedy_portfolio(), lp_portfolio(solver={LP_SOLVER!r}). "
        f"Total {wall:.0f} s."
    )
    print()
    print("## Library against PyPortfolioOpt (TE scored here)")
    print()
    print(peers_table(rows))
    print()
    print(
        f"TE <= peer: accounts where the library's TE is at most the peer's + "
        f"{TE_TOLERANCE:g} (out of accounts where both answered); best peer = the "
        "lower of pfo greedy and pfo lp. TE = sqrt(a' Sigma a), a = shares * price "
        "/ V - target, annualised."
    )
    print()
    print("## Every method")
    print()
    print(methods_table(rows))
    print()
    print(
        "Time: wall ms per account (library: whole `solver.rebalance`; peers: "
        f"the `DiscreteAllocation` call). Overspent: spent > cash + "
        f"${SPEND_TOLERANCE:g}."
    )
    print()
    print(f"## Worst {WORST}: auto against the better peer")
    print()
    print(worst_table(rows))
    notes = [cross_check(rows), *errors(rows), *overspends(rows)]
    notes += [f"warning x{n}: {w}" for w, n in caught.items()]
    if notes:
        print()
        for line in notes:
            print(f"- {line}")


if __name__ == "__main__":
    main()
