"""Check a whole batch's tables up front and list every problem found.

Checks run on whole columns, not account by account, so they stay cheap for
millions of lots. Each problem names the account, asset, lot and field; an
account with any problem is reported ``invalid_input`` and not solved. The
solve of each account still validates again, so nothing depends on these
checks being complete.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from models.account import (
    LOT_COLUMNS,
    RECENT_TRADE_COLUMNS,
    TRADE_SIDES,
    parse_dates,
)
from models.market import NUMERIC_COLUMNS, bad_numbers, number_rule
from models.rules import RESTRICTION_RULES
from models.snapshot import CASH, TARGET_SUM_TOLERANCE
from solver.batch.config import ACCOUNT_OVERRIDES
from solver.batch.household_checks import (
    Problem,
    household_problems,
    spread_to_households,
)
from solver.batch.shards import map_ahead

PROBLEM_COLUMNS = ("account_id", "model_id", "asset", "lot_id", "field", "problem")
ACCOUNT_COLUMNS = ("account_id", "model_id", "cash")
TARGET_COLUMNS = ("model_id", "asset", "weight")

IDENTIFIERS = {  # identifier columns that must hold a non-blank value
    "accounts": ("account_id", "model_id"),
    "lots": ("account_id", "asset", "lot_id"),
    "targets": ("model_id", "asset"),
    "prices": ("asset",),
    "restrictions": ("account_id", "asset"),
    "recent_trades": ("account_id", "asset"),
}
CHECK_THREADS = 2  # lot pieces checked at once (their kernels release the GIL)
OPTIONAL = ("restrictions", "recent_trades")  # per-account tables besides lots
FATAL = (  # problems that stop the whole batch, by how their text starts
    "missing column",
    "missing account_id in table",  # a row no account can be named for
)


def _rows(frame: pd.DataFrame, *columns: str) -> Iterator[tuple[str, ...]]:
    """Yield the given columns of each row as strings."""
    yield from zip(*(frame[c].astype(str) for c in columns), strict=True)


def find_problems(
    tables: dict[str, pd.DataFrame],
    lots: Iterable[pd.DataFrame],
    as_of: pd.Timestamp,
    risk_assets: pd.Index,
) -> pd.DataFrame:
    """Return one row per problem (``PROBLEM_COLUMNS``), possibly none.

    ``lots`` yields the lots table in pieces that each hold whole accounts.
    """
    rows = list(_columns(tables))
    if not rows:
        usable = _usable_assets(tables["prices"], risk_assets)
        rows += list(_accounts(tables["accounts"], tables["targets"]))
        rows += list(_prices(tables["prices"], tables["targets"], usable))
        rows += list(_targets(tables["targets"]))
        rows += list(_optional(tables, as_of))
        for table in ("accounts", "targets", "prices", *OPTIONAL):
            if table in tables:
                rows += list(_identifiers(tables[table], table))
        # the accounts hashed once for every piece: ``isin`` would convert them
        # all per piece, a cost of accounts times pieces
        known = pd.Index(tables["accounts"]["account_id"].unique())
        known.get_indexer(known[:1])  # its hash table built before threads share it

        def check(piece: pd.DataFrame) -> tuple[list[Problem], bool]:
            """Return a piece's problems, and whether a column is missing."""
            missing = list(_columns({"lots": piece}))
            if missing:
                return missing, True
            found = list(_identifiers(piece, "lots"))
            return found + list(_lots(piece, known, as_of, usable)), False

        for found, stop in map_ahead(check, iter(lots), CHECK_THREADS):
            rows += found
            if stop:
                break
    return pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS))


def _columns(tables: dict[str, pd.DataFrame]) -> Iterator[Problem]:
    """Check the required columns of every table."""
    required = {
        "accounts": ACCOUNT_COLUMNS,
        "lots": ("account_id", *LOT_COLUMNS),  # checked on the first shard
        "targets": TARGET_COLUMNS,
        "prices": ("asset", "price"),
        "restrictions": ("account_id", "asset", "rule"),
        "recent_trades": ("account_id", *RECENT_TRADE_COLUMNS),
    }
    for table, columns in required.items():
        frame = tables.get(table)
        for column in columns:
            if frame is not None and column not in frame:
                yield (
                    None,
                    None,
                    None,
                    None,
                    column,
                    f"missing column in table {table!r}",
                )


def fatal(problems: pd.DataFrame) -> pd.DataFrame:
    """Return the problems that stop the batch (``FATAL``)."""
    stops = problems["problem"].astype(str).str.startswith(FATAL)
    return problems[stops.to_numpy()]


def _blank(values: pd.Series) -> np.ndarray:
    """Whether each identifier is missing or blank."""
    text = values.astype(str).str.strip()
    blank: np.ndarray = (values.isna() | text.eq("")).to_numpy(dtype=bool)
    return blank


def _identifiers(frame: pd.DataFrame, table: str) -> Iterator[Problem]:
    """Name every row whose identifier is missing or blank.

    Such a row belongs to no account or model: a missing ``account_id`` stops
    the batch (``FATAL``: some account's lot, restriction or recent trade
    would be lost); otherwise the row's account or model is invalid. Rows
    count from 0 after the header (not for ``lots``, which are read in
    pieces: their other identifiers say which lot).
    """
    for field in IDENTIFIERS[table]:
        blank = frame[_blank(frame[field])]
        for row, record in zip(blank.index, blank.to_dict("records"), strict=True):
            name = {k: _name(record.get(k)) for k in PROBLEM_COLUMNS[:4]}
            at = "" if table == "lots" else f"row {row}, "
            yield (
                name["account_id"],
                name["model_id"],
                name["asset"],
                name["lot_id"],
                field,
                f"missing {field} in table {table!r} ({at}got {record[field]!r})",
            )


def _name(value: object) -> str | None:
    """Return an identifier, or None when it is missing or blank."""
    return value if isinstance(value, str) and value.strip() else None


def _bad_number(values: pd.Series) -> np.ndarray:
    """Whether each value is missing, not a number or negative."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad: np.ndarray = ~np.isfinite(numbers) | (numbers < 0)
    return bad


def _accounts(accounts: pd.DataFrame, targets: pd.DataFrame) -> Iterator[Problem]:
    duplicated = accounts[accounts["account_id"].duplicated()]
    for aid, model in _rows(duplicated, "account_id", "model_id"):
        yield aid, model, None, None, "account_id", "duplicate account"
    bad_cash = accounts[_bad_number(accounts["cash"])]
    for aid, model, cash in _rows(bad_cash, "account_id", "model_id", "cash"):
        yield (
            aid,
            model,
            None,
            None,
            "cash",
            f"must be a finite number >= 0, got {cash}",
        )
    if "cash_flow" in accounts:  # optional; empty means no flow
        flow = pd.to_numeric(accounts["cash_flow"], errors="coerce").astype(float)
        bad_flow = accounts["cash_flow"].notna().to_numpy() & ~np.isfinite(flow)
        for aid, model, value in _rows(
            accounts[bad_flow], "account_id", "model_id", "cash_flow"
        ):
            yield aid, model, None, None, "cash_flow", f"not a finite number: {value}"
    yield from household_problems(accounts)
    unknown = accounts[~accounts["model_id"].isin(targets["model_id"])]
    for aid, model in _rows(unknown, "account_id", "model_id"):
        yield aid, model, None, None, "model_id", "no targets for this model"
    yield from _overrides(accounts)
    if "last_rebalance" in accounts:
        given = accounts["last_rebalance"].notna()
        dates = parse_dates(accounts["last_rebalance"])
        bad = accounts[(given & dates.isna()).to_numpy()]
        for aid, model, value in _rows(bad, "account_id", "model_id", "last_rebalance"):
            yield aid, model, None, None, "last_rebalance", f"not a date: {value}"


def _overrides(accounts: pd.DataFrame) -> Iterator[Problem]:
    """Check the optional override columns; an empty value means no override."""
    for field in ACCOUNT_OVERRIDES:
        if field in accounts:
            numbers = pd.to_numeric(accounts[field], errors="coerce").astype(float)
            given = accounts[field].notna().to_numpy()
            bad = accounts[given & ~np.isfinite(numbers.to_numpy())]
            for aid, model, value in _rows(bad, "account_id", "model_id", field):
                yield aid, model, None, None, field, f"not a finite number: {value}"


def _usable_assets(prices: pd.DataFrame, risk_assets: pd.Index) -> pd.Index:
    """Return assets whose price columns keep their rules, with a risk entry."""
    bad = np.zeros(len(prices), bool)
    for column in NUMERIC_COLUMNS:
        if column in prices:
            bad |= _bad_price_column(prices[column], column)
    usable: pd.Index = pd.Index(prices.loc[~bad, "asset"]).intersection(risk_assets)
    return usable


def _bad_price_column(values: pd.Series, column: str) -> np.ndarray:
    """Whether each value breaks the column's rule (``models.market``); text too."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    text = np.isnan(numbers) & values.notna().to_numpy()
    bad: np.ndarray = bad_numbers(column, numbers) | text
    return bad


def _prices(
    prices: pd.DataFrame, targets: pd.DataFrame, usable: pd.Index
) -> Iterator[Problem]:
    for column in NUMERIC_COLUMNS:
        if column not in prices:
            continue
        bad = prices[_bad_price_column(prices[column], column)]
        for asset, value in _rows(bad, "asset", column):
            yield None, None, asset, None, column, f"{number_rule(column)}, got {value}"
    aimed = targets[~targets["asset"].isin(usable) & (targets["asset"] != CASH)]
    unusable = "target asset without a usable price or risk entry"
    for model, asset in _rows(aimed, "model_id", "asset"):
        yield None, model, asset, None, "price", unusable


def _lots(
    lots: pd.DataFrame, known: pd.Index, as_of: pd.Timestamp, usable: pd.Index
) -> Iterator[Problem]:
    """Check one piece of the lots; ``known`` holds each account id once."""
    held = lots[~lots["asset"].isin(usable)].drop_duplicates(["account_id", "asset"])
    for aid, asset in _rows(held, "account_id", "asset"):
        yield (
            aid,
            None,
            asset,
            None,
            "price",
            "held asset without a usable price or risk entry",
        )
    unknown = lots[_unknown(lots["account_id"], known)]
    for (aid,) in _rows(unknown.drop_duplicates("account_id"), "account_id"):
        yield (
            aid,
            None,
            None,
            None,
            "account_id",
            "lots of an account not in the accounts table",
        )
    for field in ("quantity", "cost_basis"):
        bad = lots[_bad_number(lots[field])]
        for aid, asset, lot, value in _rows(
            bad, "account_id", "asset", "lot_id", field
        ):
            yield (
                aid,
                None,
                asset,
                lot,
                field,
                f"must be a finite number >= 0, got {value}",
            )
    acquired = parse_dates(lots["acquired"])
    unreadable = lots[acquired.isna().to_numpy()]
    for aid, asset, lot, value in _rows(
        unreadable, "account_id", "asset", "lot_id", "acquired"
    ):
        yield aid, None, asset, lot, "acquired", f"not a date: {value}"
    late = lots[(acquired > as_of).to_numpy()]
    for aid, asset, lot in _rows(late, "account_id", "asset", "lot_id"):
        yield aid, None, asset, lot, "acquired", f"after as_of {as_of.date()}"
    duplicated = lots[lots.duplicated(["account_id", "lot_id"])]
    for aid, asset, lot in _rows(duplicated, "account_id", "asset", "lot_id"):
        yield aid, None, asset, lot, "lot_id", "duplicate lot id"


def _unknown(ids: pd.Series, known: pd.Index) -> np.ndarray:
    """Whether each id is not in ``known`` (as ``isin``): each distinct id once."""
    codes, names = pd.factorize(ids, use_na_sentinel=False)
    unknown: np.ndarray = known.get_indexer(names) < 0
    return unknown[codes]


def _targets(targets: pd.DataFrame) -> Iterator[Problem]:
    bad = targets[_bad_number(targets["weight"])]
    for model, asset, weight in _rows(bad, "model_id", "asset", "weight"):
        yield (
            None,
            model,
            asset,
            None,
            "weight",
            f"must be a finite number >= 0, got {weight}",
        )
    weights = pd.to_numeric(targets["weight"], errors="coerce")
    sums = weights.groupby(targets["model_id"]).sum()
    off = sums[(sums - 1).abs() > TARGET_SUM_TOLERANCE]
    for model, total in zip(off.index.astype(str), off.to_numpy(), strict=True):
        yield None, model, None, None, "weight", f"weights sum to {total:.9g}, not 1"


def _optional(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp
) -> Iterator[Problem]:
    """Check the optional per-account tables: restrictions and recent trades."""
    accounts, prices = tables["accounts"], tables["prices"]
    restrictions = tables.get("restrictions")
    if restrictions is not None:
        yield from _strangers(restrictions, "restrictions", accounts)
        bad = ~restrictions["rule"].isin(RESTRICTION_RULES).to_numpy()
        rules = f"must be one of {RESTRICTION_RULES}, got {{}}"
        yield from _each(restrictions[bad], "rule", rules)
        assets = restrictions["asset"]
        unknown = ~assets.isin(prices["asset"]).to_numpy() & ~_blank(assets)
        text = "restriction on an asset not in the prices table"
        yield from _each(restrictions[unknown], "asset", text)
    trades = tables.get("recent_trades")
    if trades is not None:
        yield from _strangers(trades, "recent_trades", accounts)
        bad = ~trades["side"].isin(TRADE_SIDES).to_numpy()
        yield from _each(trades[bad], "side", f"must be one of {TRADE_SIDES}, got {{}}")
        dates = parse_dates(trades["date"])
        yield from _each(trades[dates.isna().to_numpy()], "date", "not a date: {}")
        late = (dates.dt.normalize() > as_of).to_numpy()
        text = f"recent trade dated {{}}, after as_of {as_of.date()}"
        yield from _each(trades[late], "date", text)


def _each(frame: pd.DataFrame, field: str, problem: str) -> Iterator[Problem]:
    """Name each row's account and asset; ``{}`` in ``problem`` is its ``field``."""
    for aid, asset, value in _rows(frame, "account_id", "asset", field):
        yield aid, None, asset, None, field, problem.format(value)


def _strangers(
    frame: pd.DataFrame, table: str, accounts: pd.DataFrame
) -> Iterator[Problem]:
    """Name each account of ``frame`` not in the accounts table (blanks aside)."""
    ids = frame["account_id"]
    unknown = frame[~ids.isin(accounts["account_id"]).to_numpy() & ~_blank(ids)]
    text = f"{table} of an account not in the accounts table"
    for (aid,) in _rows(unknown.drop_duplicates("account_id"), "account_id"):
        yield aid, None, None, None, "account_id", text


def invalid_accounts(problems: pd.DataFrame, accounts: pd.DataFrame) -> dict[str, str]:
    """Return, per invalid account, its first problem and how many there are.

    A model's problems (bad weights, unpriced target assets) make every
    account following that model invalid.
    """
    found: dict[str, list[str]] = {}
    for row in problems.to_dict("records"):
        if isinstance(row["account_id"], str):
            found.setdefault(row["account_id"], []).append(describe(row))
    by_model: dict[str, list[str]] = {}
    for row in problems[problems["account_id"].isna()].to_dict("records"):
        if isinstance(row["model_id"], str):
            by_model.setdefault(row["model_id"], []).append(describe(row))
    affected = accounts[accounts["model_id"].isin(list(by_model))]
    for aid, model in _rows(affected, "account_id", "model_id"):
        found.setdefault(aid, []).extend(by_model[model])
    spread_to_households(found, accounts)  # one bad account stops its household
    known = set(accounts["account_id"].astype(str))
    return {
        aid: items[0] + (f" (and {len(items) - 1} more)" if len(items) > 1 else "")
        for aid, items in found.items()
        if aid in known
    }


def describe(row: Mapping[Hashable, object]) -> str:
    """Format a problem as ``InputError`` does: where, then what."""
    keys = ("account_id", "model_id", "asset", "lot_id", "field")
    where = ", ".join(f"{k}={row[k]!r}" for k in keys if isinstance(row.get(k), str))
    return f"{where}: {row['problem']}"
