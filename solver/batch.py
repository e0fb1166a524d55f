"""Rebalance many accounts: a process pool by default, a Dask cluster on request."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from models.errors import InputError
from solver.config import RunConfig
from solver.jobs import AccountJob, BatchInput, load_batch, solve_chunk, unsolved
from solver.parts import PartStore
from solver.result import ANSWERED, SUMMARY_FIELDS, Status, empty_trades
from solver.tables import FORMATS, write_table

logger = logging.getLogger(__name__)
SHARDS = ".shards"  # the lots split by account; removed after the run
MAX_CHUNK = 25  # accounts per task: steady progress, overhead amortised
IN_FLIGHT_PER_WORKER = 3  # chunks submitted ahead, bounding memory


@dataclass(frozen=True)
class BatchReport:
    """What a batch run produced."""

    summary: pd.DataFrame  # DATA.md summary, every account once
    orders: int  # rows written to the trades table
    problems: pd.DataFrame  # problems found up front (validate.PROBLEM_COLUMNS)
    solved_now: int  # accounts solved by this run (not resumed)
    seconds: float


class Progress:
    """Counts accounts done and failed; drives an optional progress bar."""

    def __init__(self, total: int, *, show: bool) -> None:
        self.failed = 0
        self._bar: Any = None
        if show:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit="acct", dynamic_ncols=True, smoothing=0.1
            )

    def add(self, summary: pd.DataFrame) -> None:
        """Count a finished chunk."""
        self.failed += int((~summary["status"].isin(ANSWERED)).sum())
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(len(summary))

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()


def rebalance_batch(
    in_dir: Path,
    out_dir: Path,
    *,
    config: RunConfig,
    workers: int | None = None,
    scheduler: str | None = None,
    fmt: str = "parquet",
    progress: bool = False,
) -> BatchReport:
    """Rebalance every account of ``in_dir``; write the outputs to ``out_dir``.

    Parameters
    ----------
    in_dir, out_dir : Path
        Input tables (DATA.md) and where the outputs go.
    config : RunConfig
        Run-wide settings; account override columns win.
    workers : int or None
        Processes on this machine (default: all cores); ignored with
        ``scheduler``.
    scheduler : str or None
        Address of a ``dask.distributed`` scheduler to run the accounts on.
    fmt : str
        ``parquet`` or ``csv`` for the outputs.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    BatchReport
        Every account's summary row; accounts finished by an earlier,
        interrupted run of the same command are reused, not solved again.

    Raises
    ------
    InputError
        When the batch cannot run at all (a missing table or column, an
        invalid risk model); account-level problems never raise.
    """
    if fmt not in FORMATS:
        raise InputError(
            f"format must be one of {FORMATS}, got {fmt!r}", field="format"
        )
    start = time.perf_counter()
    shards = out_dir / SHARDS
    shutil.rmtree(shards, ignore_errors=True)
    try:
        return _batch(in_dir, out_dir, config, workers, scheduler, fmt, progress, start)
    finally:
        shutil.rmtree(shards, ignore_errors=True)


def _batch(
    in_dir: Path,
    out_dir: Path,
    config: RunConfig,
    workers: int | None,
    scheduler: str | None,
    fmt: str,
    progress: bool,
    start: float,
) -> BatchReport:
    """Run the batch once the output directory is ready."""
    batch = load_batch(in_dir, config, out_dir / SHARDS)
    store = PartStore(out_dir)
    done = store.finished()
    if len(batch.problems):
        write_table(batch.problems, out_dir / "problems.csv")
    done |= _store_invalid(batch, store, done)
    jobs = batch.jobs(skip=done)
    todo = len(set(batch.account_ids) - done)
    workers = workers or os.cpu_count() or 1
    bar = Progress(todo, show=progress)
    try:
        _run(batch, jobs, store, bar, workers=workers, scheduler=scheduler, total=todo)
    finally:
        bar.close()
    summary, trades = store.merge(fmt, batch.account_ids)
    return BatchReport(
        summary, trades, batch.problems, todo, time.perf_counter() - start
    )


def _store_invalid(batch: BatchInput, store: PartStore, done: set[str]) -> set[str]:
    """Commit the summary rows of accounts that failed the up-front checks.

    Returns the accounts it committed.
    """
    rows = [
        unsolved(aid, Status.INVALID_INPUT, message, 0.0)
        for aid, message in batch.invalid.items()
        if aid not in done
    ]
    if rows:
        store.write(pd.DataFrame(rows, columns=list(SUMMARY_FIELDS)), empty_trades())
    return {str(row["account_id"]) for row in rows}


def _run(
    batch: BatchInput,
    jobs: Iterator[AccountJob],
    store: PartStore,
    bar: Progress,
    *,
    workers: int,
    scheduler: str | None,
    total: int,
) -> None:
    """Solve the jobs in chunks; store each chunk as soon as it finishes."""
    size = max(1, min(MAX_CHUNK, math.ceil(total / (workers * 4))))
    chunks = iter(lambda: list(islice(jobs, size)), [])
    if scheduler is None and workers == 1:
        for chunk in chunks:
            _commit(store, bar, solve_chunk(batch.market, chunk))
        return
    with _executor(workers, scheduler) as pool:
        pending: set[Future[tuple[pd.DataFrame, pd.DataFrame]]] = set()
        for chunk in chunks:
            pending.add(pool.submit(solve_chunk, batch.market, chunk))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    _commit(store, bar, future.result())
        for future in wait(pending).done:
            _commit(store, bar, future.result())


def _commit(
    store: PartStore, bar: Progress, result: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Write a finished chunk and count it."""
    summary, trades = result
    store.write(summary, trades)
    bar.add(summary)


@contextmanager
def _executor(workers: int, scheduler: str | None) -> Iterator[Executor]:
    """Yield a process pool, or a Dask cluster's executor."""
    if scheduler is None:
        # fresh worker processes: forking a parent whose libraries already run
        # threads (BLAS, a solver, a Dask client) can leave workers spinning
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            yield pool
        return
    from distributed import Client

    with Client(scheduler) as client:
        logger.info("running on %s", scheduler)
        yield client.get_executor()
