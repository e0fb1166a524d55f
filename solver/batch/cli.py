"""Command line: ``rebalance batch`` solves a directory, ``rebalance drift`` reports."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import pandas as pd

from models.errors import InputError
from solver.batch.config import RunConfig
from solver.batch.drift import describe as describe_drift
from solver.batch.drift import drift_report
from solver.batch.engine import BatchReport, ExitCode, rebalance_batch
from solver.batch.manifest import MANIFEST, PACKAGE, library_versions
from solver.batch.tables import FORMATS, write_table
from solver.errors import OutputError, OutputInUseError, StaleOutputError
from solver.result import ANSWERED, ROUNDING_METHODS, SIDE_SEARCHES

logger = logging.getLogger(__name__)
SLOWEST = 5
PACKAGE_LOGGER = "solver"
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
EXIT_CODES = """\
exit status:
  0   complete: every account answered (optimal, optimal_inaccurate,
      relaxed, no_trade)
  1   complete, but some accounts are invalid_input, infeasible or failed
      (see the summary table and problems.csv)
  2   could not run, nothing solved: bad usage, a missing or unreadable
      table, a bad setting, or OUT_DIR holds a run with other inputs or
      settings (--restart starts afresh)
  3   another run holds OUT_DIR; nothing done
  4   an output could not be written (full disk, no permission); what was
      committed is kept, run again to resume
  70  internal error (a bug); the traceback is logged
  130 interrupted (Ctrl-C); run again to resume
  143 stopped by SIGTERM (a scheduler's kill); the worker processes are
      stopped too; run again to resume
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM, stopping the run as Ctrl-C does: the pool's workers too."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (``ExitCode``).

    In the main thread SIGTERM stops the run as Ctrl-C does (without it the
    default action would end this process alone, leaving its workers).
    """
    args = _parser().parse_args(argv)  # bad usage exits 2 (CANNOT_RUN)
    handlers = _start_logging(args.log_level, args.log_file)
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _command(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)
        for handler in handlers:
            logging.getLogger(PACKAGE_LOGGER).removeHandler(handler)
            handler.close()


def _command(args: argparse.Namespace) -> int:
    """Run one command; map each kind of failure to its exit status."""
    try:
        config = _config(args)
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
            restart=args.restart,
        )
    except (InputError, StaleOutputError) as exc:
        logger.error("cannot run this batch: %s", exc)
        return ExitCode.CANNOT_RUN
    except OutputInUseError as exc:
        logger.error("%s", exc)
        return ExitCode.IN_USE
    except OutputError as exc:
        logger.error("%s; what was committed is kept: run again to resume", exc)
        return ExitCode.OUTPUT_FAILED
    except KeyboardInterrupt as exc:
        logger.error("interrupted; what was committed is kept: run again to resume")
        return 143 if isinstance(exc, Terminated) else 130
    except Exception:
        logger.exception("internal error; please report it with this traceback")
        return ExitCode.INTERNAL
    sys.stdout.write(describe(report, args.out) + "\n")
    return report.exit_code


def _config(args: argparse.Namespace) -> RunConfig:
    """Read the settings: ``--config`` (must exist) or ``IN_DIR/config.toml``."""
    path = args.config
    if path is None and (args.in_dir / "config.toml").exists():
        path = args.in_dir / "config.toml"
    overrides = {f.name: getattr(args, f.name, None) for f in fields(RunConfig)}
    return RunConfig.load(path, overrides)


def _start_logging(level: str, log_file: Path | None) -> list[logging.Handler]:
    """Send this package's log records, timestamped, to stderr and ``log_file``.

    Returns the handlers added, for ``main`` to remove when it returns.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    package = logging.getLogger(PACKAGE_LOGGER)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        package.addHandler(handler)
    package.setLevel(level)
    return handlers


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
            "as_of": report.as_of,
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
    members = s["household_id"].fillna("").astype(str) != ""
    households = s[members.to_numpy()].groupby("household_id")
    if len(households):
        lines += ["", f"Households ({households.ngroups}), solved together"]
        table = households.agg(
            accounts=("account_id", "size"),
            status=("status", lambda x: ", ".join(sorted(set(x)))),
            tracking_error_after=("tracking_error_after", "first"),
            est_tax=("est_tax", "sum"),
        )
        lines.append(table.to_string(float_format="{:,.4f}".format))
    if len(report.problems):
        lines += [
            "",
            f"{len(report.problems)} input problem(s): {out_dir / 'problems.csv'}",
        ]
    lines += ["", f"Outputs in {out_dir} (record of the run: {MANIFEST})"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rebalance", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {library_versions()[PACKAGE]}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    batch = commands.add_parser(
        "batch",
        help="rebalance every account of a directory",
        description="Rebalance every account of IN_DIR (tables of docs/DATA.md); "
        "write trades, summary, problems.csv and manifest.json to OUT_DIR. "
        "A re-run with the same inputs and settings resumes a killed run.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("in_dir", type=Path, help="directory with the input tables")
    batch.add_argument("--out", type=Path, required=True, help="output directory")
    batch.add_argument(
        "--restart",
        action="store_true",
        help="delete the outputs and parts of an earlier run in OUT_DIR first",
    )
    batch.add_argument(
        "--format",
        choices=FORMATS,
        default="parquet",
        help="format of the output tables (default: parquet)",
    )
    batch.add_argument("--workers", type=int, help="processes (default: all cores)")
    batch.add_argument("--scheduler", help="dask.distributed scheduler address")
    batch.add_argument(
        "--config", type=Path, help="config.toml (default: IN_DIR/config.toml)"
    )
    batch.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress (default: a bar on a terminal, else a log line each 30 s)",
    )
    batch.add_argument("--as-of", dest="as_of", help=RunConfig.help("as_of"))
    batch.add_argument(
        "--rounding", choices=ROUNDING_METHODS, help=RunConfig.help("rounding")
    )
    batch.add_argument("--sides", choices=SIDE_SEARCHES, help=RunConfig.help("sides"))
    batch.add_argument("--solver", help=RunConfig.help("solver"))
    _add_trigger(batch, "solve only accounts where one fires; the others get no_trade")
    batch.add_argument(
        "--buy-any",
        dest="buy_any",
        action="store_true",
        default=None,
        help="let accounts buy any priced asset in the risk model, not only held "
        "or targeted ones (substitutes for harvested losses)",
    )
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
        batch.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=float,
            metavar="X",
            help=RunConfig.help(name),
        )
    drift = commands.add_parser(
        "drift", help="report drift and tracking error; say which trigger fires"
    )
    drift.add_argument("in_dir", type=Path, help="directory with the input tables")
    drift.add_argument("--out", type=Path, help="write drift tables here")
    drift.add_argument(
        "--format",
        choices=FORMATS,
        default="parquet",
        help="format of the drift tables (default: parquet)",
    )
    drift.add_argument(
        "--config", type=Path, help="config.toml (default: IN_DIR/config.toml)"
    )
    drift.add_argument("--as-of", dest="as_of", help=RunConfig.help("as_of"))
    drift.add_argument(
        "--top", type=int, default=3, help="largest drifts listed (default: 3)"
    )
    for command in (batch, drift):
        command.add_argument(
            "--log-level",
            choices=("DEBUG", "INFO", "WARNING", "ERROR"),
            default="INFO",
            help="least severe log record shown (default: INFO)",
        )
        command.add_argument(
            "--log-file", type=Path, help="also append the log to this file"
        )
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
