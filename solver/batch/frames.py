"""The batch from Python: the docs/DATA.md tables as DataFrames in and out.

The tables are checked and the accounts solved by the same code as a
folder's batch (``jobs.load_frames``, ``engine.solve_batch``); only the
ends differ: frames instead of files, and no output directory, manifest or
resume. The lots are split by account into a temporary directory, removed
when the call returns, however it ends.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from solver.batch.config import RunConfig
from solver.batch.engine import solve_batch
from solver.batch.jobs import load_frames
from solver.batch.parts import TRADE_SCHEMA
from solver.result import ANSWERED, SUMMARY_FIELDS, TRADE_COLUMNS, empty_trades

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TablesResult:
    """What ``rebalance_tables`` produced: the docs/DATA.md output tables.

    Attributes
    ----------
    summary : pd.DataFrame
        One row per account of the ``accounts`` table, in its order, each
        once, unsolved ones included (docs/DATA.md ``summary``).
    trades : pd.DataFrame
        The orders (docs/DATA.md ``trades``), grouped by account in the
        order of ``summary``.
    problems : pd.DataFrame
        Every problem found in the inputs before solving, possibly none
        (docs/DATA.md ``problems.csv`` columns).
    as_of : str
        The trade date the accounts were solved for.
    seconds : float
        Time the call took.
    """

    summary: pd.DataFrame
    trades: pd.DataFrame
    problems: pd.DataFrame
    as_of: str
    seconds: float

    @property
    def all_answered(self) -> bool:
        """Whether every account has an answer (the batch's exit status 0)."""
        return bool(self.summary["status"].isin(ANSWERED).all())


def rebalance_tables(
    tables: Mapping[str, pd.DataFrame],
    config: RunConfig | None = None,
    *,
    workers: int | None = None,
) -> TablesResult:
    """Rebalance every account of a batch given as DataFrames.

    The same work as ``rebalance_batch`` on a folder holding these tables:
    the same checks, problems, statuses and orders, without any files.

    Parameters
    ----------
    tables : mapping of str to pd.DataFrame
        The docs/DATA.md input tables by name, each with the columns of its
        file (a frame's index is ignored): ``accounts``, ``lots``,
        ``targets``, ``prices``, the risk model (either ``factor_loadings``,
        ``factor_covariance`` and ``specific_risk``, or ``covariance``) and
        optionally ``restrictions`` and ``recent_trades``. ``lots`` may have
        no rows (cash-only accounts); the other required tables may not.
    config : RunConfig or None
        Run-wide settings (default ``RunConfig()``); the ``accounts``
        override columns win. Without ``as_of`` the run uses today's date
        and says so.
    workers : int or None
        Processes to solve on (default: all cores); ``1`` solves in this
        process. New processes import the caller's main module, so a
        script calls this under ``if __name__ == "__main__":`` (a notebook
        need not).

    Returns
    -------
    TablesResult
        The ``summary``, ``trades`` and ``problems`` tables. A bad row never
        raises: its account is ``invalid_input`` and the problem listed.

    Raises
    ------
    InputError
        The batch cannot run at all: an unknown, missing or empty required
        table, both risk models or neither, a missing column, an invalid
        risk model or a bad setting; ``field`` names the table or setting.

    Examples
    --------
    >>> result = solver.rebalance_tables(  # doctest: +SKIP
    ...     {"accounts": accounts, "lots": lots, "targets": targets,
    ...      "prices": prices, **risk_model.to_tables()},
    ...     solver.RunConfig(as_of="2026-11-24", max_turnover=0.1),
    ... )
    >>> result.summary.groupby("status").size()  # doctest: +SKIP
    """
    start = time.perf_counter()
    config = (config or RunConfig()).check().resolved()
    workers = workers or os.cpu_count() or 1
    collected = _Collected()
    with tempfile.TemporaryDirectory(prefix="rebalance-lots-") as work:
        batch = load_frames(tables, config, Path(work))
        if len(batch.problems):
            logger.warning(
                "%d input problem(s), listed in problems", len(batch.problems)
            )
        solve_batch(
            batch,
            collected,
            done=set(),
            workers=workers,
            scheduler=None,
            progress=False,
        )
    summary, trades = collected.tables(batch.account_ids)
    return TablesResult(
        summary=summary,
        trades=trades,
        problems=batch.problems,
        as_of=str(config.as_of),
        seconds=time.perf_counter() - start,
    )


@dataclass
class _Collected:
    """The finished accounts' rows, kept in memory (an ``engine.Sink``)."""

    summaries: list[pd.DataFrame] = field(default_factory=list)
    trades: list[pd.DataFrame] = field(default_factory=list)

    def write(self, summary: pd.DataFrame, trades: pd.DataFrame) -> None:
        """Keep one chunk's summary and trades rows."""
        self.summaries.append(summary.loc[:, list(SUMMARY_FIELDS)])
        if len(trades):
            self.trades.append(trades.loc[:, list(TRADE_COLUMNS)])

    def tables(self, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return the summary and trades, accounts in ``order``.

        Each column is typed as the folder batch's Parquet files store it
        (trades with ``parts.TRADE_SCHEMA``), so the frames equal the files.
        """
        import pyarrow as pa

        rank = {aid: k for k, aid in enumerate(order)}
        summary = _sorted(self.summaries, rank, pd.DataFrame(columns=SUMMARY_FIELDS))
        trades = _sorted(self.trades, rank, empty_trades())
        as_stored: pd.DataFrame = pa.Table.from_pandas(
            summary, preserve_index=False
        ).to_pandas()
        orders: pd.DataFrame = pa.Table.from_pandas(
            trades, schema=TRADE_SCHEMA, preserve_index=False
        ).to_pandas()
        return as_stored, orders


def _sorted(
    frames: list[pd.DataFrame], rank: dict[str, int], empty: pd.DataFrame
) -> pd.DataFrame:
    """Concatenate ``frames`` and sort their rows by account (stable)."""
    if not frames:
        return empty
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(
        "account_id", key=lambda ids: ids.map(rank), kind="stable"
    ).reset_index(drop=True)
