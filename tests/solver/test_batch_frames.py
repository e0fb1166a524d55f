"""The batch from DataFrames gives what the folder batch gives, and the risk tables.

``rebalance_tables`` runs the checks and solves of ``rebalance_batch`` on
frames: the same summary, trades and problems, bad rows included. The risk
model round-trips through its tables, and a full ``covariance`` table
computed independently as B F B' + D gives the orders of the factor tables.
"""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import solver
from models import CovarianceRiskModel, FactorRiskModel, InputError
from solver.batch import RunConfig, TablesResult, rebalance_batch, rebalance_tables
from solver.batch.cli import main
from solver.batch.engine import ExitCode
from tests.conftest import RTOL_OBJECTIVE
from tests.solver.bad_tables import writable
from tests.solver.batch_data import AS_OF, batch_tables, save

CONFIG = RunConfig(as_of=AS_OF, max_turnover=0.2)
FACTOR_TABLES = ("factor_loadings", "factor_covariance", "specific_risk")
ORDER_COLUMNS = ["account_id", "asset", "side", "lot_id", "quantity"]
ATOL_COVARIANCE = 1e-12  # the same matrix rebuilt, in annual variance units


def _tables() -> dict[str, pd.DataFrame]:
    """Six accounts on eight assets, two factors: fast, and every account trades."""
    return batch_tables(n_accounts=6, n_assets=8, n_holdings=5, n_factors=2)


def _with_bad_rows() -> dict[str, pd.DataFrame]:
    """The small batch with a bad cell in each of three accounts, and restrictions.

    ``B001``: cash is text. ``B002``: a lot's quantity is negative. ``B003``:
    a restriction on an asset without a price. ``B000`` has a valid
    restriction and is solved with it.
    """
    tables = _tables()
    accounts = tables["accounts"].astype({"cash": object})
    accounts.loc[accounts["account_id"] == "B001", "cash"] = "abc"
    lots = tables["lots"].copy()
    lots.loc[lots.index[lots["account_id"] == "B002"][0], "quantity"] = -5.0
    held = lots.loc[lots["account_id"] == "B000", "asset"].iloc[0]
    restrictions = pd.DataFrame(
        {
            "account_id": ["B000", "B003"],
            "asset": [held, "ZZZ"],
            "rule": ["no_sell", "no_buy"],
        }
    )
    return {**tables, "accounts": accounts, "lots": lots, "restrictions": restrictions}


def _folder(
    tables: dict[str, pd.DataFrame], work: Path, fmt: str = "parquet"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run the folder batch on ``tables``; return its summary, trades and problems."""
    in_dir, out_dir = work / "in", work / "out"
    save(in_dir, {name: writable(frame) for name, frame in tables.items()}, fmt=fmt)
    report = rebalance_batch(in_dir, out_dir, config=CONFIG, workers=1)
    summary = pd.read_parquet(out_dir / "summary.parquet")
    trades = pd.read_parquet(out_dir / "trades.parquet")
    return summary, trades, report.problems


def _without_timings(summary: pd.DataFrame) -> pd.DataFrame:
    return summary.drop(columns="solve_seconds")


def _dense_covariance(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the ``covariance`` table B F B' + diag(D), computed with numpy."""
    loadings = tables["factor_loadings"].set_index("asset")
    F = tables["factor_covariance"].set_index("factor").loc[loadings.columns]
    D = tables["specific_risk"].set_index("asset")["variance"].loc[loadings.index]
    B = loadings.to_numpy(dtype=float)
    sigma = B @ F[loadings.columns].to_numpy(dtype=float) @ B.T + np.diag(D)
    assets = list(loadings.index)
    return pd.DataFrame(sigma, columns=assets).assign(asset=assets)[["asset", *assets]]


def _covariance_batch(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return ``tables`` with the factor tables replaced by ``covariance``."""
    rest = {name: t for name, t in tables.items() if name not in FACTOR_TABLES}
    return {**rest, "covariance": _dense_covariance(tables)}


def test_frames_and_folder_give_the_same_summary_trades_and_problems(tmp_path):
    tables = _with_bad_rows()
    result = rebalance_tables(tables, CONFIG, workers=1)
    summary, trades, problems = _folder(tables, tmp_path)
    status = result.summary.set_index("account_id")["status"]
    assert (status[["B001", "B002", "B003"]] == "invalid_input").all()
    assert (status[["B000", "B004", "B005"]] == "optimal").all()
    assert set(result.problems["account_id"]) == {"B001", "B002", "B003"}
    assert len(result.trades) > 0
    pd.testing.assert_frame_equal(
        _without_timings(result.summary), _without_timings(summary)
    )
    pd.testing.assert_frame_equal(result.trades, trades)
    pd.testing.assert_frame_equal(result.problems, problems)
    assert result.as_of == AS_OF
    assert not result.all_answered


def test_frames_are_read_as_given_and_left_unchanged():
    tables = _with_bad_rows()
    copies = {name: frame.copy() for name, frame in tables.items()}
    indexed = {**tables, "prices": tables["prices"].set_index("asset", drop=False)}
    result = rebalance_tables(indexed, CONFIG, workers=1)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, copies[name])
    expected = rebalance_tables(tables, CONFIG, workers=1)
    pd.testing.assert_frame_equal(
        _without_timings(result.summary), _without_timings(expected.summary)
    )


def test_frames_leave_no_temporary_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rebalance_tables(_tables(), CONFIG, workers=1)
    broken = {**_tables(), "accounts": _tables()["accounts"].drop(columns="cash")}
    with pytest.raises(InputError, match="missing column") as err:
        rebalance_tables(broken, CONFIG, workers=1)  # stops after splitting the lots
    assert err.value.field == "cash"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "table", ["accounts", "targets", "prices", "lots", "factor_covariance"]
)
def test_frames_name_a_missing_required_table(table):
    tables = _tables()
    del tables[table]
    with pytest.raises(InputError, match=f"no table '{table}'") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    assert err.value.field == table


@pytest.mark.parametrize("table", ["accounts", "targets", "prices", "specific_risk"])
def test_frames_name_an_empty_required_table(table):
    tables = _tables()
    tables[table] = tables[table].iloc[0:0]
    with pytest.raises(InputError, match=f"table '{table}' has no rows") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    assert err.value.field == table


def test_frames_solve_cash_only_accounts_from_an_empty_lots_table():
    tables = _tables()
    tables["lots"] = tables["lots"].iloc[0:0]
    result = rebalance_tables(tables, CONFIG, workers=1)
    assert (result.summary["status"] == "optimal").all()
    assert set(result.trades["side"]) == {"buy"}


def test_frames_reject_an_unknown_table_name():
    tables = {**_tables(), "restriction": pd.DataFrame({"account_id": ["B000"]})}
    with pytest.raises(InputError, match="unknown table 'restriction'") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    assert err.value.field == "restriction"


def test_package_exports_the_frames_batch():
    assert solver.rebalance_tables is rebalance_tables
    assert solver.TablesResult is TablesResult


def test_factor_model_round_trips_through_its_tables():
    tables = _tables()
    model = FactorRiskModel.from_tables(
        *(tables[name] for name in FACTOR_TABLES)  # positional: the DATA.md order
    )
    out = model.to_tables()
    assert list(out) == list(FACTOR_TABLES)
    for name in FACTOR_TABLES:
        # the fixture's loadings keep a columns name; tables read from files have none
        pd.testing.assert_frame_equal(out[name], tables[name], check_names=False)
    rebuilt = FactorRiskModel.from_tables(**out)
    universe = pd.Index(["A0006", "A0001", "A0003"])
    dense = []
    for risk in (model, rebuilt):
        root = risk.root(universe)
        dense.append(root.G.T @ root.G + np.diag(root.d))
    np.testing.assert_allclose(dense[1], dense[0], rtol=0, atol=ATOL_COVARIANCE)


def test_batch_runs_on_a_model_s_tables():
    tables = _tables()
    model = FactorRiskModel.from_tables(*(tables[name] for name in FACTOR_TABLES))
    rest = {name: t for name, t in tables.items() if name not in FACTOR_TABLES}
    result = rebalance_tables({**rest, **model.to_tables()}, CONFIG, workers=1)
    expected = rebalance_tables(tables, CONFIG, workers=1)
    assert (result.summary["status"] == "optimal").all()
    pd.testing.assert_frame_equal(result.trades, expected.trades)


def test_covariance_model_round_trips_through_its_table():
    covariance = _dense_covariance(_tables())
    model = CovarianceRiskModel.from_tables(covariance)
    out = model.to_tables()
    assert list(out) == ["covariance"]
    pd.testing.assert_frame_equal(out["covariance"], covariance)
    rebuilt = CovarianceRiskModel.from_tables(**out)
    pd.testing.assert_frame_equal(rebuilt.covariance, model.covariance)


def test_covariance_table_gives_the_orders_of_the_factor_tables(tmp_path):
    tables = _tables()
    factor = rebalance_tables(tables, CONFIG, workers=1)
    dense = _covariance_batch(tables)
    result = rebalance_tables(dense, CONFIG, workers=1)
    assert (factor.summary["status"] == "optimal").all()
    pd.testing.assert_series_equal(result.summary["status"], factor.summary["status"])
    pd.testing.assert_frame_equal(
        result.trades[ORDER_COLUMNS], factor.trades[ORDER_COLUMNS]
    )
    for column in ("tracking_error_before", "tracking_error_after"):
        np.testing.assert_allclose(
            result.summary[column], factor.summary[column], rtol=RTOL_OBJECTIVE
        )
    summary, trades, _ = _folder(dense, tmp_path, fmt="csv")  # the file form
    pd.testing.assert_frame_equal(
        _without_timings(summary), _without_timings(result.summary)
    )
    pd.testing.assert_frame_equal(trades, result.trades)


def _run_cli(tables: dict[str, pd.DataFrame], work: Path) -> int:
    save(work / "in", tables)
    args = ["batch", str(work / "in"), "--out", str(work / "out"), "--workers", "1"]
    return main([*args, "--as-of", AS_OF, "--no-progress"])


def test_both_risk_models_are_an_error_naming_the_tables(tmp_path):
    tables = {**_tables(), "covariance": _dense_covariance(_tables())}
    with pytest.raises(InputError, match="two risk models") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    for name in ("covariance", *FACTOR_TABLES):
        assert name in str(err.value)
    with pytest.raises(InputError, match="two risk models"):
        _folder(tables, tmp_path / "folder")
    assert _run_cli(tables, tmp_path / "cli") == ExitCode.CANNOT_RUN


def test_no_risk_model_is_an_error_naming_the_tables(tmp_path):
    tables = {n: t for n, t in _tables().items() if n not in FACTOR_TABLES}
    with pytest.raises(InputError, match="no risk model") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    for name in ("covariance", *FACTOR_TABLES):
        assert name in str(err.value)
    assert _run_cli(tables, tmp_path) == ExitCode.CANNOT_RUN


def test_a_partial_factor_model_names_the_missing_table():
    tables = _tables()
    del tables["specific_risk"]
    with pytest.raises(InputError, match="no table 'specific_risk'"):
        rebalance_tables(tables, CONFIG, workers=1)


def _spoil(covariance: pd.DataFrame, how: str) -> tuple[pd.DataFrame, str]:
    """Return a bad copy of a ``covariance`` table, and the asset it names."""
    out = covariance.copy()
    if how == "not a finite number":
        out.loc[2, "A0005"] = np.nan
        return out, "A0002"
    if how == "not symmetric":
        out.loc[1, "A0004"] += 0.01
        return out, "A0001"
    if how == "negative variance":
        out.loc[3, "A0003"] = -0.01
        return out, "A0003"
    # indefinite: a correlation of 3 between A0000 and A0006, other rows intact
    out.loc[0, "A0006"] = out.loc[6, "A0000"] = 3 * np.sqrt(
        out.loc[0, "A0000"] * out.loc[6, "A0006"]
    )
    return out, "A0000"


@pytest.mark.parametrize(
    "how",
    [
        "not a finite number",
        "not symmetric",
        "negative variance",
        "not positive semidefinite",
    ],
)
def test_a_bad_covariance_entry_is_an_error_naming_its_asset(how):
    tables = _covariance_batch(_tables())
    tables["covariance"], asset = _spoil(tables["covariance"], how)
    with pytest.raises(InputError, match=how) as err:
        rebalance_tables(tables, CONFIG, workers=1)
    assert err.value.field == "covariance"
    if how != "not positive semidefinite":
        assert err.value.asset == asset
    else:  # the asset the offending eigenvector weighs most: one of the pair
        assert err.value.asset in {"A0000", "A0006"}


def test_a_covariance_table_without_an_asset_s_column_names_it():
    tables = _covariance_batch(_tables())
    tables["covariance"] = tables["covariance"].drop(columns="A0004")
    with pytest.raises(InputError, match="no column for this asset") as err:
        rebalance_tables(tables, CONFIG, workers=1)
    assert (err.value.asset, err.value.field) == ("A0004", "covariance")


@pytest.mark.parametrize(("scale", "says"), [(1e5, "not of prices"), (1 / 252, "252")])
def test_an_implausible_risk_scale_is_logged_once_and_the_batch_runs(
    scale: float, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    tables = _tables()
    covariance = _dense_covariance(tables)
    scaled = covariance.set_index("asset") * scale
    tables = {k: v for k, v in tables.items() if k not in FACTOR_TABLES}
    tables["covariance"] = scaled.reset_index()
    with caplog.at_level("WARNING"):
        result = rebalance_tables(tables, CONFIG, workers=1)
    warned = [r for r in caplog.records if says in r.getMessage()]
    assert len(warned) == 1
    assert result.all_answered  # the accounts are solved, not failed
