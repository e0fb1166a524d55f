"""Seconds per simulated year of the backtester, per policy kind, before and after.

Runs every policy kind on skfolio's 20 S&P 500 stocks (the ``data`` extra)
with this checkout, and with an earlier commit (``--before REF``, checked out
in a temporary git worktree and run in a child process) in the same run.
Also checks that both engines give the same daily values where the rules did
not change: without tax (the settlement date and wash-sale year are the rule
changes) the daily values must agree to 1e-9 relative.

``python benchmarks/bench_backtest_speed.py --before 772a156 [--years 3]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
START = "2004-01-01"  # the first 252 days feed the risk estimate
RULES = ("calendar monthly", "bands 0.02 to target", "bands 0.02 to edge", "TE 1%")
OPTIMIZERS = ("optimizer daily",)
REPEATS = 5  # runs of each policy, the median reported: single runs vary by 40%
REPEAT_BUDGET = 10.0  # seconds: no repeat once a policy's runs took this long


def policies(names: Sequence[str]) -> list[object]:
    """Return the policies of ``names`` with this checkout's (or REF's) code."""
    from solver.dynamic import (
        OptimizerPolicy,
        band_policy,
        calendar_policy,
        tracking_error_policy,
    )

    made = {
        "calendar monthly": lambda: calendar_policy("monthly"),
        "bands 0.02 to target": lambda: band_policy(0.02),
        "bands 0.02 to edge": lambda: band_policy(0.02, to_edge=True),
        "TE 1%": lambda: tracking_error_policy(0.01),
        "optimizer daily": lambda: OptimizerPolicy(20.0, every=1),
    }
    return [made[n]() for n in names]


def run(end: str, names: Sequence[str], taxed: bool) -> dict[str, dict[str, object]]:
    """Time each policy; return seconds per year and the daily values."""
    from models.history import sp500_prices
    from solver.dynamic.simulation import BacktestConfig, backtest

    prices = sp500_prices(START, end)
    target = pd.Series(1.0 / prices.shape[1], index=prices.columns)
    rates = {} if taxed else {"tax_rate_short": 0.0, "tax_rate_long": 0.0}
    config = BacktestConfig(cost_bps=10.0, **rates)
    years = (len(prices) - config.risk_lookback) / 252
    out = {}
    for name, policy in zip(names, policies(names), strict=True):
        seconds: list[float] = []
        while len(seconds) < REPEATS and sum(seconds) < REPEAT_BUDGET:
            began = time.perf_counter()
            result = backtest(prices, target, policy, config)  # type: ignore[arg-type]
            seconds.append(time.perf_counter() - began)
        out[name] = {
            "per_year": float(np.median(seconds)) / years,
            "value": result.daily["value"].tolist(),
        }
    return out


def before(ref: str, end: str, names: Sequence[str], taxed: bool) -> dict[str, dict]:
    """Run :func:`run` with the code of ``ref`` in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
        try:
            code = (
                f"import json, sys; sys.path.insert(0, {str(tree)!r});"
                f"sys.path.insert(1, {str(ROOT / 'benchmarks')!r});"
                "from bench_backtest_speed import run;"
                f"print(json.dumps(run({end!r}, {list(names)!r}, {taxed!r})))"
            )
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=tree,
                check=True,
                capture_output=True,
                text=True,
            )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=True,
                capture_output=True,
            )
    result: dict[str, dict] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def decision_overhead(end: str) -> tuple[int, float, float]:
    """Time the optimizer policy's decisions that solve, and Clarabel inside them.

    Returns the number of solving decisions, the median seconds of one, and
    the median seconds of its Clarabel calls (setup and solve, both solves).
    """
    import clarabel

    import solver.program.solve as solve
    from models.history import sp500_prices
    from solver.dynamic import OptimizerPolicy
    from solver.dynamic.simulation import BacktestConfig, backtest

    bare: list[float] = []
    decisions: list[tuple[float, float]] = []
    real = clarabel.DefaultSolver

    class Timed:
        def __init__(self, *args: object) -> None:
            began = time.perf_counter()
            self.inner = real(*args)
            bare.append(time.perf_counter() - began)

        def solve(self) -> object:
            began = time.perf_counter()
            solution = self.inner.solve()
            bare[-1] += time.perf_counter() - began
            return solution

    class Measured(OptimizerPolicy):
        def decide(self, day):  # type: ignore[no-untyped-def]
            if self.holds(day):
                return None
            count, began = len(bare), time.perf_counter()
            orders = super().decide(day)
            decisions.append((time.perf_counter() - began, sum(bare[count:])))
            return orders

    prices = sp500_prices(START, end)
    target = pd.Series(1.0 / prices.shape[1], index=prices.columns)
    solve.clarabel.DefaultSolver = Timed  # type: ignore[misc]
    try:
        policy = Measured(100.0, tax_aware=True, trade_aversion=100.0)
        backtest(prices, target, policy, BacktestConfig())
    finally:
        solve.clarabel.DefaultSolver = real  # type: ignore[misc]
    total = np.array([d for d, _ in decisions])
    clarabel_seconds = np.array([c for _, c in decisions])
    return len(decisions), float(np.median(total)), float(np.median(clarabel_seconds))


def main(argv: Sequence[str] | None = None) -> None:
    """Print seconds per simulated year before and after, and the agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="git commit of the earlier engine")
    parser.add_argument("--years", type=int, default=3, help="simulated years")
    parser.add_argument("--optimizer", action="store_true", help="time them too")
    args = parser.parse_args(argv)
    end = f"{2004 + args.years}-12-31"
    names = list(RULES) + (list(OPTIMIZERS) if args.optimizer else [])
    print(
        f"# backtester speed, 20 stocks, 2005 to {end[:4]}, seconds per year"
        f" (median of up to {REPEATS} runs)"
    )
    lines = ["| policy | before s/yr | after s/yr | speed-up | max rel. diff |"]
    lines.append("|---|---:|---:|---:|---:|")
    for taxed in (False, True):
        now = run(end, names, taxed)
        old = before(args.before, end, names, taxed) if args.before else {}
        for name in names:
            after = now[name]["per_year"]
            was = old.get(name, {}).get("per_year", np.nan)
            diff = np.nan
            if name in old:
                a, b = np.array(now[name]["value"]), np.array(old[name]["value"])
                diff = float(np.max(np.abs(a - b) / np.abs(b)))
            label = f"{name} ({'taxed' if taxed else 'no tax'})"
            ratio = was / after
            lines.append(
                f"| {label} | {was:.3f} | {after:.4f} | {ratio:.0f}x | {diff:.1e} |"
            )
    print("\n".join(lines))
    if args.optimizer:
        count, decision, bare = decision_overhead(end)
        print(
            f"\nOptimizer policy (tax-aware, trade aversion 100), {count} decisions"
            f" that solve: {1e3 * decision:.1f} ms each (median), of which"
            f" Clarabel {1e3 * bare:.1f} ms: {decision / bare:.1f}x the bare solve."
        )
    print(
        "\nWithout tax the engines must agree (rules unchanged); with tax the"
        " year is now settled after its wash-sale window and FIFO ties follow"
        " opening order, so small differences are expected."
    )


if __name__ == "__main__":
    main()
