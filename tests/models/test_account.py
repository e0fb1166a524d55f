import pandas as pd
import pytest

from models import Account, InputError
from tests.conftest import lots


def test_account_rejects_negative_quantity_naming_lot():
    table = lots(("X", "L1", 10, 5.0, "2024-01-02"), ("X", "L2", -3, 5.0, "2024-01-02"))
    with pytest.raises(InputError) as err:
        Account("A7", 100.0, table)
    assert (err.value.account_id, err.value.asset, err.value.lot_id) == (
        "A7",
        "X",
        "L2",
    )
    assert err.value.field == "quantity"


def test_account_rejects_duplicate_lot_ids():
    table = lots(("X", "L1", 10, 5.0, "2024-01-02"), ("Y", "L1", 1, 5.0, "2024-01-02"))
    with pytest.raises(InputError) as err:
        Account("A7", 100.0, table)
    assert (err.value.lot_id, err.value.field) == ("L1", "lot_id")


@pytest.mark.parametrize("basis", [float("nan"), -1.0, "abc"])
def test_account_rejects_bad_cost_basis(basis):
    table = lots(("X", "L1", 10, basis, "2024-01-02"))
    with pytest.raises(InputError) as err:
        Account("A7", 100.0, table)
    assert err.value.field == "cost_basis"


def test_account_rejects_unreadable_date():
    with pytest.raises(InputError) as err:
        Account("A7", 1.0, lots(("X", "L1", 1, 5.0, "not a date")))
    assert (err.value.lot_id, err.value.field) == ("L1", "acquired")


@pytest.mark.parametrize("cash", [float("nan"), float("inf"), -5.0, "many"])
def test_account_rejects_bad_cash(cash):
    with pytest.raises(InputError) as err:
        Account("A7", cash, lots())
    assert (err.value.account_id, err.value.field) == ("A7", "cash")


def test_account_rejects_missing_column():
    with pytest.raises(InputError) as err:
        Account("A7", 1.0, pd.DataFrame({"asset": ["X"], "lot_id": ["L"]}))
    assert err.value.field == "quantity"


def test_account_rejects_unknown_trade_side():
    trades = pd.DataFrame(
        {"asset": ["X"], "date": ["2026-06-01"], "side": ["short"], "quantity": [1]}
    )
    with pytest.raises(InputError) as err:
        Account("A7", 1.0, lots(), recent_trades=trades)
    assert (err.value.asset, err.value.field) == ("X", "side")


def test_account_keeps_the_day_of_a_dated_time():
    """A time of day is dropped, before 1970 too (floored, not rounded to 0)."""
    table = lots(
        ("X", "L1", 1, 5.0, "2025-01-10T15:30:00"),
        ("X", "L2", 1, 5.0, "1969-12-31T10:00:00"),
        ("X", "L3", 1, 5.0, "2024-02-29"),
    )
    acquired = Account("A7", 1.0, table).lots["acquired"]
    assert list(acquired) == list(
        pd.to_datetime(["2025-01-10", "1969-12-31", "2024-02-29"])
    )
