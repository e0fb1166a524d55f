"""Throughput of a batch on a Dask cluster of one and two workers, and on the pool.

The batch of ``bench_batch.py`` (``--accounts`` accounts on ``--assets``
assets, generated once into ``--data-dir``) is solved end to end by the
command line, timed from start to exit as ``bench_batch.py`` times it:

- with ``--scheduler`` on a ``distributed.LocalCluster`` of one, then two,
  single-threaded worker processes on this machine;
- on the default local process pool with two workers (``--workers 2``).

It prints a markdown table: workers, wall seconds, accounts per second and
the efficiency of two workers, their rate over twice the rate of one Dask
worker (1.0 is perfect scaling; the parent's reading, checking and merging,
and cores slowing each other down, pull it lower). A cluster's worker
processes start before the command and are not timed (their import of this
package, on the first chunk, is); the pool's workers start inside the timed
command. The workers are this machine's; on a real cluster give
``--scheduler tcp://host:8786`` to ``rebalance batch`` (README). Run
``python benchmarks/bench_dask.py [--accounts 2000] [--assets 50]``; needs
the ``dask`` extra.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from bench_batch import (  # benchmarks/ runs as scripts
    add_run_flags,
    ensure_batch,
    run_cli,
    seconds,
)
from distributed import LocalCluster

LOTS = "vectorised"


@dataclass(frozen=True)
class Case:
    """One end-to-end run of the batch."""

    setup: str
    workers: int
    wall: float
    returncode: int
    statuses: str
    stderr_tail: str


def run(in_dir: Path, out_dir: Path, setup: str, workers: int, timeout: float) -> Case:
    """Run the batch on ``workers`` Dask workers or, for ``local``, the pool."""
    if setup == "local":
        wall, code, _, stderr = run_cli(in_dir, out_dir, workers, timeout)
    else:
        with LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster:
            extra = ["--scheduler", cluster.scheduler_address]
            wall, code, _, stderr = run_cli(in_dir, out_dir, workers, timeout, extra)
    summary = out_dir / "summary.parquet"
    counts = (
        pd.read_parquet(summary)["status"].value_counts().to_dict()
        if summary.exists()
        else {}
    )
    statuses = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no summary"
    return Case(setup, workers, wall, code, statuses, stderr)


def table(cases: Sequence[Case], accounts: int) -> str:
    """Return the markdown table; efficiency is against one Dask worker."""
    one = next((c for c in cases if c.setup == "dask" and c.workers == 1), None)
    base = accounts / one.wall if one is not None else float("nan")
    lines = [
        "| run | workers | wall s | accounts/s | efficiency | statuses |",
        "|:---|---:|---:|---:|---:|:---|",
    ]
    for c in cases:
        rate = accounts / c.wall
        efficiency = f"{rate / (c.workers * base):.2f}" if c.workers > 1 else "-"
        lines.append(
            f"| {c.setup} | {c.workers} | {seconds(c.wall)} | {rate:.2f} "
            f"| {efficiency} | {c.statuses} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--assets", type=int, default=50)
    add_run_flags(parser, timeout=3600.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the three setups and print the table."""
    args = parse_args(argv)
    in_dir, _, _ = ensure_batch(args.data_dir, args.assets, args.accounts, LOTS)
    cases = []
    for setup, workers in (("dask", 1), ("dask", 2), ("local", 2)):
        out_dir = args.data_dir / f"{in_dir.name}-{setup}{workers}"
        case = run(in_dir, out_dir, setup, workers, args.timeout)
        cases.append(case)
        print(
            f"[{setup}, {workers} worker(s): {case.wall:.1f} s, "
            f"exit {case.returncode}]",
            file=sys.stderr,
            flush=True,
        )
    load = os.getloadavg()
    print(
        f"# Dask benchmark: {args.accounts:,} accounts, {args.assets} assets "
        f"({LOTS} lots)"
    )
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average at the end {load[0]:.2f}"
    )
    print()
    print(table(cases, args.accounts))
    print()
    print(
        "Wall = command start to exit (reading, checks, solving, merge). "
        "Efficiency = rate / (workers x rate of one Dask worker)."
    )
    for c in cases:
        if c.returncode not in (0, 1):
            print()
            print(f"- {c.setup}, {c.workers} worker(s): exit {c.returncode}:")
            print("```")
            print(c.stderr_tail.strip())
            print("```")


if __name__ == "__main__":
    main()
