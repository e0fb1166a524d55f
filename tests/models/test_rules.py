import numpy as np
import pandas as pd
import pytest

from models import InputError, Restrictions, WashSaleRule
from models.snapshot import build_snapshot
from tests.conftest import account, diagonal_market

PRICES = {"X": 10.0, "Y": 20.0, "Z": 5.0}
VARIANCES = {"X": 0.04, "Y": 0.09, "Z": 0.02}
TARGETS = pd.Series({"X": 0.4, "Y": 0.3, "Z": 0.3})


def _snapshot(recent_trades=None):
    acct = account(
        100.0,
        ("X", "gain", 10, 5.0, "2024-01-02"),
        ("X", "loss", 10, 15.0, "2024-01-02"),
        ("Y", "y1", 5, 30.0, "2024-01-02"),
        recent_trades=recent_trades,
    )
    return build_snapshot(acct, TARGETS, diagonal_market(PRICES, VARIANCES))


def test_restrictions_mask_each_rule():
    rules = pd.DataFrame(
        {
            "asset": ["X", "Y", "Z", "Q"],
            "rule": ["no_sell", "liquidate", "no_buy", "no_buy"],
        }
    )
    mask = Restrictions(rules).mask(_snapshot())
    assert list(mask.can_buy) == [True, False, False]  # X, Y, Z
    assert list(mask.can_sell) == [False, False, True]  # gain, loss, y1
    assert list(mask.must_sell) == [False, False, True]


def test_restrictions_reject_unknown_rule():
    with pytest.raises(InputError) as err:
        Restrictions(pd.DataFrame({"asset": ["X"], "rule": ["sell_maybe"]}))
    assert (err.value.asset, err.value.field) == ("X", "rule")


def test_wash_sale_blocks_buy_after_loss_sale_and_loss_lot_after_buy():
    recent = pd.DataFrame(
        {
            "asset": ["Z", "X", "Y"],
            "date": ["2026-06-10", "2026-06-20", "2026-05-01"],
            "side": ["sell", "buy", "sell"],
            "quantity": [3, 1, 2],
            "realized_gain": [-12.0, np.nan, -50.0],
        }
    )
    mask = WashSaleRule().mask(_snapshot(recent))
    assert list(mask.can_buy) == [True, True, False]  # Y's loss sale is too old
    assert list(mask.can_sell) == [True, False, True]  # X's loss lot is blocked


def test_wash_sale_treats_unknown_gain_as_loss_and_ignores_gains():
    recent = pd.DataFrame(
        {
            "asset": ["X", "Y"],
            "date": ["2026-06-10", "2026-06-10"],
            "side": ["sell", "sell"],
            "quantity": [1, 1],
        }
    )
    assert list(WashSaleRule().mask(_snapshot(recent)).can_buy) == [False, False, True]
    recent["realized_gain"] = [5.0, 0.0]
    assert WashSaleRule().mask(_snapshot(recent)).can_buy.all()


def test_wash_sale_ignores_recent_trades_outside_the_universe():
    recent = pd.DataFrame(
        {
            "asset": ["Q", "Q"],
            "date": ["2026-06-10", "2026-06-20"],
            "side": ["sell", "buy"],
            "quantity": [1, 1],
            "realized_gain": [-5.0, np.nan],
        }
    )
    mask = WashSaleRule().mask(_snapshot(recent))
    assert mask.can_buy.all()
    assert mask.can_sell.all()
