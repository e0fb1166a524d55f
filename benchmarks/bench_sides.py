"""Cost and gain of the side choice under ``NoBuyAndSell``, per account.

Same accounts and settings as ``bench_account.py`` (the batch default: 100 x
tracking error^2 with 20 factors, linear cost, tax with loss factor 1,
turnover cap 10%, cash floor 0.5%, about 4.5 lots per asset). Per account:

- relax-fix-resolve (the rule before ``sides``): the both-sides solve, then
  every asset held to its net trade's side and re-solved; timed here from the
  package's own ``solve_once`` and ``fix_sides``;
- ``sides="auto"``: the same plus one solve with the assets traded both ways
  held to sales; the better answer is kept;
- ``sides="exact"`` (``--exact``): branch and bound over the sides.

Printed: the median time of each (continuous step only) and of the whole
per-account batch job with ``auto`` (orders, verification, reports), the
extra time of ``auto`` as a share of that job, and how much lower (better)
each objective is than relax-fix-resolve, in bp of V. Run ``python
benchmarks/bench_sides.py [--sizes 50 500] [--runs 7] [--exact]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_account import CONFIG

from models.snapshot import build_snapshot
from models.synthetic import (
    synthetic_account,
    synthetic_market,
    synthetic_targets,
)
from solver.batch.jobs import AccountJob, solve_job
from solver.program.continuous import (
    combined_mask,
    optimize,
    solve_once,
    split_constraints,
)
from solver.program.report import objective_value
from solver.program.sides import NOISE, fix_sides

BP = 1e4


def relax_fix_resolve(snapshot, objective, plain, rules, options) -> float:
    """Return the objective of the rule before ``sides``: solve, fix, re-solve."""
    mask = combined_mask(snapshot, rules)
    first = solve_once(snapshot, mask, objective, plain, options)
    assert first is not None
    o = first.answer
    if not ((o.buys > NOISE) & (o.sells > NOISE)).any():
        return objective_value(objective, o)
    second = solve_once(
        snapshot, mask & fix_sides(snapshot, o), objective, plain, options
    )
    assert second is not None
    return objective_value(objective, second.answer)


def timed(function, *args):
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def run(n_assets: int, runs: int, exact: bool) -> dict[str, list[float]]:
    market = synthetic_market(n_assets, n_factors=20, seed=0, as_of="2026-11-24")
    targets = synthetic_targets(market, seed=0)
    objective = CONFIG.objective()
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "rfr",
            "auto",
            "exact",
            "job",
            "gain_auto",
            "gain_exact",
            "solves",
            "exact_solves",
        )
    }
    for seed in range(runs + 1):
        account = synthetic_account(market, targets, seed=seed, account_id=f"A{seed}")
        snapshot = build_snapshot(account, targets, market)
        plain, rules = split_constraints(list(CONFIG.constraints()), "A")
        options = CONFIG.options()
        t_rfr, rfr = timed(
            relax_fix_resolve, snapshot, objective, plain, rules, options
        )
        t_auto, auto = timed(optimize, snapshot, objective, plain, rules, options)
        job = AccountJob(
            account.account_id, account.cash, account.lots, targets, None, None, CONFIG
        )
        t_job, _ = timed(solve_job, market, job)
        if seed == 0:
            continue  # warm-up
        out["rfr"].append(t_rfr)
        out["auto"].append(t_auto)
        out["job"].append(t_job)
        out["solves"].append(auto.solves)
        out["gain_auto"].append((rfr - objective_value(objective, auto.answer)) * BP)
        if exact:
            exact_options = replace(options, sides="exact")
            t_exact, best = timed(
                optimize, snapshot, objective, plain, rules, exact_options
            )
            out["exact"].append(t_exact)
            out["exact_solves"].append(best.solves)
            out["gain_exact"].append(
                (rfr - objective_value(objective, best.answer)) * BP
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--exact", action="store_true", help="also time exact")
    args = parser.parse_args()
    print(f"# side choice benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"{args.runs} accounts per size after one warm-up; medians; ms\n")
    print(
        "| N | relax-fix-resolve ms | auto ms | auto solves | extra ms | batch job "
        "(auto) ms | extra / job | auto better by, bp of V: median / max | exact "
        "ms | exact solves | exact better by, bp of V: median / max |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        t = run(n, args.runs, args.exact)
        med = {k: statistics.median(v) if v else np.nan for k, v in t.items()}
        extra = (med["auto"] - med["rfr"]) * 1e3
        gain = f"{med['gain_auto']:.2f} / {max(t['gain_auto']):.2f}"
        exact = (
            f"{med['exact'] * 1e3:.0f} | {med['exact_solves']:.0f} | "
            f"{med['gain_exact']:.2f} / {max(t['gain_exact']):.2f}"
            if args.exact
            else "n/a | n/a | n/a"
        )
        print(
            f"| {n} | {med['rfr'] * 1e3:.1f} | {med['auto'] * 1e3:.1f} | "
            f"{med['solves']:.0f} | {extra:.1f} | {med['job'] * 1e3:.1f} | "
            f"{extra / (med['job'] * 1e3):.0%} | {gain} | {exact} |"
        )
    print(
        "\nextra = auto - relax-fix-resolve (continuous step); the batch job is "
        "solve_job with auto (orders, verification, reports included). Target: "
        "the extra at most 30% of the job."
    )


if __name__ == "__main__":
    main()
