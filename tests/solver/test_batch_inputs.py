"""A batch reads its inputs the same in either format and lists problems up front.

Identifiers are text: ``NA``, ``null`` or ``nan`` in a CSV are names, not
missing values. A table given in both formats is an error. Restrictions and
recent trades that cannot apply (unknown asset or account, a date after
``as_of``) make their account ``invalid_input`` before any solve.
"""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas._libs.parsers import STR_NA_VALUES

from models import InputError
from solver.batch.config import RunConfig
from solver.batch.engine import BatchReport, rebalance_batch
from solver.batch.tables import NA_STRINGS, find_table, read_path
from tests.solver.batch_data import AS_OF, batch_tables, save, write_batch

CONFIG = RunConfig(as_of=AS_OF)
ASSET = "A0004"  # held, and targeted by both models


def _tables() -> dict[str, pd.DataFrame]:
    return batch_tables(n_accounts=3, n_assets=6, n_holdings=3, n_factors=2)


def _run(in_dir: Path, tables: dict[str, pd.DataFrame], fmt: str) -> BatchReport:
    save(in_dir, tables, fmt=fmt)
    return rebalance_batch(in_dir, in_dir.parent / "out", config=CONFIG, workers=1)


def _status(report: BatchReport) -> pd.Series:
    status: pd.Series = report.summary.set_index("account_id")["status"]
    return status


def _problems(report_dir: Path) -> pd.DataFrame:
    return pd.read_csv(report_dir / "out" / "problems.csv", keep_default_na=False)


def _renamed(name: str) -> dict[str, pd.DataFrame]:
    """The small batch with account ``B001`` and asset ``ASSET`` called ``name``."""
    tables = _tables()
    for frame in tables.values():
        if "account_id" in frame:
            frame["account_id"] = frame["account_id"].replace("B001", name)
        if "asset" in frame:
            frame["asset"] = frame["asset"].replace(ASSET, name)
    return tables


@pytest.mark.parametrize("name", ["NA", "null", "nan", "None", "N/A"])
def test_batch_solves_na_like_ids_in_csv_as_in_parquet(tmp_path, name):
    tables = _renamed(name)
    csv = _run(tmp_path / "csv" / "in", tables, "csv")
    parquet = _run(tmp_path / "parquet" / "in", tables, "parquet")
    assert list(csv.summary["account_id"]) == ["B000", name, "B002"]
    assert set(csv.summary["status"]) == {"optimal"}
    assert not (tmp_path / "csv" / "out" / "problems.csv").exists()
    pd.testing.assert_frame_equal(
        csv.summary.drop(columns="solve_seconds"),
        parquet.summary.drop(columns="solve_seconds"),
    )


def test_batch_reports_an_empty_csv_id_as_blank(tmp_path):
    tables = _tables()
    targets = tables["targets"]
    targets.loc[targets.index[targets["model_id"] == "M1"][0], "asset"] = ""
    report = _run(tmp_path / "in", tables, "csv")
    status = _status(report)
    assert status["B001"] == "invalid_input"  # the only account of model M1
    assert (status[["B000", "B002"]] == "optimal").all()
    problems = _problems(tmp_path)
    blank = problems[(problems["model_id"] == "M1") & (problems["field"] == "asset")]
    assert len(blank) == 1
    assert "missing asset in table 'targets'" in blank["problem"].iloc[0]
    assert "got ''" in blank["problem"].iloc[0]  # the cell read as it is


def test_read_table_keeps_csv_ids_verbatim_and_numbers_missing(tmp_path):
    (tmp_path / "accounts.csv").write_text(
        "account_id,model_id,cash\n007,NA,\nnull,,NA\n"
    )
    accounts = read_path(find_table(tmp_path, "accounts", required=True), "accounts")
    assert accounts is not None
    assert list(accounts["account_id"]) == ["007", "null"]
    assert list(accounts["model_id"]) == ["NA", ""]
    assert accounts["cash"].isna().all()


def test_read_table_makes_parquet_ids_text_and_keeps_nulls_missing(tmp_path):
    table = pa.table(
        {
            "asset": pa.array([7, None, 42], pa.int64()),  # no pandas metadata
            "model_id": pa.array(["M0", None, "NA"]),
            "weight": [0.5, 0.25, 0.25],
        }
    )
    pq.write_table(table, tmp_path / "targets.parquet")
    targets = read_path(find_table(tmp_path, "targets", required=True), "targets")
    assert targets is not None
    assert targets.loc[[0, 2], "asset"].tolist() == ["7", "42"]
    assert targets.loc[[0, 2], "model_id"].tolist() == ["M0", "NA"]
    assert targets.loc[1, ["asset", "model_id"]].isna().all()  # not "None" or "nan"


def test_read_table_na_strings_are_pandas_defaults():
    assert set(NA_STRINGS) == set(STR_NA_VALUES)


@pytest.mark.parametrize("name", ["accounts", "lots", "restrictions"])
def test_batch_stops_when_a_table_is_given_in_both_formats(tmp_path, name):
    tables = _tables()
    tables["restrictions"] = pd.DataFrame(
        [{"account_id": "B000", "asset": ASSET, "rule": "no_buy"}]
    )
    save(tmp_path / "in", tables)
    tables[name].to_csv(tmp_path / "in" / f"{name}.csv", index=False)
    with pytest.raises(InputError) as caught:
        rebalance_batch(tmp_path / "in", tmp_path / "out", config=CONFIG, workers=1)
    assert caught.value.field == name
    assert f"{name}.parquet" in str(caught.value)
    assert f"{name}.csv" in str(caught.value)
    assert not list((tmp_path / "out").glob("summary.*"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("name", ["accounts", "targets", "prices"])
def test_batch_stops_on_a_required_table_with_only_a_header(tmp_path, name, fmt):
    # an empty read is an error: not a finished batch of no accounts
    tables = _tables()
    tables[name] = tables[name].iloc[:0]
    save(tmp_path / "in", tables, fmt=fmt)
    with pytest.raises(InputError, match=f"table '{name}' has no rows") as caught:
        rebalance_batch(tmp_path / "in", tmp_path / "out", config=CONFIG, workers=1)
    assert caught.value.field == name
    assert not list((tmp_path / "out").glob("summary.*"))


def test_find_table_refuses_lots_in_both_formats(tmp_path):
    (tmp_path / "lots.parquet").touch()
    (tmp_path / "lots.csv").touch()
    with pytest.raises(InputError, match="remove") as caught:
        find_table(tmp_path, "lots", required=True)
    assert caught.value.field == "lots"


def test_find_table_returns_the_one_file_or_none(tmp_path):
    assert find_table(tmp_path, "restrictions", required=False) is None
    with pytest.raises(InputError) as caught:
        find_table(tmp_path, "lots", required=True)
    assert caught.value.field == "lots"
    (tmp_path / "lots.csv").touch()
    assert find_table(tmp_path, "lots", required=True) == tmp_path / "lots.csv"


def test_batch_marks_a_restriction_on_an_unknown_asset_invalid(tmp_path):
    tables = _tables()
    tables["restrictions"] = pd.DataFrame(
        [
            {"account_id": "B001", "asset": "ZZZ", "rule": "no_buy"},
            {"account_id": "B002", "asset": ASSET, "rule": "no_sell"},
        ]
    )
    report = _run(tmp_path / "in", tables, "parquet")
    status = _status(report)
    assert status["B001"] == "invalid_input"
    assert "ZZZ" in report.summary.set_index("account_id").loc["B001", "message"]
    assert (status[["B000", "B002"]] == "optimal").all()
    problems = _problems(tmp_path)
    assert problems[["account_id", "asset", "field"]].to_numpy().tolist() == [
        ["B001", "ZZZ", "asset"]
    ]


@pytest.mark.parametrize("date", ["2026-11-25", "2027-01-01T09:30", "someday", ""])
def test_batch_marks_a_recent_trade_after_as_of_or_undated_invalid(tmp_path, date):
    tables = _tables()
    trades = [
        {"account_id": "B001", "asset": ASSET, "date": date, "side": "sell"},
        {"account_id": "B002", "asset": ASSET, "date": AS_OF, "side": "buy"},
    ]
    tables["recent_trades"] = pd.DataFrame(trades).assign(quantity=10.0)
    report = _run(tmp_path / "in", tables, "csv")
    status = _status(report)
    assert status["B001"] == "invalid_input"
    assert (status[["B000", "B002"]] == "optimal").all()
    problems = _problems(tmp_path)
    assert problems[["account_id", "asset", "field"]].to_numpy().tolist() == [
        ["B001", ASSET, "date"]
    ]


@pytest.mark.parametrize("table", ["restrictions", "recent_trades"])
def test_batch_lists_rows_of_an_account_not_in_the_accounts_table(tmp_path, table):
    tables = _tables()
    row = {"account_id": "B999", "asset": ASSET}
    if table == "restrictions":
        row |= {"rule": "no_buy"}
    else:
        row |= {"date": AS_OF, "side": "buy", "quantity": 10.0}
    tables[table] = pd.DataFrame([row])
    report = _run(tmp_path / "in", tables, "parquet")
    assert set(report.summary["status"]) == {"optimal"}
    problems = _problems(tmp_path)
    assert problems[["account_id", "field"]].to_numpy().tolist() == [
        ["B999", "account_id"]
    ]
    assert f"{table} of an account not in the accounts table" in set(
        problems["problem"]
    )


def test_batch_stops_on_a_restriction_without_an_account(tmp_path):
    tables = _tables()
    tables["restrictions"] = pd.DataFrame(
        [{"account_id": "", "asset": ASSET, "rule": "no_buy"}]
    )
    with pytest.raises(InputError, match="missing account_id") as caught:
        _run(tmp_path / "in", tables, "csv")
    assert caught.value.field == "account_id"


def test_a_csv_header_naming_one_column_twice_stops_the_run(tmp_path):
    """pandas renames the second 'price' to 'price.1', an ignored extra
    column: the run went on with the first copy. Which copy is meant is
    unknown, as for a Parquet file or a DataFrame with two 'price' columns."""
    write_batch(tmp_path, n_accounts=3, fmt="csv")
    prices = (tmp_path / "prices.csv").read_text().splitlines()
    doubled = [prices[0] + ",price", *(row + ",1.0" for row in prices[1:])]
    (tmp_path / "prices.csv").write_text("\n".join(doubled) + "\n")
    with pytest.raises(InputError, match="duplicate column 'price'") as err:
        read_path(tmp_path / "prices.csv", "prices")
    assert err.value.field == "prices"


def test_every_price_column_is_checked_up_front_and_listed(tmp_path):
    """Text in lot_size, a negative cost, a zero ADV, a negative volatility:
    each a problem named by asset and field, its holders invalid_input. Only
    the price was checked up front (the others failed each account later,
    out of problems.csv), and ADV 0 or a negative volatility were taken."""
    tables = batch_tables(n_accounts=4)
    prices = tables["prices"].astype({"lot_size": object})
    held = list(tables["lots"]["asset"].unique()[:4])
    prices["adv"], prices["volatility"] = 1e6, 0.02
    bad = {"lot_size": "100 shares", "cost_bps": -5.0, "adv": 0.0, "volatility": -0.02}
    for asset, (field, value) in zip(held, bad.items(), strict=True):
        prices.loc[prices["asset"] == asset, field] = value
    tables["prices"] = prices
    save(tmp_path / "in", tables, fmt="csv")
    (tmp_path / "in" / "config.toml").write_text(f'as_of = "{AS_OF}"\n')
    report = rebalance_batch(
        tmp_path / "in", tmp_path / "out", config=RunConfig(as_of=AS_OF), workers=1
    )
    listed = set(zip(report.problems["asset"], report.problems["field"], strict=True))
    assert set(zip(held, bad, strict=True)) <= listed
    holders = set(tables["lots"].loc[tables["lots"]["asset"].isin(held), "account_id"])
    status = report.summary.set_index("account_id")["status"]
    assert (status[sorted(holders)] == "invalid_input").all()
