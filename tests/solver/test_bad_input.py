"""Regressions for the bad inputs the fuzz tests (``test_fuzz.py``) found.

Each used to end in a traceback from pandas, numpy or cvxpy, or in a wrong
answer; each must now end in a clear error or a valid result.
"""

import gc

import pandas as pd
import pytest

import solver
from models import (
    Account,
    CovarianceRiskModel,
    FactorRiskModel,
    InputError,
    LinearCost,
    Market,
    MarketImpact,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from solver.result import RebalanceResult, SolveOptions
from tests.conftest import AS_OF, account, diagonal_market, lots
from tests.solver.batch_contract import run_batch
from tests.solver.batch_data import batch_tables

OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())


def _tables() -> dict[str, pd.DataFrame]:
    return batch_tables(n_accounts=3, n_assets=6, n_holdings=3, n_factors=2)


def _run(tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> pd.DataFrame:
    """Run the batch, checking the contract; return its summary by account."""
    summary = run_batch(tables, fmt)
    assert isinstance(summary, pd.DataFrame), summary
    return summary.set_index("account_id")


def _batch_error(tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> InputError:
    """Run the batch, which must stop with ``InputError`` and write no output."""
    error = run_batch(tables, fmt)
    assert isinstance(error, InputError), error
    return error


def test_batch_marks_an_unreadable_override_invalid_and_solves_the_rest():
    # was: ValueError from float('abc') in RunConfig.for_account
    tables = _tables()
    tables["accounts"]["max_turnover"] = ["abc", None, "0.05"]
    summary = _run(tables)
    assert summary.loc["B000", "status"] == "invalid_input"
    assert "field='max_turnover'" in summary.loc["B000", "message"]
    assert (summary.loc[["B001", "B002"], "status"] == "optimal").all()


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("factor_covariance", "factor"),
        ("factor_loadings", "asset"),
        ("specific_risk", "variance"),
    ],
)
def test_batch_names_a_missing_risk_model_column(table, column):
    # was: KeyError from DataFrame.set_index in FactorRiskModel.from_tables
    tables = _tables()
    tables[table] = tables[table].drop(columns=column)
    err = _batch_error(tables)
    assert err.field == column
    assert table in str(err)


def test_batch_rejects_text_in_the_risk_model():
    # was: ValueError from astype(float) in FactorRiskModel
    tables = _tables()
    tables["factor_loadings"]["f01"] = tables["factor_loadings"]["f01"].astype(str)
    tables["factor_loadings"].loc[2, "f01"] = "1,5"
    err = _batch_error(tables, fmt="csv")
    assert err.field == "factor_loadings"
    assert err.asset == tables["factor_loadings"].loc[2, "asset"]


def test_batch_marks_the_accounts_of_an_unreadable_target_weight_invalid():
    # was: ValueError from astype(float) on the targets in BatchInput.jobs
    tables = _tables()
    targets = tables["targets"].astype({"weight": str})
    targets.loc[targets["model_id"] == "M0", "weight"] = "1,5"
    tables["targets"] = targets
    summary = _run(tables, fmt="csv")
    assert (summary.loc[["B000", "B002"], "status"] == "invalid_input").all()
    assert "field='weight'" in summary.loc["B000", "message"]
    assert summary.loc["B001", "status"] == "optimal"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_batch_with_no_lots_at_all_solves_the_cash_only_accounts(fmt):
    # was: ValueError from zip(strict=True) (CSV); "missing column" (Parquet)
    tables = _tables()
    tables["lots"] = tables["lots"].iloc[0:0]
    summary = _run(tables, fmt=fmt)
    assert (summary["status"] == "optimal").all()


@pytest.mark.parametrize("blank", [None, "", " "])
def test_batch_stops_on_an_account_row_without_an_id(blank):
    # was: solved as an all-cash account "nan", its lots left out
    tables = _tables()
    tables["accounts"] = tables["accounts"].astype({"account_id": object})
    tables["accounts"].loc[1, "account_id"] = blank
    err = _batch_error(tables)
    assert err.field == "account_id"
    assert "missing account_id in table 'accounts' (row 1" in str(err)


def test_batch_marks_an_account_with_a_lot_without_an_id_invalid():
    # was: solved, selling a lot whose id was NaN
    tables = _tables()
    tables["lots"] = tables["lots"].astype({"lot_id": object})
    tables["lots"].loc[0, "lot_id"] = None
    owner = tables["lots"].loc[0, "account_id"]
    summary = _run(tables, fmt="csv")
    assert summary.loc[owner, "status"] == "invalid_input"
    assert "missing lot_id" in summary.loc[owner, "message"]


def test_account_rejects_a_lot_without_an_id_or_asset():
    rows = lots(("X", "x1", 5.0, 10.0, "2020-01-02"))
    with pytest.raises(InputError) as err:
        Account("A1", 0.0, rows.assign(lot_id=[None]))
    assert (err.value.field, err.value.asset) == ("lot_id", "X")
    with pytest.raises(InputError) as err:
        Account("A1", 0.0, rows.assign(asset=[" "]))
    assert (err.value.field, err.value.lot_id) == ("asset", "x1")


def test_a_huge_account_in_tiny_fractional_steps_is_refused_not_capped():
    # was first a RuntimeWarning (the ladder counts 1e12 / (1e-6 * 1e-4) =
    # 1e22 steps, more than an int64 holds), then, with the count capped at
    # 2**53, an "optimal" answer buying $900,720 of X for a $5e11 target
    # (tracking error 10%): 5e17 shares are beyond exact share counts
    market = diagonal_market({"X": 1e-6, "Y": 10.0}, {"X": 0.04, "Y": 0.09})
    with pytest.raises(InputError) as err:
        solver.rebalance(
            account(1e12, fractional_shares=True),
            targets=pd.Series({"X": 0.5, "Y": 0.5}),
            market=market,
            objective=OBJECTIVE,
            options=SolveOptions(rounding="nearest"),
        )
    assert (err.value.asset, err.value.field) == ("X", "price")


def test_account_reads_dates_as_iso_without_guessing():
    # was: pandas UserWarning "Could not infer format" when the first date
    # was unreadable; numbers were read as epoch nanoseconds (1970)
    rows = lots(("X", "x1", 5.0, 10.0, "someday"), ("X", "x2", 5.0, 10.0, "2020-01-02"))
    with pytest.raises(InputError) as err:
        Account("A1", 0.0, rows)
    assert (err.value.field, err.value.lot_id) == ("acquired", "x1")
    numbers = lots(("X", "x1", 5.0, 10.0, "")).assign(acquired=[20200102])
    assert Account("A1", 0.0, numbers).lots["acquired"][0] == pd.Timestamp("2020-01-02")


def test_batch_reports_an_unreadable_first_date_without_a_warning():
    tables = _tables()
    tables["lots"] = tables["lots"].astype({"acquired": str})
    tables["lots"].loc[0, "acquired"] = "not a date"
    summary = _run(tables, fmt="csv")
    owner = tables["lots"].loc[0, "account_id"]
    assert "not a date" in summary.loc[owner, "message"]


def test_rebalance_all_cash_towards_an_all_cash_target_has_nothing_to_round():
    # was: ValueError "Cannot unpack invalid solution" from cvxpy when HiGHS
    # got a mixed-integer program without variables
    market = diagonal_market({"X": 10.0}, {"X": 0.04})
    result = solver.rebalance(
        account(1000.0),
        targets=pd.Series({"CASH": 1.0}),
        market=market,
        objective=OBJECTIVE,
        constraints=(NoBuyAndSell(),),
    )
    assert result.status == "optimal"
    assert result.trades.empty


def test_batch_closes_a_lots_csv_it_stops_reading():
    # was: ResourceWarning (unclosed file) when a bad lots.csv stopped the split
    tables = _tables()
    tables["lots"] = tables["lots"].drop(columns="account_id")
    err = _batch_error(tables, fmt="csv")
    assert err.field == "account_id"
    del err  # its traceback holds the reader
    gc.collect()  # an unclosed file would warn here, and warnings are errors


def test_batch_error_names_every_missing_column():
    tables = _tables()
    tables["accounts"] = tables["accounts"].drop(columns=["account_id", "model_id"])
    err = _batch_error(tables)
    assert err.field == "account_id"
    assert "field='model_id'" in str(err)


def test_factor_model_from_tables_names_the_missing_column():
    loadings = pd.DataFrame({"asset": ["X"], "f": [1.0]})
    covariance = pd.DataFrame({"factor": ["f"], "f": [0.04]})
    with pytest.raises(InputError) as err:
        FactorRiskModel.from_tables(loadings, covariance, pd.DataFrame({"asset": []}))
    assert err.value.field == "variance"


def test_batch_rejects_loadings_whose_variance_overflows():
    # was: RuntimeWarning (overflow in square) inside the solve of each account
    tables = _tables()
    tables["factor_loadings"].loc[1, "f00"] = 1e300
    err = _batch_error(tables)
    assert (err.field, err.asset) == ("factor_loadings", "A0001")


def test_batch_survives_a_rounding_program_highs_cannot_classify():
    # was: ValueError "Cannot unpack invalid solution" from cvxpy when HiGHS
    # returned status UNKNOWN on a badly scaled mixed-integer program
    tables = batch_tables(n_accounts=2, n_assets=5, n_holdings=3, n_factors=2, seed=0)
    tables["factor_loadings"].loc[1, "f00"] = 1e150
    summary = _run(tables)
    assert summary["status"].isin(["optimal", "optimal_inaccurate"]).all()


@pytest.mark.parametrize(("cash", "price"), [(1e300, 1e-300), (1e-300, 1e300)])
def test_prices_no_share_count_can_hold_are_refused(cash, price):
    """$1e300 buys 1e600 shares at 1e-300: counts past 2**53 are not exact
    (rounding bought 9e15 shares, 1e-285 dollars, reported optimal); a
    share of 1e300 in a 1e-300 account has an infinite weight."""
    market = diagonal_market({"S0": price, "S1": 135.62}, {"S0": 0.02, "S1": 0.05})
    with pytest.raises(InputError) as err:
        solver.rebalance(
            account(cash),
            targets={"S0": 0.5, "S1": 0.5},
            market=market,
            objective=(TrackingError(100.0),),
        )
    assert (err.value.account_id, err.value.asset, err.value.field) == (
        "A1",
        "S0",
        "price",
    )


def _solve(
    held: Account, targets: pd.Series, adv: dict[str, object]
) -> RebalanceResult:
    """Rebalance with market impact: X at $10 and Y at $20, daily volume ``adv``."""
    prices = pd.DataFrame(
        {"asset": ["X", "Y"], "price": [10.0, 20.0], "volatility": 0.02}
    ).assign(adv=list(adv.values()))
    covariance = pd.DataFrame([[0.04, 0.0], [0.0, 0.09]], ["X", "Y"], ["X", "Y"])
    market = Market(AS_OF, prices, CovarianceRiskModel(covariance))
    return solver.rebalance(
        held, targets=targets, market=market, objective=(*OBJECTIVE, MarketImpact())
    )


def test_text_in_an_optional_price_column_is_refused_not_read_as_empty():
    # was: "n/a" in adv read as an empty adv, so X traded with no impact term
    # and nothing said; an empty adv (None) means no impact term, text does not
    held = account(0.0, ("X", "x1", 100.0, 10.0, "2020-01-02"))
    targets = pd.Series({"X": 0.5, "Y": 0.5})
    with pytest.raises(InputError) as err:
        _solve(held, targets, {"X": "n/a", "Y": 1e6})
    assert (err.value.asset, err.value.field) == ("X", "adv")
    assert "not a number: 'n/a'" in str(err.value)
    empty = _solve(held, targets, {"X": None, "Y": 1e6})
    assert empty.status == "optimal"
    # an asset the account neither holds nor aims at does not stop it
    alone = account(0.0, ("Y", "y1", 50.0, 20.0, "2020-01-02"))
    other = _solve(alone, pd.Series({"Y": 1.0}), {"X": "n/a", "Y": 1e6})
    assert other.status == "optimal"


def test_batch_marks_the_accounts_of_text_in_an_optional_price_column_invalid():
    # the batch's side of the rule above (docs/DATA.md: the accounts holding
    # or targeting the asset are invalid_input; the others solve)
    tables = _tables()
    prices = tables["prices"].assign(adv=1e7).astype({"adv": object})
    asset = tables["lots"].loc[0, "asset"]
    prices.loc[prices["asset"] == asset, "adv"] = "abc"  # "n/a" reads as empty
    tables["prices"] = prices
    summary = _run(tables, fmt="csv")
    holders = tables["lots"].loc[tables["lots"]["asset"] == asset, "account_id"]
    aiming = tables["targets"].loc[tables["targets"]["asset"] == asset, "model_id"]
    accounts = tables["accounts"]
    followers = accounts.loc[accounts["model_id"].isin(aiming), "account_id"]
    owners = set(holders) | set(followers)
    for aid in summary.index:
        if aid in owners:
            assert summary.loc[aid, "status"] == "invalid_input"
            assert repr(asset) in summary.loc[aid, "message"]
        else:
            assert summary.loc[aid, "status"] == "optimal"
