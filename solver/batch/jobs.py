"""A batch's input as one shared market and a stream of account jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models import (
    Account,
    CovarianceRiskModel,
    FactorRiskModel,
    Market,
    Restrictions,
    RiskModel,
)
from models.account import parse_dates
from models.errors import InputError, RebalanceError
from models.risk_scale import model_volatility, scale_problem
from solver.api import rebalance
from solver.batch.config import RunConfig
from solver.batch.household_checks import household_ids
from solver.batch.shards import LotShards, bucket_of, split_frame, split_lots
from solver.batch.tables import (
    COVARIANCE,
    OPTIONAL_TABLES,
    frame_tables,
    read_frame,
    read_path,
    require_rows,
    table_files,
)
from solver.batch.validate import describe, fatal, find_problems, invalid_accounts
from solver.result import SUMMARY_FIELDS, Status, empty_trades

logger = logging.getLogger(__name__)
Span = tuple[int, int]  # first and past-the-last row of an account


@dataclass(frozen=True)
class AccountJob:
    """Everything one account's solve needs besides the shared market."""

    account_id: str
    cash: float
    lots: pd.DataFrame
    targets: pd.Series
    restrictions: pd.DataFrame | None
    recent_trades: pd.DataFrame | None
    config: RunConfig
    last_rebalance: pd.Timestamp | None = None
    cash_flow: float = 0.0  # money: > 0 a deposit, < 0 a withdrawal
    account_type: str = "taxable"
    household_id: str | None = None


@dataclass(frozen=True)
class HouseholdJob:
    """The accounts of one household, solved together (``solver.household``)."""

    household_id: str
    members: tuple[AccountJob, ...]


@dataclass(frozen=True)
class BatchInput:
    """The validated tables of a batch, the shared market and the problems.

    ``tables`` holds every table but ``lots``, which stays on disk in shards.
    """

    tables: dict[str, pd.DataFrame]
    lots: LotShards
    market: Market
    config: RunConfig
    problems: pd.DataFrame  # validate.PROBLEM_COLUMNS
    invalid: dict[str, str]  # account_id -> message

    @property
    def households(self) -> dict[str, str]:
        """The household of each account that has one."""
        accounts = self.tables["accounts"].drop_duplicates("account_id")
        hids = household_ids(accounts)
        return {
            str(aid): str(hid)
            for aid, hid in zip(accounts["account_id"], hids, strict=True)
            if isinstance(hid, str)
        }

    @property
    def account_ids(self) -> list[str]:
        """Every account of the input, in input order, each once."""
        return list(dict.fromkeys(self.tables["accounts"]["account_id"].astype(str)))

    def jobs(self, skip: set[str]) -> Iterator[AccountJob | HouseholdJob]:
        """Yield a job per account, or per household, not in ``skip``.

        A household's job comes once the shard holding its last account is
        read (its accounts' lots may sit in different shards); its accounts
        are in the order of the ``accounts`` table's rows, whatever the
        shards (the first row gives the household's settings).
        """
        waiting: dict[str, list[AccountJob]] = {}
        sizes = self.household_sizes(skip)
        row = {aid: k for k, aid in enumerate(self.account_ids)}
        for job in self.account_jobs(skip):
            hid = job.household_id
            if hid is None:
                yield job
                continue
            waiting.setdefault(hid, []).append(job)
            if len(waiting[hid]) == sizes[hid]:
                members = sorted(waiting.pop(hid), key=lambda m: row[m.account_id])
                yield HouseholdJob(hid, tuple(members))

    def household_sizes(self, skip: set[str]) -> dict[str, int]:
        """Return how many accounts each household still to solve has."""
        accounts = self.tables["accounts"].drop_duplicates("account_id")
        todo = accounts[~accounts["account_id"].isin(skip | set(self.invalid))]
        counts = household_ids(todo).dropna().value_counts()
        return {str(hid): int(n) for hid, n in counts.items()}

    def account_jobs(self, skip: set[str]) -> Iterator[AccountJob]:
        """Yield a job for each valid account not in ``skip``, shard by shard."""
        t = self.tables
        accounts = t["accounts"].drop_duplicates("account_id")
        bucket = bucket_of(accounts["account_id"], self.lots.buckets)
        targets = {  # unreadable weights were reported up front
            str(m): pd.to_numeric(g.set_index("asset")["weight"], errors="coerce")
            for m, g in t["targets"].groupby("model_id")
        }
        groups = {name: _by_account(t.get(name)) for name in OPTIONAL_TABLES}
        done = skip | set(self.invalid)
        last = pd.Series(pd.NaT, index=accounts.index)  # validated up front
        if "last_rebalance" in accounts:
            last = parse_dates(accounts["last_rebalance"])
        accounts = accounts.assign(
            last_rebalance=last, household_id=household_ids(accounts)
        )
        for shard in range(self.lots.buckets):
            members = accounts[(bucket == shard) & ~accounts["account_id"].isin(done)]
            if members.empty:
                continue
            lots, spans = _by_account_rows(self.lots.read(shard))
            for row in members.to_dict("records"):
                aid = str(row["account_id"])
                lo, hi = spans.get(aid, (0, 0))
                yield AccountJob(
                    account_id=aid,
                    cash=row["cash"],
                    cash_flow=_flow(row.get("cash_flow")),
                    account_type=_text(row.get("account_type")) or "taxable",
                    household_id=row["household_id"]
                    if isinstance(row["household_id"], str)
                    else None,
                    lots=lots.iloc[lo:hi],
                    targets=targets[str(row["model_id"])],
                    restrictions=groups["restrictions"].get(aid),
                    recent_trades=groups["recent_trades"].get(aid),
                    config=self.config.for_account(row),
                    last_rebalance=None
                    if pd.isna(row["last_rebalance"])
                    else pd.Timestamp(row["last_rebalance"]),
                )


def load_batch(in_dir: Path, config: RunConfig, work_dir: Path) -> BatchInput:
    """Read and check the tables of ``in_dir``; build the shared market once.

    The lots are split into shards under ``work_dir``.

    Raises
    ------
    InputError
        When the batch cannot run at all: a missing table or column, a
        required table without rows, both risk models or neither, or a risk
        model that is not valid. Account-level problems do not raise: they
        are listed in ``problems`` and the accounts marked invalid.
    """
    tables = {
        name: read_path(path, name)
        for name, path in table_files(in_dir).items()
        if name != "lots"
    }
    for name, table in tables.items():
        require_rows(table, name)
    return _check_batch(tables, lambda: split_lots(in_dir, work_dir), config)


def load_frames(
    frames: Mapping[str, pd.DataFrame], config: RunConfig, work_dir: Path
) -> BatchInput:
    """Check the tables given as DataFrames, as ``load_batch`` checks files.

    Each frame is read as if it had been written to ``NAME.parquet``
    (``tables.read_frame``); the lots are split into shards under
    ``work_dir``.

    Raises
    ------
    InputError
        As ``load_batch``; also for an unknown table name, a value that is
        not a DataFrame, or a required table without rows
        (``tables.frame_tables``).
    """
    names = frame_tables(frames)
    tables = {name: read_frame(frames[name], name) for name in names if name != "lots"}
    return _check_batch(tables, lambda: split_frame(frames["lots"], work_dir), config)


def _check_batch(
    tables: dict[str, pd.DataFrame],
    split: Callable[[], LotShards],
    config: RunConfig,
) -> BatchInput:
    """Build the risk model, split the lots (``split``) and list the problems."""
    if config.as_of is None:
        raise ValueError("resolve the config's as_of before loading a batch")
    as_of = pd.Timestamp(config.as_of)
    risk, risk_assets = _risk_model(tables)
    volatility = model_volatility(risk)
    scale = scale_problem(volatility.to_numpy(), volatility.index)
    if scale is not None:  # said once here; the accounts do not repeat it
        logger.warning("%s", scale)
    lots = split()
    problems = find_problems(tables, lots, as_of.normalize(), risk_assets)
    stops = fatal(problems).to_dict("records")
    if stops:
        more = "".join(f"; {describe(row)}" for row in stops[1:])
        raise InputError(f"{stops[0]['problem']}{more}", field=str(stops[0]["field"]))
    market = Market(as_of=as_of, prices=tables["prices"], risk_model=risk)
    invalid = invalid_accounts(problems, tables["accounts"])
    return BatchInput(tables, lots, market, config, problems, invalid)


def _risk_model(tables: dict[str, pd.DataFrame]) -> tuple[RiskModel, pd.Index]:
    """Return the batch's risk model and the assets it covers in full."""
    if COVARIANCE in tables:
        covariance = CovarianceRiskModel.from_tables(tables[COVARIANCE])
        return covariance, covariance.assets
    factor = FactorRiskModel.from_tables(
        tables["factor_loadings"], tables["factor_covariance"], tables["specific_risk"]
    )
    return factor, factor.assets


def _text(value: object) -> str | None:
    """Return an optional text cell, None when empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _flow(value: float | None) -> float:
    """Return an ``accounts.cash_flow`` cell as money; empty means none."""
    flow = float("nan") if value is None else float(value)
    return flow if np.isfinite(flow) else 0.0  # unreadable ones were reported


def _by_account_rows(lots: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Span]]:
    """Return the lots grouped by account, and each account's row span.

    Each account's rows keep their input order; rows without an account
    belong to none. Accounts are numbered once (a hash of each distinct id)
    and the rows ordered by number: no sort of the text.
    """
    codes, ids = pd.factorize(lots["account_id"])  # a missing id: code -1
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes + 1, minlength=len(ids) + 1)
    ends = np.cumsum(counts)
    spans = {
        str(aid): (int(end - count), int(end))
        for aid, count, end in zip(ids, counts[1:], ends[1:], strict=True)
    }
    return lots.drop(columns="account_id").take(order), spans


def _by_account(frame: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Split an optional per-account table by account."""
    if frame is None:
        return {}
    return {str(aid): group for aid, group in frame.groupby("account_id")}


def job_account(job: AccountJob) -> Account:
    """Return a job's account (its tax rates from its settings)."""
    return Account(
        job.account_id,
        job.cash,
        job.lots,
        recent_trades=job.recent_trades,
        tax_rate_short=job.config.tax_rate_short,
        tax_rate_long=job.config.tax_rate_long,
        cash_flow=job.cash_flow,
        account_type=job.account_type,
    )


def solve_job(market: Market, job: AccountJob) -> tuple[pd.Series, pd.DataFrame]:
    """Solve one account; map our errors to ``invalid_input`` or ``failed``."""
    start = time.perf_counter()
    config = job.config
    try:
        account = job_account(job)
        constraints = config.constraints()
        if job.restrictions is not None:
            constraints = (*constraints, Restrictions(job.restrictions))
        result = rebalance(
            account,
            targets=job.targets,
            market=market,
            objective=config.objective(),
            constraints=constraints,
            options=config.options(),
            trigger=config.trigger(),
            last_rebalance=job.last_rebalance,
        )
    except InputError as exc:
        status, message = Status.INVALID_INPUT, str(exc)
    except RebalanceError as exc:
        status, message = Status.FAILED, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # an unforeseen error in one account never stops a batch
        status, message = Status.FAILED, f"internal error: {type(exc).__name__}: {exc}"
    else:
        return result.summary, result.trades
    seconds = time.perf_counter() - start
    hid = job.household_id
    row = unsolved(job.account_id, status, message, seconds, market.as_of, hid)
    return row, empty_trades()


def unsolved(
    account_id: str,
    status: Status,
    message: str,
    seconds: float,
    as_of: pd.Timestamp,
    household_id: str | None = None,
) -> pd.Series:
    """Return the summary row of an account that has no orders."""
    row: dict[str, object] = dict.fromkeys(SUMMARY_FIELDS, np.nan)
    row.update(
        account_id=account_id,
        status=str(status),
        message=message,
        solve_seconds=seconds,
        solver="",
        as_of=as_of.date().isoformat(),
        household_id=household_id or "",
    )
    return pd.Series(row, name=account_id)
