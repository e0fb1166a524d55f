"""Rebalance many accounts: a process pool by default, a Dask cluster on request."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import IntEnum
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from models import Market
from models.errors import InputError
from solver.batch.chunks import Job, solve_chunk
from solver.batch.config import RunConfig
from solver.batch.jobs import BatchInput, load_batch, unsolved
from solver.batch.lock import output_lock
from solver.batch.manifest import (
    PACKAGE,
    RunKey,
    file_record,
    input_files,
    input_stats,
    now,
    write_manifest,
)
from solver.batch.outdir import PROBLEMS, check_output
from solver.batch.parts import PartStore
from solver.batch.progress import Progress
from solver.batch.tables import FORMATS, write_table
from solver.batch.worker import hold, solve_held
from solver.errors import OutputError
from solver.result import ANSWERED, SUMMARY_FIELDS, Status, empty_trades

logger = logging.getLogger(__name__)
SHARDS = ".shards"  # the lots split by account; removed after the run
# Accounts per task: steady progress, overhead amortised. Each chunk costs
# the parent about 27 ms to commit (two Parquet parts, fsync): at 25 it took
# 5.0-5.1% of a core on 10,000 accounts of 50 assets, at 50 3.7%.
MAX_CHUNK = 50
IN_FLIGHT_PER_WORKER = 3  # chunks submitted ahead, bounding memory
ChunkResult = tuple[pd.DataFrame, pd.DataFrame]  # summary and trades rows
Submit = Callable[[list[Job]], Future[ChunkResult]]


class Sink(Protocol):
    """Where finished accounts go: committed parts, or frames in memory."""

    def write(self, summary: pd.DataFrame, trades: pd.DataFrame) -> None:
        """Keep the summary and trades rows of some finished accounts."""
        ...


class ExitCode(IntEnum):
    """Exit status of ``rebalance batch``, for a scheduler to act on."""

    OK = 0  # complete; every account answered
    UNANSWERED = 1  # complete; some accounts invalid_input, infeasible or failed
    CANNOT_RUN = 2  # bad usage, input or setting, or OUT holds another run's work
    IN_USE = 3  # another run holds OUT; nothing done
    OUTPUT_FAILED = 4  # an output could not be written; committed parts are kept
    INTERNAL = 70  # a bug; the traceback is logged


@dataclass(frozen=True)
class BatchReport:
    """What a batch run produced."""

    summary: pd.DataFrame  # docs/DATA.md summary, every account once
    orders: int  # rows written to the trades table
    problems: pd.DataFrame  # problems found up front (validate.PROBLEM_COLUMNS)
    solved_now: int  # accounts solved by this run (not resumed)
    seconds: float
    as_of: str

    @property
    def exit_code(self) -> ExitCode:
        """``OK`` when every account has an answer, else ``UNANSWERED``."""
        answered = self.summary["status"].isin(ANSWERED).all()
        return ExitCode.OK if answered else ExitCode.UNANSWERED


def rebalance_batch(
    in_dir: Path,
    out_dir: Path,
    *,
    config: RunConfig,
    workers: int | None = None,
    scheduler: str | None = None,
    fmt: str = "parquet",
    progress: bool = False,
    restart: bool = False,
) -> BatchReport:
    """Rebalance every account of ``in_dir``; write the outputs to ``out_dir``.

    Parameters
    ----------
    in_dir, out_dir : Path
        Input tables (docs/DATA.md) and where the outputs go.
    config : RunConfig
        Run-wide settings; account override columns win. Without ``as_of``
        the run uses today's date and says so.
    workers : int or None
        Processes on this machine (default: all cores); ignored with
        ``scheduler``.
    scheduler : str or None
        Address of a ``dask.distributed`` scheduler to run the accounts on.
    fmt : str
        ``parquet`` or ``csv`` for the outputs.
    progress : bool
        Show progress on stderr: a bar on a terminal, log lines otherwise.
    restart : bool
        Delete the outputs and parts of an earlier run in ``out_dir`` first.

    Returns
    -------
    BatchReport
        Every account's summary row. Accounts finished by an earlier,
        interrupted run with the same inputs, settings, ``as_of`` and
        versions are reused, not solved again.

    Raises
    ------
    InputError
        The batch cannot run at all (a missing table or column, a bad
        setting, an invalid risk model); account-level problems never raise.
    StaleOutputError
        ``out_dir`` holds work of a run with other inputs or settings, and
        ``restart`` is not set; the message says what changed.
    OutputInUseError
        Another run holds ``out_dir``.
    OutputError
        An output could not be written (a full disk, no permission).
    """
    if fmt not in FORMATS:
        raise InputError(
            f"format must be one of {FORMATS}, got {fmt!r}", field="format"
        )
    start = time.perf_counter()
    config = config.check().resolved()
    before = input_stats(in_dir)
    key = RunKey.of(in_dir, config)
    logger.info(
        "batch %s -> %s, as_of %s, version %s",
        in_dir,
        out_dir,
        config.as_of,
        key.versions[PACKAGE],
    )
    try:
        with output_lock(out_dir):
            finals = check_output(out_dir, key, restart=restart)
            shards = out_dir / SHARDS
            shutil.rmtree(shards, ignore_errors=True)  # left by a killed run
            try:
                batch = load_batch(in_dir, config, shards)
                if input_stats(in_dir) != before:
                    raise InputError(
                        "an input file changed while the run read it; run again",
                        field="inputs",
                    )
                run = _Run(batch, key, in_dir, out_dir, fmt, workers, scheduler)
                return run.execute(finals, progress=progress, start=start)
            finally:
                shutil.rmtree(shards, ignore_errors=True)
    except OSError as exc:
        raise OutputError(f"cannot write the outputs in {out_dir}: {exc}") from exc


@dataclass
class _Run:
    """One run of a loaded batch into a locked output directory."""

    batch: BatchInput
    key: RunKey
    in_dir: Path
    out_dir: Path
    fmt: str
    workers: int | None
    scheduler: str | None

    def execute(
        self, finals: dict[str, Any] | None, *, progress: bool, start: float
    ) -> BatchReport:
        """Solve what is not committed yet, merge, and record the run."""
        batch, out_dir = self.batch, self.out_dir
        store = PartStore(out_dir, finals)
        done = store.finished()
        workers = self.workers or os.cpu_count() or 1
        record = self._record(workers, finals)
        write_manifest(out_dir, record)
        (out_dir / PROBLEMS).unlink(missing_ok=True)
        if len(batch.problems):
            write_table(batch.problems, out_dir / PROBLEMS)
            logger.warning(
                "%d input problem(s), listed in %s",
                len(batch.problems),
                out_dir / PROBLEMS,
            )
        todo = solve_batch(
            batch,
            store,
            done=done,
            workers=workers,
            scheduler=self.scheduler,
            progress=progress,
        )
        summary, count, paths = store.merge(self.fmt, batch.account_ids)
        report = BatchReport(
            summary,
            count,
            batch.problems,
            todo,
            time.perf_counter() - start,
            str(batch.config.as_of),
        )
        record.update(
            state="complete",
            finished=now(),
            seconds=round(report.seconds, 3),
            solved_by_this_run=todo,
            status_counts=summary["status"].value_counts().sort_index().to_dict(),
            exit_code=int(report.exit_code),
            outputs={
                name: file_record(path, len(summary) if name == "summary" else count)
                for name, path in zip(("summary", "trades"), paths, strict=True)
            },
        )
        write_manifest(out_dir, record)
        store.clear()
        logger.info(
            "done in %.1f s: %s; outputs in %s",
            report.seconds,
            ", ".join(f"{n} {s}" for s, n in record["status_counts"].items()),
            out_dir,
        )
        return report

    def _record(self, workers: int, finals: dict[str, Any] | None) -> dict[str, Any]:
        """Return the manifest of a run that has started."""
        batch, key = self.batch, self.key
        rows = {name: len(frame) for name, frame in batch.tables.items()}
        rows["lots"] = batch.lots.rows
        inputs = {
            path.stem: {
                "file": path.name,
                "sha256": key.inputs[path.name],
                "rows": rows.get(path.stem),
            }
            for path in input_files(self.in_dir)
        }
        return {
            "state": "running",
            "version": key.versions[PACKAGE],
            "as_of": key.as_of,
            "fingerprint": key.fingerprint(),
            "started": now(),
            "finished": None,
            "in_dir": str(self.in_dir.resolve()),
            "workers": None if self.scheduler else workers,  # the cluster's
            "scheduler": self.scheduler,
            "format": self.fmt,
            "accounts": len(batch.account_ids),
            "inputs": inputs,
            "settings": key.settings,
            "key": asdict(key),
            "outputs": finals,  # earlier final tables stay trusted until replaced
        }


def solve_batch(
    batch: BatchInput,
    sink: Sink,
    *,
    done: set[str],
    workers: int,
    scheduler: str | None,
    progress: bool,
) -> int:
    """Write every account of ``batch`` not in ``done`` to ``sink``.

    The accounts that failed the up-front checks get their ``invalid_input``
    rows; the others are solved in chunks, each stored as soon as it
    finishes. Returns how many were solved.
    """
    done = done | _store_invalid(batch, sink, done)
    todo = len(set(batch.account_ids) - done)
    logger.info(
        "%d accounts: %d to solve, %d already committed; %s",
        len(batch.account_ids),
        todo,
        len(batch.account_ids) - todo,
        f"on {scheduler}" if scheduler else f"{workers} worker(s)",
    )
    size = max(1, min(MAX_CHUNK, math.ceil(todo / (workers * 4))))
    jobs = batch.jobs(skip=done)
    chunks = iter(lambda: list(islice(jobs, size)), [])
    bar = Progress(todo, show=progress)
    try:
        if scheduler is None and workers == 1:
            for chunk in chunks:
                _commit(sink, bar, solve_chunk(batch.market, chunk))
            return todo
        with _pool(batch.market, workers, scheduler) as (submit, slots):
            pending: set[Future[ChunkResult]] = set()
            for chunk in chunks:
                pending.add(submit(chunk))
                if len(pending) >= IN_FLIGHT_PER_WORKER * slots:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        _commit(sink, bar, future.result())
            for future in wait(pending).done:
                _commit(sink, bar, future.result())
    finally:
        bar.close()
    return todo


def _store_invalid(batch: BatchInput, store: Sink, done: set[str]) -> set[str]:
    """Commit the summary rows of accounts that failed the up-front checks.

    Returns the accounts it committed.
    """
    as_of, households = batch.market.as_of, batch.households
    rows = [
        unsolved(aid, Status.INVALID_INPUT, text, 0.0, as_of, households.get(aid))
        for aid, text in batch.invalid.items()
        if aid not in done
    ]
    if rows:
        store.write(pd.DataFrame(rows, columns=list(SUMMARY_FIELDS)), empty_trades())
    return {str(row["account_id"]) for row in rows}


def _commit(store: Sink, bar: Progress, result: ChunkResult) -> None:
    """Write a finished chunk and count it."""
    summary, trades = result
    store.write(summary, trades)
    bar.add(summary)


@contextmanager
def _pool(
    market: Market, workers: int, scheduler: str | None
) -> Iterator[tuple[Submit, int]]:
    """Yield a function that submits a chunk, and how many chunks run at once.

    Each worker receives the market once: a local worker as its pool
    initializer's argument, a Dask worker as data scattered to every worker.
    Chunks then travel without it.
    """
    if scheduler is None:
        # fresh worker processes: forking a parent whose libraries already run
        # threads (BLAS, a solver, a Dask client) can leave workers spinning
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=hold,
            initargs=(market,),
        ) as pool:
            yield (lambda chunk: pool.submit(solve_held, chunk)), workers
        return
    from distributed import Client

    with Client(scheduler) as client:
        shared = client.scatter(market, broadcast=True, hash=False)
        threads = sum(client.nthreads().values())
        logger.info("running on %s: %d worker thread(s)", scheduler, threads)
        executor: Executor = client.get_executor(pure=False)  # no chunk hashing

        def submit(chunk: list[Job]) -> Future[ChunkResult]:
            return executor.submit(solve_chunk, shared, chunk)

        yield submit, max(threads, 1)
