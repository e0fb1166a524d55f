import pickle

import numpy as np
import pandas as pd
import pytest

from models import Account, FactorRiskModel, InputError, Market, tiered_lot_sizes
from models._align import text
from models.snapshot import build_snapshot
from tests.conftest import account, diagonal_market

PRICES = {"X": 10.0, "Y": 20.0}
VARIANCES = {"X": 0.04, "Y": 0.09}
TARGETS = pd.Series({"X": 0.5, "Y": 0.5})


def test_snapshot_weights_and_lots():
    market = diagonal_market(PRICES, VARIANCES)
    acct = account(
        100.0, ("X", "L1", 20, 5.0, "2025-01-02"), ("Y", "L2", 10, 30.0, "2026-05-01")
    )
    snap = build_snapshot(acct, TARGETS, market)
    assert snap.value == pytest.approx(100 + 200 + 200)
    np.testing.assert_allclose(snap.current, [0.4, 0.4])
    assert snap.cash == pytest.approx(0.2)
    np.testing.assert_allclose(snap.lot_gain_fraction, [0.5, -0.5])
    assert list(snap.lot_long_term) == [True, False]


def test_snapshot_rejects_lot_acquired_after_as_of():
    market = diagonal_market(PRICES, VARIANCES)
    acct = account(0.0, ("X", "L9", 1, 5.0, "2027-01-01"))
    with pytest.raises(InputError) as err:
        build_snapshot(acct, TARGETS, market)
    assert (err.value.account_id, err.value.asset, err.value.lot_id) == (
        "A1",
        "X",
        "L9",
    )
    assert err.value.field == "acquired"


@pytest.mark.parametrize("weights", [{"X": 0.5, "Y": 0.49}, {"X": 0.5, "Y": 0.5000011}])
def test_snapshot_rejects_targets_not_summing_to_one(weights):
    market = diagonal_market(PRICES, VARIANCES)
    with pytest.raises(InputError, match="sum to"):
        build_snapshot(account(100.0), pd.Series(weights), market)


def test_snapshot_accepts_targets_within_tolerance_and_cash_target():
    market = diagonal_market(PRICES, VARIANCES)
    targets = pd.Series({"X": 0.5, "Y": 0.4999995, "CASH": 0.0})
    snap = build_snapshot(account(100.0), targets, market)
    assert list(snap.universe) == ["X", "Y"]


def test_snapshot_rejects_target_without_price():
    market = diagonal_market(PRICES, VARIANCES)
    with pytest.raises(InputError) as err:
        build_snapshot(account(100.0), pd.Series({"X": 0.5, "Z": 0.5}), market)
    assert (err.value.asset, err.value.field) == ("Z", "price")


@pytest.mark.parametrize("price", [float("nan"), -1.0, 0.0])
def test_snapshot_rejects_bad_price(price):
    market = diagonal_market({"X": 10.0, "Y": price}, VARIANCES)
    with pytest.raises(InputError) as err:
        build_snapshot(account(100.0), TARGETS, market)
    assert (err.value.account_id, err.value.asset, err.value.field) == (
        "A1",
        "Y",
        "price",
    )


def test_snapshot_rejects_held_asset_missing_from_risk_model():
    risk = FactorRiskModel(
        loadings=pd.DataFrame({"f1": [1.0, 1.0]}, index=["X", "Y"]),
        factor_covariance=pd.DataFrame({"f1": [0.04]}, index=["f1"]),
        specific_variance=pd.Series({"X": 0.01}),
    )
    prices = pd.DataFrame({"asset": ["X", "Y"], "price": [10.0, 20.0]})
    market = Market(as_of=pd.Timestamp("2026-06-30"), prices=prices, risk_model=risk)
    with pytest.raises(InputError) as err:
        build_snapshot(account(100.0), TARGETS, market)
    assert (err.value.asset, err.value.field) == ("Y", "specific_risk")


def test_snapshot_rejects_negative_target_weight():
    market = diagonal_market(PRICES, VARIANCES)
    with pytest.raises(InputError) as err:
        build_snapshot(account(100.0), pd.Series({"X": 1.5, "Y": -0.5}), market)
    assert (err.value.asset, err.value.field) == ("Y", "weight")


def test_market_rejects_duplicate_asset():
    prices = pd.DataFrame({"asset": ["X", "X"], "price": [1.0, 2.0]})
    covariance = diagonal_market(PRICES, VARIANCES).risk_model
    with pytest.raises(InputError) as err:
        Market(as_of=pd.Timestamp("2026-01-01"), prices=prices, risk_model=covariance)
    assert err.value.asset == "X"


def test_tiered_lot_sizes_follow_price_tiers():
    prices = pd.Series([5.0, 250.0, 250.01, 1000.0, 1000.01, 10_000.0, 10_000.5])
    expected = [100.0, 100.0, 40.0, 40.0, 10.0, 10.0, 1.0]
    assert tiered_lot_sizes(prices).tolist() == expected


def test_accounts_on_one_universe_share_its_numbers_and_a_bad_price_names_each():
    market = diagonal_market(PRICES, VARIANCES)
    first = build_snapshot(account(100.0), TARGETS, market)
    second = build_snapshot(
        Account("A2", 50.0, account(0.0, ("X", "L1", 1, 5.0, "2025-01-02")).lots),
        TARGETS,
        market,
    )
    assert second.risk is first.risk
    assert second.prices is first.prices
    with pytest.raises(ValueError, match="read-only"):
        second.prices[0] = 1.0  # shared by both snapshots
    assert pickle.loads(pickle.dumps(market)).cache == {}
    bad = diagonal_market({"X": 10.0, "Y": -1.0}, VARIANCES)
    for account_id in ("A1", "A2"):  # a failed check is not kept
        with pytest.raises(InputError) as err:
            build_snapshot(Account(account_id, 1.0, account(0.0).lots), TARGETS, bad)
        assert (err.value.account_id, err.value.asset) == (account_id, "Y")
    assert bad.cache == {}


@pytest.mark.parametrize(
    "values",
    [
        np.array(["A1", "lot-2", ""], dtype=object),
        np.array(["x", np.nan, None], dtype=object),
        np.array([], dtype=object),
        np.array(["long", "short"]),  # numpy's own text type
        ("a", "b"),
        np.array([1, "b"], dtype=object),  # not all text: pandas' path
    ],
)
def test_text_matches_pandas_str_conversion(values):
    expected = pd.Series(pd.array(values, dtype="str"))
    pd.testing.assert_series_equal(pd.Series(text(values)), expected)
