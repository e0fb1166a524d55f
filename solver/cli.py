"""Command line: ``rebalance batch`` solves a directory, ``rebalance drift`` reports."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import pandas as pd

from models.errors import InputError
from solver.batch import BatchReport, rebalance_batch
from solver.config import RunConfig
from solver.drift import describe as describe_drift
from solver.drift import drift_report
from solver.result import ANSWERED, ROUNDING_METHODS
from solver.tables import FORMATS, write_table

SLOWEST = 5


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for unusable input)."""
    args = _parser().parse_args(argv)
    config_path = args.config or (args.in_dir / "config.toml")
    overrides = {f.name: getattr(args, f.name, None) for f in fields(RunConfig)}
    try:
        config = RunConfig.load(
            config_path if config_path.exists() else None, overrides
        )
        if args.command == "drift":
            return _drift(args, config)
        report = rebalance_batch(
            args.in_dir,
            args.out,
            config=config,
            workers=args.workers,
            scheduler=args.scheduler,
            fmt=args.format,
            progress=not args.no_progress,
        )
    except InputError as exc:
        sys.stderr.write(f"rebalance: cannot run this batch: {exc}\n")
        return 2
    sys.stdout.write(describe(report, args.out) + "\n")
    return 0


def _drift(args: argparse.Namespace, config: RunConfig) -> int:
    """Run ``rebalance drift``: print the summary, write the tables if asked."""
    report = drift_report(args.in_dir, config, top=args.top)
    if args.out is not None:
        write_table(report.accounts, args.out / f"drift.{args.format}")
        write_table(report.weights, args.out / f"drift_weights.{args.format}")
        if len(report.problems):
            write_table(report.problems, args.out / "problems.csv")
    sys.stdout.write(describe_drift(report) + "\n")
    return 0


def describe(report: BatchReport, out_dir: Path) -> str:
    """Return the end-of-run summary: statuses, totals, slowest accounts."""
    s = report.summary
    counts = s["status"].value_counts().rename_axis("status").rename("accounts")
    solved = s[s["status"].isin(ANSWERED)]
    totals = pd.Series(
        {
            "accounts": len(s),
            "solved by this run": report.solved_now,
            "mean turnover": f"{solved['turnover'].mean():.2%}" if len(solved) else "-",
            "estimated cost": f"{solved['est_cost'].sum():,.2f}",
            "estimated tax": f"{solved['est_tax'].sum():,.2f}",
            "orders": report.orders,
            "seconds": f"{report.seconds:.1f}",
            "accounts per second": f"{report.solved_now / report.seconds:.1f}",
        },
        dtype=object,
    )
    slowest = s.nlargest(SLOWEST, "solve_seconds")[
        ["account_id", "status", "solve_seconds"]
    ]
    lines = [
        "Accounts by status",
        counts.to_string(),
        "",
        totals.to_string(),
        "",
        "Slowest accounts",
        slowest.to_string(index=False),
    ]
    failed = s[~s["status"].isin(ANSWERED)]
    if len(failed):
        lines += [
            "",
            "Accounts not solved",
            failed[["account_id", "status", "message"]].to_string(
                index=False, max_colwidth=100
            ),
        ]
    if len(report.problems):
        lines += [
            "",
            f"{len(report.problems)} input problem(s): {out_dir / 'problems.csv'}",
        ]
    lines += ["", f"Outputs in {out_dir}"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rebalance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    batch = commands.add_parser("batch", help="rebalance every account of a directory")
    batch.add_argument("in_dir", type=Path, help="directory with the input tables")
    batch.add_argument("--out", type=Path, required=True, help="output directory")
    batch.add_argument("--format", choices=FORMATS, default="parquet")
    batch.add_argument("--workers", type=int, help="processes (default: all cores)")
    batch.add_argument("--scheduler", help="dask.distributed scheduler address")
    batch.add_argument(
        "--config", type=Path, help="config.toml (default: IN_DIR/config.toml)"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("--as-of", dest="as_of", help="trade date, YYYY-MM-DD")
    batch.add_argument("--rounding", choices=ROUNDING_METHODS)
    batch.add_argument("--solver")
    _add_trigger(batch, "solve only accounts where one fires; the others get no_trade")
    batch.add_argument(
        "--elastic",
        action="store_true",
        default=None,
        help="relax the soft limits of infeasible accounts (status relaxed)",
    )
    for name in (
        "tracking_error_weight",
        "cost_weight",
        "tax_weight",
        "loss_factor",
        "impact_weight",
        "max_turnover",
        "max_tracking_error",
        "min_cash",
        "time_limit_seconds",
    ):
        batch.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float)
    drift = commands.add_parser(
        "drift", help="report drift and tracking error; say which trigger fires"
    )
    drift.add_argument("in_dir", type=Path, help="directory with the input tables")
    drift.add_argument("--out", type=Path, help="write drift tables here")
    drift.add_argument("--format", choices=FORMATS, default="parquet")
    drift.add_argument("--config", type=Path, help="config.toml")
    drift.add_argument("--as-of", dest="as_of", help="date, YYYY-MM-DD")
    drift.add_argument("--top", type=int, default=3, help="largest drifts listed")
    _add_trigger(drift, "default: drift:0.05 and relative-drift:0.25")
    return parser


def _add_trigger(parser: argparse.ArgumentParser, what: str) -> None:
    """Add the repeatable ``--trigger`` flag."""
    parser.add_argument(
        "--trigger",
        dest="triggers",
        action="append",
        help="drift:0.05, relative-drift:0.2, tracking-error:0.01, cash:0.02 or "
        f"calendar:monthly|quarterly|annual; repeatable, any fires ({what})",
    )


if __name__ == "__main__":
    sys.exit(main())
