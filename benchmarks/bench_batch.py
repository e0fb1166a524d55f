"""Throughput and memory of the batch command line on a large synthetic batch.

For each number of accounts K (``--accounts``, default 200 1000 2000) a
reproducible batch is written to ``--data-dir`` (Parquet, as in
``docs/DATA.md``), unless a directory with the same parameters is
already there: a universe of ``--assets`` N assets (default 500) with a
20-factor risk model, 3 model portfolios over all N assets, each account
holding every asset of its model in 1-8 tax lots (log-uniform values of $200k
to $5M). Lots come from a vectorised copy of the distributions of
``models.synthetic.synthetic_account`` (``--lots synthetic`` calls that
function instead; about 0.14 s per account at N = 500).

Each batch is then run end to end as a subprocess::

    python -m solver.batch.cli batch IN_DIR --out OUT_DIR --workers 2 --no-progress

into an emptied output directory (the command resumes from parts it finds),
timing the wall clock from start to exit, and sampling every ~0.2 s the
resident set size (RSS) of the parent and of the whole process tree (parent
plus workers, summed), the proportional set size (PSS, which splits pages
shared by the forked workers instead of counting them in each), when the
workers appear (end of the parent's load and checks) and when chunk parts
are committed. The summary table it wrote gives the statuses and the
per-account ``solve_seconds``. Run ``python benchmarks/bench_batch.py
[--accounts 200 1000 2000] [--assets 500] [--workers 2] [--sides net]
[--rounding greedy]`` (``--sides`` and ``--rounding`` are passed to the
command).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd
import psutil
from bench_orders import version  # benchmarks/ runs as scripts

from models.market import Market
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets
from solver.result import ROUNDING_METHODS, SIDE_SEARCHES

REPO = Path(__file__).resolve().parent.parent
N_FACTORS = 20
N_MODELS = 3
MARKET_SEED = 0
BATCH_SEED = 2026
FIRST_ACCOUNT_SEED = 100
AS_OF = "2026-11-24"
VALUE_RANGE = (2e5, 5e6)  # log-uniform account values
CASH_RANGE = (0.0, 0.05)  # cash fraction of the account value
MAX_LOTS = 8  # lots per asset: 1..MAX_LOTS, capped by the shares held
SHORT_TERM_SHARE = 0.23  # lots drawn with an age of 31-360 days
GAIN_SHARE = 0.6  # lots drawn with a (mostly) positive return
CONFIG = f"""\
as_of = "{AS_OF}"
max_turnover = 0.1
min_cash = 0.005
"""
GENERATOR_VERSION = 1  # bump when the generated data changes
SAMPLE_SECONDS = 0.2
MB = 2**20
SLOW_RUN_SECONDS = 600  # a run slower than this stops the larger sizes
EXTRAPOLATE_TO = (10_000, 1_000_000)


# --- data ------------------------------------------------------------------


def vectorised_lots(
    market: Market,
    targets: pd.Series,
    *,
    account_id: str,
    value: float,
    cash_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Return an account's lots drawn as ``synthetic_account`` draws them.

    Same distributions (drift, 1-8 lots per asset capped by the shares,
    Dirichlet split, 23% of lots 31-360 days old and the rest 40 days to 5
    years, 60% of lots with a normal(8%, 25%) return and the rest a loss),
    vectorised over assets; not the same random stream.
    """
    rng = np.random.default_rng(seed)
    n = len(targets)
    prices = market.prices.loc[targets.index, "price"].to_numpy()
    drifted = targets.to_numpy() * rng.lognormal(0.0, 0.25, n)
    invested = drifted / drifted.sum() * value * (1 - cash_fraction)
    shares = np.maximum(1, np.rint(invested / prices)).astype(np.int64)
    n_lots = np.minimum(rng.integers(1, MAX_LOTS + 1, n), shares)
    used = np.arange(MAX_LOTS) < n_lots[:, None]
    weights = np.where(used, rng.exponential(size=(n, MAX_LOTS)), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)  # Dirichlet(1, ..., 1)
    quantity = (rng.multinomial(shares - n_lots, weights) + 1)[used]
    where = np.repeat(np.arange(n), n_lots)
    k = np.arange(len(where)) - np.repeat(np.cumsum(n_lots) - n_lots, n_lots)
    m = len(where)
    age = np.where(
        rng.random(m) < SHORT_TERM_SHARE,
        rng.uniform(31, 360, m),
        rng.uniform(40, 5 * 365, m),
    ).astype(np.int64)
    gain = np.where(
        rng.random(m) < GAIN_SHARE,
        rng.normal(0.08, 0.25, m),
        -np.abs(rng.normal(0.1, 0.1, m)),
    )
    price = prices[where]
    basis = np.where(gain > -0.95, np.round(price / (1 + gain), 4), price)
    assets = targets.index.to_numpy(dtype=str)[where]
    return pd.DataFrame(
        {
            "account_id": account_id,
            "asset": assets,
            "lot_id": [f"{account_id}-{a}-{j}" for a, j in zip(assets, k, strict=True)],
            "quantity": quantity.astype(float),
            "cost_basis": basis,
            "acquired": market.as_of - pd.to_timedelta(age, unit="D"),
        }
    )


def generate(directory: Path, params: dict[str, object]) -> float:
    """Write the batch of ``params`` to ``directory``; return the seconds taken."""
    start = time.perf_counter()
    n_assets, n_accounts = int(str(params["assets"])), int(str(params["accounts"]))
    market = synthetic_market(
        n_assets, n_factors=N_FACTORS, seed=MARKET_SEED, as_of=AS_OF
    )
    models = {f"M{k}": synthetic_targets(market, seed=k) for k in range(N_MODELS)}
    rng = np.random.default_rng(BATCH_SEED)
    values = np.exp(rng.uniform(*np.log(VALUE_RANGE), n_accounts))
    cash_fractions = rng.uniform(*CASH_RANGE, n_accounts)
    accounts, lots = [], []
    for i in range(n_accounts):
        aid, model = f"ACC{i:07d}", f"M{i % N_MODELS}"
        value, cash_fraction = float(values[i]), float(cash_fractions[i])
        if params["lots"] == "synthetic":
            lots.append(
                synthetic_account(
                    market,
                    models[model],
                    account_id=aid,
                    value=value,
                    cash_fraction=cash_fraction,
                    seed=FIRST_ACCOUNT_SEED + i,
                ).lots.assign(account_id=aid)
            )
        else:
            lots.append(
                vectorised_lots(
                    market,
                    models[model],
                    account_id=aid,
                    value=value,
                    cash_fraction=cash_fraction,
                    seed=FIRST_ACCOUNT_SEED + i,
                )
            )
        accounts.append(
            {
                "account_id": aid,
                "model_id": model,
                "cash": round(value * cash_fraction, 2),
            }
        )
    risk = market.risk_model
    tables = {
        "accounts": pd.DataFrame(accounts),
        "lots": pd.concat(lots, ignore_index=True)[
            ["account_id", "asset", "lot_id", "quantity", "cost_basis", "acquired"]
        ],
        "targets": pd.concat(
            [
                w.rename("weight").reset_index().assign(model_id=m)
                for m, w in models.items()
            ]
        )[["model_id", "asset", "weight"]],
        "prices": market.prices.reset_index(),
        "factor_loadings": risk.loadings.rename_axis("asset").reset_index(),
        "factor_covariance": risk.factor_covariance.rename_axis("factor").reset_index(),
        "specific_risk": risk.specific_variance.rename("variance")
        .rename_axis("asset")
        .reset_index(),
    }
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    (directory / "config.toml").write_text(CONFIG)
    seconds = time.perf_counter() - start
    stamp = {**params, "lot_rows": len(tables["lots"]), "seconds": seconds}
    (directory / "params.json").write_text(json.dumps(stamp, indent=1))  # commit
    return seconds


def batch_params(n_assets: int, n_accounts: int, lots: str) -> dict[str, object]:
    """Return what identifies a generated batch."""
    return {
        "assets": n_assets,
        "accounts": n_accounts,
        "factors": N_FACTORS,
        "models": N_MODELS,
        "lots": lots,
        "version": GENERATOR_VERSION,
        "as_of": AS_OF,
        "config": CONFIG,
    }


def ensure_batch(
    root: Path, n_assets: int, n_accounts: int, lots: str
) -> tuple[Path, float, bool]:
    """Return the batch directory, generation seconds and whether it was cached."""
    params = batch_params(n_assets, n_accounts, lots)
    directory = root / f"n{n_assets}-k{n_accounts}-{lots}"
    stamp = directory / "params.json"
    if stamp.exists():
        found = json.loads(stamp.read_text())
        if {k: found.get(k) for k in params} == params:
            return directory, float(found["seconds"]), True
    return directory, generate(directory, params), False


def input_bytes(directory: Path) -> int:
    """Return the size of the batch's input files."""
    return sum(
        p.stat().st_size
        for p in directory.iterdir()
        if p.suffix in (".parquet", ".csv", ".toml")
    )


# --- run -------------------------------------------------------------------


@dataclass
class Samples:
    """What the sampler saw while the command ran (seconds from its start)."""

    peak_rss_total: int = 0
    peak_rss_parent: int = 0
    peak_pss_total: int = 0
    peak_processes: int = 0
    peak_rss_worker: int = 0  # largest single child process
    parent_peak_at: float = np.nan  # when the parent's RSS peaked
    parent_rss_at_workers: int = 0  # parent RSS when the first worker appeared
    workers_at: float = np.nan  # first child process seen
    first_part_at: float = np.nan  # first chunk committed
    last_part_at: float = np.nan  # the parts count last changed
    parent_cpu_at_workers: float = np.nan
    parent_cpu_at_first_part: float = np.nan
    parent_cpu_at_last_part: float = np.nan
    parent_cpu: float = 0.0  # last sample
    children_cpu: float = 0.0  # last sample, summed over children seen
    samples: int = 0
    sample_seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """One end-to-end run of the command line."""

    accounts: int
    lot_rows: int
    input_bytes: int
    generate_seconds: float
    cached: bool
    wall: float
    returncode: int
    samples: Samples
    summary: pd.DataFrame
    trades: int
    stderr_tail: str


def memory(process: psutil.Process) -> tuple[int, int]:
    """Return ``(rss, pss)`` of one process, zeros once it is gone."""
    try:
        info = process.memory_full_info()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0, 0
    return int(info.rss), int(getattr(info, "pss", 0))


def cpu_seconds(process: psutil.Process) -> float:
    """Return a process's user + system CPU seconds, nan once it is gone."""
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return np.nan
    return float(times.user + times.system)


def sample(
    parent: psutil.Process, parts: Path, seen: Samples, t: float, counts: list[int]
) -> None:
    """Take one sample of the process tree and the committed parts."""
    begin = time.perf_counter()
    try:
        children = parent.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        children = []
    rss_parent, pss_parent = memory(parent)
    child_memory = [memory(c) for c in children]
    rss = rss_parent + sum(r for r, _ in child_memory)
    pss = pss_parent + sum(p for _, p in child_memory)
    if rss_parent > seen.peak_rss_parent:
        seen.peak_rss_parent = rss_parent
        seen.parent_peak_at = t
    seen.peak_rss_worker = max([seen.peak_rss_worker, *(r for r, _ in child_memory)])
    seen.peak_rss_total = max(seen.peak_rss_total, rss)
    seen.peak_pss_total = max(seen.peak_pss_total, pss)
    seen.peak_processes = max(seen.peak_processes, 1 + len(children))
    parent_cpu = cpu_seconds(parent)
    if np.isfinite(parent_cpu):
        seen.parent_cpu = parent_cpu
    if children:
        child_cpu = np.nansum([cpu_seconds(c) for c in children])
        seen.children_cpu = max(seen.children_cpu, float(child_cpu))
        if np.isnan(seen.workers_at):
            seen.workers_at = t
            seen.parent_cpu_at_workers = seen.parent_cpu
            seen.parent_rss_at_workers = rss_parent
    n_parts = len(list(parts.glob("*.summary.parquet"))) if parts.exists() else 0
    if n_parts and np.isnan(seen.first_part_at):
        seen.first_part_at = t
        seen.parent_cpu_at_first_part = seen.parent_cpu
    if n_parts != counts[0] and n_parts > counts[0]:
        seen.last_part_at = t
        seen.parent_cpu_at_last_part = seen.parent_cpu
    counts[0] = max(counts[0], n_parts)
    seen.samples += 1
    seen.sample_seconds.append(time.perf_counter() - begin)


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Kill the command we started and its workers, by process id."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.kill()
    process.wait()


def run_cli(
    in_dir: Path,
    out_dir: Path,
    workers: int,
    timeout: float,
    extra: Sequence[str] = (),
) -> tuple[float, int, Samples, str]:
    """Run the batch command; return wall seconds, exit status, samples, stderr.

    ``extra`` holds more flags, such as ``--scheduler ADDRESS``.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)  # the command would resume from earlier parts
    command = [
        sys.executable,
        "-m",
        "solver.batch.cli",
        "batch",
        str(in_dir),
        "--out",
        str(out_dir),
        "--workers",
        str(workers),
        "--no-progress",
        *extra,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    seen = Samples()
    counts = [0]
    parts = out_dir / ".parts"
    log = out_dir.parent / f"{out_dir.name}.log"
    with log.open("wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO)
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            t = time.perf_counter() - start
            if t > timeout:
                stop_tree(process)
                break
            sample(parent, parts, seen, t, counts)
            time.sleep(max(0.0, SAMPLE_SECONDS - seen.sample_seconds[-1]))
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return wall, int(process.returncode), seen, stderr[-2000:]


def bench(
    root: Path,
    n_assets: int,
    n_accounts: int,
    lots: str,
    workers: int,
    timeout: float,
    extra: Sequence[str] = (),
) -> Run:
    """Generate (or reuse) one batch and run it end to end (``extra``: more flags)."""
    in_dir, gen_seconds, cached = ensure_batch(root, n_assets, n_accounts, lots)
    lot_rows = int(json.loads((in_dir / "params.json").read_text())["lot_rows"])
    out_dir = in_dir.parent / f"{in_dir.name}-out"
    wall, code, seen, stderr = run_cli(in_dir, out_dir, workers, timeout, extra)
    summary_path = out_dir / "summary.parquet"
    summary = pd.read_parquet(summary_path) if summary_path.exists() else None
    trades_path = out_dir / "trades.parquet"
    trades = len(pd.read_parquet(trades_path)) if trades_path.exists() else 0
    return Run(
        accounts=n_accounts,
        lot_rows=lot_rows,
        input_bytes=input_bytes(in_dir),
        generate_seconds=gen_seconds,
        cached=cached,
        wall=wall,
        returncode=code,
        samples=seen,
        summary=summary if summary is not None else pd.DataFrame(),
        trades=trades,
        stderr_tail=stderr,
    )


# --- report ----------------------------------------------------------------


def mb(n_bytes: float) -> str:
    """Format bytes as MiB."""
    return f"{n_bytes / MB:,.0f}"


def seconds(value: float) -> str:
    """Format seconds, ``-`` when unknown."""
    return "-" if not np.isfinite(value) else f"{value:,.1f}"


def statuses(summary: pd.DataFrame) -> str:
    """Format status counts, e.g. ``optimal 198, relaxed 2``."""
    if summary.empty:
        return "no summary"
    counts = summary["status"].value_counts()
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def solve_stats(summary: pd.DataFrame) -> tuple[float, float, float]:
    """Return median, 95th percentile and sum of ``solve_seconds``."""
    if summary.empty:
        return np.nan, np.nan, np.nan
    values = summary["solve_seconds"].dropna().to_numpy(dtype=float)
    if not len(values):
        return np.nan, np.nan, np.nan
    return (
        float(np.median(values)),
        float(np.quantile(values, 0.95)),
        float(values.sum()),
    )


def main_table(runs: Sequence[Run], n_assets: int) -> str:
    """Return the throughput and memory table, one row per size."""
    lines = [
        "| N | accounts | lots | input MB | generate s | wall s | accounts/s "
        "| accounts/h | statuses | median solve s | peak RSS total MB "
        "| peak RSS parent MB | peak PSS total MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---|---:|---:|---:|---:|",
    ]
    for r in runs:
        median, _, _ = solve_stats(r.summary)
        rate = r.accounts / r.wall
        generated = seconds(r.generate_seconds) + (" (cached)" if r.cached else "")
        lines.append(
            f"| {n_assets} | {r.accounts:,} | {r.lot_rows:,} "
            f"| {r.input_bytes / MB:,.1f} | {generated} | {seconds(r.wall)} "
            f"| {rate:.2f} | {3600 * rate:,.0f} | {statuses(r.summary)} "
            f"| {median:.3f} | {mb(r.samples.peak_rss_total)} "
            f"| {mb(r.samples.peak_rss_parent)} | {mb(r.samples.peak_pss_total)} |"
        )
    return "\n".join(lines)


def parent_share(s: Samples) -> float:
    """Return the parent's CPU between the first and last chunk, per wall second."""
    window = s.last_part_at - s.first_part_at
    used = s.parent_cpu_at_last_part - s.parent_cpu_at_first_part
    return used / window if window > 0 else np.nan


def timeline_table(runs: Sequence[Run], workers: int) -> str:
    """Return where the wall time goes, one row per size."""
    lines = [
        "| accounts | workers start s | parent CPU s before | first chunk done s "
        "| last chunk done s | after last chunk s | solve s sum / (workers x "
        "solving window) | p95 solve s | parent CPU while solving "
        "| parent CPU s total | workers CPU s | orders |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        s = r.samples
        _, p95, total = solve_stats(r.summary)
        window = s.last_part_at - s.workers_at
        busy = total / (workers * window) if window > 0 else np.nan
        lines.append(
            f"| {r.accounts:,} | {seconds(s.workers_at)} "
            f"| {seconds(s.parent_cpu_at_workers)} | {seconds(s.first_part_at)} "
            f"| {seconds(s.last_part_at)} | {seconds(r.wall - s.last_part_at)} "
            f"| {busy:.0%} | {p95:.3f} | {parent_share(s):.1%} "
            f"| {seconds(s.parent_cpu)} | {seconds(s.children_cpu)} | {r.trades:,} |"
        )
    return "\n".join(lines)


def memory_table(runs: Sequence[Run]) -> str:
    """Return the parent's memory at each phase and the largest worker."""
    lines = [
        "| accounts | parent RSS at workers start MB | parent peak RSS MB "
        "| parent peak at s | phase of parent peak | largest worker RSS MB "
        "| processes |",
        "|---:|---:|---:|---:|:---|---:|---:|",
    ]
    for r in runs:
        s = r.samples
        if s.parent_peak_at >= s.last_part_at:
            phase = "merge"
        elif s.parent_peak_at >= s.workers_at:
            phase = "solving"
        else:
            phase = "load and checks"
        lines.append(
            f"| {r.accounts:,} | {mb(s.parent_rss_at_workers)} "
            f"| {mb(s.peak_rss_parent)} | {seconds(s.parent_peak_at)} | {phase} "
            f"| {mb(s.peak_rss_worker)} | {s.peak_processes} |"
        )
    return "\n".join(lines)


def per_thousand(a: Run, b: Run, value: float, other: float) -> float:
    """Return the growth of a quantity per 1000 accounts between two runs."""
    return (other - value) / (b.accounts - a.accounts) * 1000


def growth(a: Run, b: Run, attr: str) -> float:
    """Return the growth of a sampled peak per 1000 accounts between two runs."""
    return per_thousand(a, b, getattr(a.samples, attr), getattr(b.samples, attr))


def growth_notes(runs: Sequence[Run]) -> list[str]:
    """Describe how peak memory and wall time grow between consecutive sizes."""
    notes = []
    for a, b in itertools.pairwise(runs):
        parts = [
            f"{name} {growth(a, b, attr) / MB:+,.0f} MB"
            for name, attr in (
                ("RSS total", "peak_rss_total"),
                ("RSS parent", "peak_rss_parent"),
                ("PSS total", "peak_pss_total"),
            )
        ]
        wall = per_thousand(a, b, a.wall, b.wall)
        notes.append(
            f"{a.accounts:,} -> {b.accounts:,} accounts, per 1000 accounts: "
            + ", ".join(parts)
            + f"; wall {wall:+,.0f} s"
        )
    if runs:
        last = runs[-1]
        per_account = {
            "RSS total": last.samples.peak_rss_total,
            "RSS parent": last.samples.peak_rss_parent,
            "PSS total": last.samples.peak_pss_total,
        }
        notes.append(
            f"at {last.accounts:,} accounts ({last.lot_rows / last.accounts:,.0f} "
            "lots each), peak per account: "
            + ", ".join(
                f"{k} {v / last.accounts / 1024:,.0f} KiB"
                for k, v in per_account.items()
            )
        )
    return notes


def extrapolation(runs: Sequence[Run], workers: int) -> list[str]:
    """Return extrapolated times (and parent memory) for larger batches."""
    if not runs:
        return []
    last = runs[-1]
    rate = last.accounts / last.wall
    lines = [
        f"EXTRAPOLATED (not measured) from the measured rate, {workers} workers "
        f"on this machine, same batch shape "
        f"({last.lot_rows / last.accounts:,.0f} lots/account):"
    ]
    marginal = np.nan
    if len(runs) > 1:
        prev = runs[-2]
        marginal = (last.wall - prev.wall) / (last.accounts - prev.accounts)
    for k in EXTRAPOLATE_TO:
        text = (
            f"- {k:,} accounts: {k / rate / 3600:,.2f} h at the "
            f"{last.accounts:,}-account rate ({rate:.2f}/s)"
        )
        if np.isfinite(marginal) and marginal > 0:
            fixed = last.wall - marginal * last.accounts
            text += (
                f"; {(fixed + marginal * k) / 3600:,.2f} h from the marginal "
                f"{marginal:.3f} s/account between the two largest sizes"
            )
            mem = (last.samples.peak_rss_parent - runs[-2].samples.peak_rss_parent) / (
                last.accounts - runs[-2].accounts
            )
            parent = last.samples.peak_rss_parent + mem * (k - last.accounts)
            text += f"; parent peak RSS ~{parent / 2**30:,.1f} GiB if linear"
        lines.append(text)
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[200, 1000, 2000])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--lots",
        choices=("vectorised", "synthetic"),
        default="vectorised",
        help="lot generator: vectorised copy (default) or synthetic_account",
    )
    parser.add_argument(
        "--sides",
        choices=SIDE_SEARCHES,
        help="the batch's --sides (default: the command's own default)",
    )
    parser.add_argument(
        "--rounding",
        choices=ROUNDING_METHODS,
        help="the batch's --rounding (default: the command's own default)",
    )
    add_run_flags(parser, timeout=720.0)
    return parser.parse_args(argv)


def flags(args: argparse.Namespace) -> list[str]:
    """Return the command's flags chosen here (``--sides``, ``--rounding``)."""
    chosen = (("sides", args.sides), ("rounding", args.rounding))
    return [f"--{name}={value}" for name, value in chosen if value]


def add_run_flags(parser: argparse.ArgumentParser, *, timeout: float) -> None:
    """Add ``--data-dir`` and ``--timeout``, shared with ``bench_dask.py``."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench_batch",
        help="where batches are generated and cached, and outputs written",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds before a run is killed",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print markdown tables."""
    args = parse_args(argv)
    load = os.getloadavg()
    runs: list[Run] = []
    skipped: list[int] = []
    for k in sorted(args.accounts):
        if runs and runs[-1].wall > SLOW_RUN_SECONDS:
            skipped.append(k)
            continue
        run = bench(
            args.data_dir,
            args.assets,
            k,
            args.lots,
            args.workers,
            args.timeout,
            flags(args),
        )
        runs.append(run)
        print(
            f"[{k} accounts: {run.wall:.1f} s, exit {run.returncode}]",
            file=sys.stderr,
            flush=True,
        )

    print(f"# batch benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"pandas {pd.__version__}, cvxpy {cp.__version__}, "
        f"clarabel {version('clarabel')}, highspy {version('highspy')}, "
        f"pyarrow {version('pyarrow')}, psutil {psutil.__version__}; "
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"load average at start {load[0]:.2f}"
    )
    print(
        f"`python -m solver.batch.cli batch IN --out OUT --workers {args.workers} "
        f"--no-progress{''.join(' ' + flag for flag in flags(args))}`; "
        f"{N_FACTORS} factors, {N_MODELS} models over all "
        f"{args.assets} assets, accounts "
        f"${VALUE_RANGE[0]:,.0f}-${VALUE_RANGE[1]:,.0f}, "
        f"{args.lots} lots; config: "
        + ", ".join(CONFIG.strip().splitlines())
        + " (otherwise the command's defaults: NoBuyAndSell, wash-sale rule,"
        " rounding auto, sides auto)"
    )
    print()
    print("## Throughput and memory")
    print()
    print(main_table(runs, args.assets))
    print()
    print(
        "Wall = subprocess start to exit. RSS sampled every "
        f"{SAMPLE_SECONDS} s; total = parent + workers summed (pages the forked "
        "workers share with the parent are counted in each); PSS splits shared "
        "pages. Median solve = summary `solve_seconds`."
    )
    print()
    print("## Where the time goes")
    print()
    print(timeline_table(runs, args.workers))
    print()
    print(
        "Times from the start of the command (resolution "
        f"~{SAMPLE_SECONDS} s): workers start = first worker process seen (the "
        "parent has read, checked and indexed the tables); chunk done = a "
        "summary part committed; after last chunk = merge and exit. Busy = sum "
        "of per-account solve seconds over workers x (last chunk - workers "
        "start). Parent CPU while solving = its CPU seconds from the first to "
        "the last chunk done, over that window (a share of one core)."
    )
    print()
    print("## Memory growth")
    print()
    print(memory_table(runs))
    print()
    for note in growth_notes(runs):
        print(f"- {note}")
    print()
    for line in extrapolation(runs, args.workers):
        print(line)
    if skipped:
        print()
        print(
            f"Skipped {skipped}: the previous size took more than {SLOW_RUN_SECONDS} s."
        )
    for r in runs:
        if r.returncode != 0 or r.summary.empty:
            print()
            print(f"- {r.accounts} accounts: exit {r.returncode}; stderr tail:")
            print("```")
            print(r.stderr_tail.strip())
            print("```")
        elif len(r.summary):
            bad = r.summary[~r.summary["status"].isin(["optimal", "no_trade"])]
            for status, group in bad.groupby("status"):
                print(
                    f"- {r.accounts} accounts: {len(group)} {status}, e.g. "
                    f"{group['account_id'].iloc[0]}: {group['message'].iloc[0]}"
                )


if __name__ == "__main__":
    main()
