"""Tax-lot ledger: wash sales, holding periods, yearly tax and liquidation.

Expected numbers are worked out by hand in the comments, not read back from
the ledger.
"""

import numpy as np
import pandas as pd
import pytest

from models.account import LOT_COLUMNS
from models.errors import InputError
from solver.dynamic.closing import (
    kept_after_tax,
    liquidation_value_after_tax,
    sold_out,
)
from solver.dynamic.ledger import Ledger
from solver.dynamic.tables import TRADE_COLUMNS, lot_table, trade_table
from tests.conftest import ATOL_SHARES, ATOL_VALUE

SHORT, LONG = 0.408, 0.238  # the default tax rates


def d(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def test_ledger_irs_wash_sale_example_moves_loss_to_replacement_basis():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 100, 10.0)  # $1,000
    ledger.sell(d("2025-03-03"), lot.lot_id, 100, 7.50)  # $750: loss $250
    new = ledger.buy(d("2025-03-20"), "XYZ", 100, 8.0)  # $800, 17 days later
    sale = ledger.realizations[-1]
    assert sale.gain == pytest.approx(-250.0)
    assert sale.disallowed == pytest.approx(250.0)
    assert sale.allowed_gain == pytest.approx(0.0)
    # basis $800 + $250 = $1,050, i.e. $10.50 a share
    assert new.quantity == pytest.approx(100.0)
    assert new.cost_basis == pytest.approx(10.50)
    # held 60 days (Jan 2 -> Mar 3), so the holding period starts 60 days
    # before Mar 20: Jan 19
    assert new.acquired == d("2025-01-19")
    assert ledger.cash == pytest.approx(10_000 - 1_000 + 750 - 800)
    assert ledger.settle_year(2025) == pytest.approx(0.0)  # nothing allowed


def test_ledger_buy_first_wash_disallows_pro_rata():
    ledger = Ledger(10_000.0)
    old = ledger.buy(d("2020-01-02"), "XYZ", 100, 10.0)
    ledger.buy(d("2025-06-02"), "XYZ", 50, 9.0)
    sale = ledger.sell(d("2025-06-12"), old.lot_id, 100, 8.0)
    # loss $2 a share on 100 shares; 50 replacement shares bought 10 days before
    assert sale.long_term
    assert sale.gain == pytest.approx(-200.0)
    assert sale.disallowed == pytest.approx(100.0)
    assert sale.allowed_gain == pytest.approx(-100.0)
    lots = ledger.lots()
    assert len(lots) == 1
    assert lots["quantity"].iloc[0] == pytest.approx(50.0)
    assert lots["cost_basis"].iloc[0] == pytest.approx(9.0 + 2.0)
    # held together for 10 days, counted once: the holding period includes the
    # sold shares' and so starts when theirs did, Jan 2 2020 (not 10 days before)
    assert lots["acquired"].iloc[0] == d("2020-01-02")
    # the allowed $100 long-term loss is deducted at the short rate
    assert ledger.settle_year(2025) == pytest.approx(-SHORT * 100.0)


def test_ledger_splits_a_replacement_lot_bigger_than_the_match():
    ledger = Ledger(10_000.0)
    old = ledger.buy(d("2020-01-02"), "XYZ", 50, 10.0)
    bought = ledger.buy(d("2025-06-02"), "XYZ", 80, 9.0)
    ledger.sell(d("2025-06-12"), old.lot_id, 50, 8.0)  # $100 loss, 50 matched
    lots = ledger.lots()  # the rest keeps the lot id, the match gets a new one
    assert lots["lot_id"].iloc[0] == bought.lot_id
    np.testing.assert_allclose(lots["quantity"], [30.0, 50.0])
    np.testing.assert_allclose(lots["cost_basis"], [9.0, 9.0 + 2.0])
    assert list(lots["acquired"]) == [d("2025-06-02"), d("2020-01-02")]
    assert ledger.realizations[-1].disallowed == pytest.approx(100.0)


def test_ledger_splits_a_buy_bigger_than_the_loss_sale():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 40, 10.0)
    ledger.sell(d("2025-02-03"), lot.lot_id, 40, 7.0)  # $3 a share, $120
    first = ledger.buy(d("2025-02-10"), "XYZ", 100, 6.0)
    lots = ledger.lots()
    np.testing.assert_allclose(lots["quantity"], [40.0, 60.0])
    np.testing.assert_allclose(lots["cost_basis"], [9.0, 6.0])
    # 32 days held before the sale, tacked onto the 40 matched shares only
    assert list(lots["acquired"]) == [d("2025-01-09"), d("2025-02-10")]
    assert first.lot_id == lots["lot_id"].iloc[0]
    assert ledger.realizations[-1].disallowed == pytest.approx(120.0)


def test_ledger_loss_shares_and_replacement_shares_match_once():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 100, 10.0)
    ledger.sell(d("2025-02-03"), lot.lot_id, 100, 9.0)  # $100 loss
    ledger.buy(d("2025-02-04"), "XYZ", 30, 9.0)  # washes 30 shares: $30
    ledger.buy(d("2025-02-05"), "XYZ", 30, 9.0)  # washes 30 more: $30
    assert ledger.realizations[-1].disallowed == pytest.approx(60.0)
    ledger.buy(d("2025-02-06"), "XYZ", 100, 9.0)  # only 40 loss shares left
    assert ledger.realizations[-1].disallowed == pytest.approx(100.0)
    ledger.buy(d("2025-02-07"), "XYZ", 10, 9.0)  # nothing left to wash
    np.testing.assert_allclose(ledger.lots()["cost_basis"], [10, 10, 10, 9, 9])


def test_ledger_partial_sale_of_one_purchase_is_not_washed_by_its_rest():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-03-03"), "XYZ", 100, 10.0)
    sale = ledger.sell(d("2025-03-10"), lot.lot_id, 50, 8.0)
    assert sale.disallowed == 0.0
    assert ledger.lots()["cost_basis"].iloc[0] == pytest.approx(10.0)


@pytest.mark.parametrize(("day", "washed"), [("2025-04-02", 250), ("2025-04-03", 0)])
def test_ledger_wash_window_after_the_sale_is_30_days(day, washed):
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 100, 10.0)
    ledger.sell(d("2025-03-03"), lot.lot_id, 100, 7.5)
    new = ledger.buy(d(day), "XYZ", 100, 8.0)  # 30 or 31 days later
    assert ledger.realizations[-1].disallowed == pytest.approx(washed)
    assert new.cost_basis == pytest.approx(8.0 + washed / 100)


@pytest.mark.parametrize(("day", "washed"), [("2025-05-13", 100), ("2025-05-12", 0)])
def test_ledger_wash_window_before_the_sale_is_30_days(day, washed):
    ledger = Ledger(10_000.0)
    old = ledger.buy(d("2020-01-02"), "XYZ", 100, 10.0)
    ledger.buy(d(day), "XYZ", 50, 9.0)  # 30 or 31 days before the sale
    sale = ledger.sell(d("2025-06-12"), old.lot_id, 100, 8.0)
    assert sale.disallowed == pytest.approx(washed)


def test_ledger_gain_sale_is_never_a_wash_sale():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 100, 10.0)
    ledger.buy(d("2025-02-25"), "XYZ", 10, 11.5)
    sale = ledger.sell(d("2025-03-03"), lot.lot_id, 100, 12.0)
    new = ledger.buy(d("2025-03-08"), "XYZ", 100, 11.0)
    assert sale.gain == pytest.approx(200.0)
    assert ledger.realizations[-1].disallowed == 0.0
    assert (new.cost_basis, new.acquired) == (pytest.approx(11.0), d("2025-03-08"))
    np.testing.assert_allclose(ledger.lots()["cost_basis"], [11.5, 11.0])


def test_ledger_other_assets_do_not_wash():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 100, 10.0)
    ledger.sell(d("2025-03-03"), lot.lot_id, 100, 7.5)
    assert ledger.buy(d("2025-03-04"), "ABC", 100, 8.0).cost_basis == 8.0
    assert ledger.realizations[-1].disallowed == 0.0


def test_ledger_long_term_needs_more_than_one_year():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-10"), "XYZ", 100, 10.0)
    assert not ledger.sell(d("2026-01-10"), lot.lot_id, 50, 11.0).long_term
    assert ledger.sell(d("2026-01-11"), lot.lot_id, 50, 11.0).long_term
    assert ledger.lots().empty


def test_ledger_costs_add_to_buy_basis_and_cut_sale_proceeds():
    ledger = Ledger(1_000.0)
    lot = ledger.buy(d("2025-01-02"), "XYZ", 10, 50.0, cost=5.0)  # $505
    assert lot.cost_basis == pytest.approx(50.5)
    sale = ledger.sell(d("2025-02-03"), lot.lot_id, 10, 60.0, cost=3.0)
    assert (sale.proceeds, sale.basis) == (pytest.approx(597.0), pytest.approx(505.0))
    assert sale.gain == pytest.approx(92.0)
    assert ledger.cash == pytest.approx(1_000 - 505 + 597)


def run_years(years, cash=1e6):
    """Realize (short, long) gains per year with 1,000-share lots of price 100."""
    ledger = Ledger(cash)
    held = {y: ledger.buy(d("2020-01-02"), f"L{y}", 1000, 100.0) for y in years}
    taxes, carries = [], []
    for year, (short, long) in years.items():
        if long:
            ledger.sell(d(f"{year}-02-01"), held[year].lot_id, 1000, 100 + long / 1000)
        if short:
            lot = ledger.buy(d(f"{year}-03-02"), f"S{year}", 1000, 100.0)
            ledger.sell(d(f"{year}-04-01"), lot.lot_id, 1000, 100 + short / 1000)
        taxes.append(ledger.settle_year(year))
        carries.append(ledger.loss_carryforward)
    return ledger, taxes, carries


@pytest.mark.parametrize(
    ("short", "long", "tax", "carry"),
    [
        (10_000, -4_000, SHORT * 6_000, (0, 0)),  # LT loss offsets ST gain
        (-4_000, 10_000, LONG * 6_000, (0, 0)),  # ST loss offsets LT gain
        (1_000, 2_000, SHORT * 1_000 + LONG * 2_000, (0, 0)),
        (-1_000, 0, -SHORT * 1_000, (0, 0)),  # under the $3,000 limit
        (-10_000, 0, -SHORT * 3_000, (7_000, 0)),
        (-2_000, -5_000, -SHORT * 3_000, (0, 4_000)),  # ST loss used first
        (-5_000, 1_000, -SHORT * 3_000, (1_000, 0)),  # 4,000 net ST loss
        (1_000, -5_000, -SHORT * 3_000, (0, 1_000)),  # 4,000 net LT loss
    ],
)
def test_ledger_settle_year_nets_terms_and_limits_the_deduction(
    short, long, tax, carry
):
    _, taxes, carries = run_years({2025: (short, long)})
    assert taxes[0] == pytest.approx(tax)
    np.testing.assert_allclose(carries[0], carry, atol=ATOL_VALUE)


def test_ledger_short_carryforward_offsets_next_years_long_gain():
    years = {2025: (-10_000, 0), 2026: (0, 5_000), 2027: (1_000, 0)}
    _, taxes, carries = run_years(years)
    # 2025: deduct 3,000, carry 7,000 ST. 2026: -7,000 + 5,000 = -2,000 net,
    # all deductible, nothing carried. 2027: a plain 1,000 ST gain.
    np.testing.assert_allclose(taxes, [-SHORT * 3_000, -SHORT * 2_000, SHORT * 1_000])
    np.testing.assert_allclose(carries, [(7_000, 0), (0, 0), (0, 0)], atol=ATOL_VALUE)


def test_ledger_long_carryforward_is_deducted_year_after_year():
    years = {2025: (0, -20_000), 2026: (5_000, 0), 2027: (0, 0)}
    ledger, taxes, carries = run_years(years)
    # 2026: 5,000 ST gain - 17,000 LT carry = -12,000: deduct 3,000, carry 9,000
    np.testing.assert_allclose(taxes, [-SHORT * 3_000] * 3)
    expected = [(0, 17_000), (0, 9_000), (0, 6_000)]
    np.testing.assert_allclose(carries, expected, atol=ATOL_VALUE)
    cash = 1e6 - 3 * 100_000 + 80_000 - 100_000 + 105_000 + 3 * SHORT * 3_000
    assert ledger.cash == pytest.approx(cash)


def test_ledger_december_loss_washed_in_january_is_disallowed_in_december():
    # IRC 1091: the loss of the sale year is disallowed, whenever the buy falls
    ledger = Ledger(20_000.0)
    gain = ledger.buy(d("2007-02-01"), "A", 100, 10.0)
    ledger.sell(d("2007-06-01"), gain.lot_id, 100, 60.0)  # +5,000 short term
    loss = ledger.buy(d("2007-06-04"), "B", 100, 20.0)
    ledger.sell(d("2007-12-03"), loss.lot_id, 100, 10.0)  # -1,000 short term
    assert ledger.settles_on(2007) == d("2008-01-31")
    new = ledger.buy(d("2008-01-02"), "B", 100, 9.0)  # 30 days after the loss
    assert new.cost_basis == pytest.approx(19.0)  # 9 + the 10 a share disallowed
    assert ledger.settle_year(2007) == pytest.approx(SHORT * 5_000)  # 2,040
    assert ledger.settle_year(2008) == pytest.approx(0.0)


def test_ledger_refuses_to_wash_a_loss_of_a_settled_year():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-06-02"), "XYZ", 100, 10.0)
    ledger.sell(d("2025-12-20"), lot.lot_id, 100, 7.5)  # $250 ST loss
    assert ledger.settle_year(2025) == pytest.approx(-SHORT * 250)  # too early
    with pytest.raises(InputError, match="settled year 2025") as err:
        ledger.buy(d("2026-01-05"), "XYZ", 100, 8.0)
    assert (err.value.asset, err.value.lot_id) == ("XYZ", lot.lot_id)


def test_ledger_fifo_breaks_date_ties_by_opening_order_not_by_id_text():
    ledger = Ledger(10_000.0)
    for k in range(8):
        ledger.buy(d("2025-01-02"), f"F{k}", 1, 1.0)  # lots 1-8
    ledger.buy(d("2025-01-03"), "BBY", 1, 10.0)  # BBY-9
    ledger.buy(d("2025-01-03"), "BBY", 1, 11.0)  # BBY-10, "BBY-10" < "BBY-9"
    assert [lot.lot_id for lot in ledger.fifo("BBY")] == ["BBY-9", "BBY-10"]


def test_ledger_settles_years_in_order_and_once():
    ledger, _, _ = run_years({2025: (1_000, 0)})
    with pytest.raises(InputError) as err:
        ledger.settle_year(2025)
    assert err.value.field == "year"
    lot = ledger.buy(d("2026-01-05"), "XYZ", 10, 10.0)
    ledger.sell(d("2026-02-02"), lot.lot_id, 10, 12.0)
    with pytest.raises(InputError, match="settle 2026 first"):
        ledger.settle_year(2027)
    with pytest.raises(InputError) as err:
        run_years({2025: (1_000, 0)})[0].buy(d("2025-12-31"), "XYZ", 1, 1.0)
    assert err.value.field == "date"


def test_ledger_tax_owed_when_cash_is_short_is_paid_by_later_cash():
    ledger = Ledger(1_000.0)
    lot = ledger.buy(d("2025-01-02"), "A", 100, 5.0)  # cash 500
    ledger.sell(d("2025-06-02"), lot.lot_id, 100, 15.0)  # +1,000 ST, cash 2,000
    other = ledger.buy(d("2025-06-03"), "B", 190, 10.0)  # cash 100
    assert ledger.settle_year(2025) == pytest.approx(408.0)
    assert (ledger.cash, ledger.tax_owed) == (0.0, pytest.approx(308.0))
    prices = pd.Series({"B": 10.0})
    assert ledger.market_value(prices) == pytest.approx(1_900 - 308)
    ledger.deposit(200.0)
    assert (ledger.cash, ledger.tax_owed) == (0.0, pytest.approx(108.0))
    ledger.sell(d("2026-01-05"), other.lot_id, 20, 10.0)  # proceeds 200
    assert (ledger.cash, ledger.tax_owed) == (pytest.approx(92.0), 0.0)
    with pytest.raises(InputError) as err:
        ledger.deposit(-100.0)
    assert err.value.field == "amount"


def test_ledger_liquidation_value_taxes_the_sales_and_changes_nothing():
    ledger = Ledger(10_000.0)
    ledger.buy(d("2025-01-02"), "A", 100, 10.0)
    ledger.buy(d("2025-06-02"), "B", 100, 50.0)  # cash 4,000
    before = (ledger.lots(), ledger.cash, list(ledger.realizations))
    prices = pd.Series({"A": 20.0, "B": 45.0})
    # on 2026-03-02: A +1,000 long term, B -500 short term -> 500 LT net
    value = liquidation_value_after_tax(ledger, d("2026-03-02"), prices)
    assert value == pytest.approx(4_000 + 2_000 + 4_500 - LONG * 500)
    pd.testing.assert_frame_equal(ledger.lots(), before[0])
    assert (ledger.cash, ledger.realizations) == before[1:]
    assert ledger.market_value(prices) == pytest.approx(10_500.0)


def test_ledger_liquidation_value_includes_this_years_realized_gains():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2026-01-05"), "C", 100, 10.0)
    ledger.sell(d("2026-02-05"), lot.lot_id, 100, 30.0)  # +2,000 ST, cash 12,000
    ledger.buy(d("2026-02-06"), "D", 100, 50.0)  # cash 7,000
    # selling D at 20 loses 3,000 ST: net -1,000, deducted at the short rate
    value = liquidation_value_after_tax(ledger, d("2026-03-02"), pd.Series({"D": 20.0}))
    assert value == pytest.approx(7_000 + 2_000 + SHORT * 1_000)
    assert ledger.settle_year(2026) == pytest.approx(SHORT * 2_000)


def test_ledger_liquidation_value_includes_unsettled_earlier_years():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-05-01"), "C", 100, 10.0)
    ledger.sell(d("2025-06-02"), lot.lot_id, 100, 20.0)  # +1,000 ST, unsettled
    ledger.buy(d("2025-07-01"), "D", 10, 100.0)  # cash 10,000
    value = liquidation_value_after_tax(
        ledger, d("2026-01-05"), pd.Series({"D": 100.0})
    )
    assert value == pytest.approx(10_000 + 1_000 - SHORT * 1_000)


def test_ledger_recent_trades_window_and_columns():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-01-02"), "A", 10, 10.0)
    ledger.sell(d("2025-02-01"), lot.lot_id, 4, 9.0)
    ledger.buy(d("2025-03-03"), "B", 5, 20.0)
    trades = ledger.recent_trades(d("2025-03-03"))  # from 2025-02-01 on
    assert tuple(trades.columns) == TRADE_COLUMNS
    assert list(trades["side"]) == ["sell", "buy"]
    assert trades["realized_gain"].iloc[0] == pytest.approx(-4.0)
    assert np.isnan(trades["realized_gain"].iloc[1])
    assert len(ledger.recent_trades(d("2025-03-03"), days=29)) == 1


def test_ledger_lots_table_and_shares():
    ledger = Ledger(10_000.0)
    ledger.buy(d("2025-01-02"), "A", 10, 10.0)
    ledger.buy(d("2025-01-03"), "A", 5.5, 10.0)
    ledger.buy(d("2025-01-03 15:30"), "B", 2, 10.0)
    lots = ledger.lots()
    assert tuple(lots.columns) == LOT_COLUMNS
    assert lots["lot_id"].is_unique
    assert lots["acquired"].iloc[2] == d("2025-01-03")  # normalized to midnight
    assert ledger.shares() == {"A": pytest.approx(15.5), "B": pytest.approx(2.0)}


DAY = d("2025-02-01")
BAD_CALLS = [  # method, arguments, then the field, lot id and asset named
    ("sell", (DAY, "nope", 1, 10.0), "lot_id", "nope", None),
    ("sell", (DAY, "A-1", 11, 10.0), "quantity", "A-1", "A"),
    ("sell", (DAY, "A-1", 1, 0.0), "price", "A-1", "A"),
    ("buy", (DAY, "B", -1, 10.0), "quantity", None, "B"),
    ("buy", (DAY, "B", 1, np.nan), "price", None, "B"),
    ("buy", (DAY, "B", 1, 10.0, -1.0), "cost", None, "B"),
    ("buy", (DAY, "B", 100, 10.0), "cash", None, "B"),
    ("buy", (d("2024-12-31"), "B", 1, 10.0), "date", None, None),
    ("market_value", (pd.Series({"B": 1.0}),), "price", None, "A"),
]


@pytest.mark.parametrize(("method", "args", "field", "lot_id", "asset"), BAD_CALLS)
def test_ledger_bad_input_names_lot_asset_and_field(method, args, field, lot_id, asset):
    ledger = Ledger(200.0)
    ledger.buy(d("2025-01-02"), "A", 10, 10.0)  # lot A-1, cash 100
    with pytest.raises(InputError) as err:
        getattr(ledger, method)(*args)
    where = (err.value.field, err.value.lot_id, err.value.asset)
    assert where == (field, lot_id, asset)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ledger_conserves_cash_shares_and_basis(seed):
    rng = np.random.default_rng(seed)
    assets = ["A", "B", "C"]
    initial = 50_000.0
    ledger = Ledger(initial)
    prices = dict.fromkeys(assets, 50.0)
    paid = received = costs = taxes = 0.0
    bought, sold = dict.fromkeys(assets, 0.0), dict.fromkeys(assets, 0.0)
    buy_basis = 0.0
    days = pd.bdate_range("2025-01-02", periods=400)
    for day, previous in zip(days, [days[0], *days[:-1]], strict=True):
        if day.year != previous.year:
            taxes += ledger.settle_year(previous.year)
        prices = {a: p * float(np.exp(rng.normal(0, 0.03))) for a, p in prices.items()}
        asset = str(rng.choice(assets))
        cost = float(rng.uniform(0, 2))
        lots = ledger.lots()
        if rng.random() < 0.5 or lots.empty:
            quantity = float(rng.uniform(0.5, 20))
            if quantity * prices[asset] + cost > ledger.cash:
                continue
            ledger.buy(day, asset, quantity, prices[asset], cost)
            paid += quantity * prices[asset]
            buy_basis += quantity * prices[asset] + cost
            bought[asset] += quantity
        else:
            row = lots.iloc[int(rng.integers(len(lots)))]
            share = 1.0 if rng.random() < 0.5 else rng.uniform(0.1, 0.9)
            quantity = row["quantity"] * share
            price = prices[row["asset"]]
            ledger.sell(day, row["lot_id"], quantity, price, cost)
            received += quantity * price
            sold[row["asset"]] += quantity
        costs += cost
    expected_cash = initial + received - paid - costs - taxes
    assert ledger.cash - ledger.tax_owed == pytest.approx(expected_cash, abs=ATOL_VALUE)
    held = [ledger.shares().get(a, 0.0) for a in assets]
    net = [bought[a] - sold[a] for a in assets]
    np.testing.assert_allclose(held, net, atol=ATOL_SHARES)
    # wash sales move basis between sales and lots; none is created or lost
    lots = ledger.lots()
    realized = sum(r.basis - r.disallowed for r in ledger.realizations)
    open_basis = float((lots["quantity"] * lots["cost_basis"]).sum())
    assert open_basis == pytest.approx(buy_basis - realized, abs=ATOL_VALUE)
    assert any(r.disallowed > 0 for r in ledger.realizations)  # wash sales happened
    assert (lots["quantity"] > 0).all()


def test_ledger_liquidation_pays_the_cost_of_selling_out():
    ledger = Ledger(1_000.0)
    ledger.buy(d("2025-01-02"), "A", 100, 10.0)  # cash 0
    # sold at 20 less 0.1%: proceeds 1,998, long-term gain 998
    value = liquidation_value_after_tax(
        ledger, d("2026-03-02"), pd.Series({"A": 20.0}), 0.001
    )
    assert value == pytest.approx(1_998 - LONG * 998)


def test_ledger_liquidation_applies_wash_sales_among_its_own_sales():
    ledger = Ledger(100_000.0)
    ledger.buy(d("2024-01-02"), "C", 100, 10.0)
    ledger.buy(d("2025-01-06"), "B", 100, 50.0)
    ledger.buy(d("2026-02-20"), "B", 100, 40.0)  # cash 90,000
    prices = pd.Series({"B": 45.0, "C": 20.0})
    # C: +1,000 long. B's first lot: -500 long, washed by the second lot
    # (bought 10 days before), which takes basis 45 and a long holding period
    # and is sold at 45: gain 0. Tax: 1,000 long. (Ignoring the wash, the
    # second lot's +500 would be short term: 0.408 * 500 + 0.238 * 500.)
    value = liquidation_value_after_tax(ledger, d("2026-03-02"), prices)
    assert value == pytest.approx(90_000 + 2_000 + 9_000 - LONG * 1_000)


def test_ledger_kept_after_tax_settles_realized_gains_only():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2026-01-05"), "C", 100, 10.0)
    ledger.sell(d("2026-02-05"), lot.lot_id, 100, 30.0)  # +2,000 ST, cash 12,000
    ledger.buy(d("2026-02-06"), "D", 100, 50.0)  # cash 7,000
    prices = pd.Series({"D": 20.0})  # an unrealized loss of 3,000: not counted
    value, carry = kept_after_tax(ledger, d("2026-03-02"), prices)
    assert value == pytest.approx(7_000 + 2_000 - SHORT * 2_000)
    assert carry == pytest.approx(0.0)
    loss = Ledger(10_000.0)
    lot = loss.buy(d("2026-01-05"), "C", 100, 100.0)
    loss.sell(d("2026-02-05"), lot.lot_id, 100, 20.0)  # -8,000 ST: 3,000 deducted
    assert kept_after_tax(loss, d("2026-03-02"), prices)[1] == pytest.approx(5_000.0)


def test_ledger_liquidation_sells_the_part_a_wash_split_off():
    ledger = Ledger(10_000.0)
    ledger.buy(d("2020-01-02"), "A", 10, 20.0)
    ledger.buy(d("2020-01-21"), "A", 100, 10.0)  # cash 8,800
    # sold out at 11 on 2020-01-30. The first lot loses 90, washed by 10 of
    # the 100 shares bought 9 days before: they split off with basis 19 and
    # are sold next, losing 80; the other 90 gain 90. Net +10 short term.
    value = liquidation_value_after_tax(ledger, d("2020-01-30"), pd.Series({"A": 11.0}))
    assert value == pytest.approx(8_800 + 1_210 - SHORT * 10)


def test_ledger_liquidation_realizes_every_dollar_paid_and_received():
    # sold out, a ledger's allowed gains are its proceeds less what its buys
    # paid: wash sales only move losses between sales and lots
    ledger, rng = Ledger(100_000.0), np.random.default_rng(7)
    days, price, paid = pd.bdate_range("2025-01-02", periods=120), 50.0, 0.0
    for day in days:
        price *= float(np.exp(rng.normal(0, 0.04)))
        lots = ledger.fifo("A")
        if lots and rng.random() < 0.4 and day < days[-15]:
            quantity = min(lots[0].quantity, 15.0)
            ledger.sell(day, lots[0].lot_id, quantity, price, quantity * price * 1e-3)
        elif ledger.cash > 2_000:
            quantity = float(rng.uniform(5, 40))
            ledger.buy(day, "A", quantity, price, quantity * price * 1e-3)
            paid += quantity * price * (1 + 1e-3)
    held, sales = len(ledger.fifo()), len(ledger.realizations)
    closing, prices = days[-1] + pd.Timedelta(days=1), pd.Series({"A": 0.7 * price})
    value = liquidation_value_after_tax(ledger, closing, prices, 1e-3)
    ledger = sold_out(ledger, closing, prices, 1e-3)
    assert value == pytest.approx(ledger.cash)
    assert not ledger.fifo()
    allowed = sum(r.allowed_gain for r in ledger.realizations)
    received = sum(r.proceeds for r in ledger.realizations)
    assert allowed == pytest.approx(received - paid, abs=ATOL_VALUE)
    closing = ledger.realizations[sales:]
    assert any(r.disallowed > 0 for r in closing)
    assert len(closing) > held  # lots split off by the closing's own washes
    # chains of wash sales tack holding periods, never to before the first buy
    assert min(r.acquired for r in ledger.realizations) >= days[0]


def test_ledger_tables_match_pandas_own_conversion():
    # dates of several units and times of day, as pandas would read them
    days = [pd.Timestamp("2020-01-02"), pd.Timestamp("1999-12-31 15:30").as_unit("s")]
    rows = [("A", "a-1", 2.0, 10.0, days[0]), ("B", "b-1", 1.5, 3.0, days[1])]
    lots = lot_table(rows)
    expected = pd.DataFrame(
        {
            "asset": pd.array(["A", "B"], dtype="str"),
            "lot_id": pd.array(["a-1", "b-1"], dtype="str"),
            "quantity": [2.0, 1.5],
            "cost_basis": [10.0, 3.0],
            "acquired": pd.to_datetime(days).as_unit("ns"),
        }
    )
    pd.testing.assert_frame_equal(lots, expected[list(LOT_COLUMNS)])
    trades = trade_table([("A", days[1], "sell", 1.0, 9.0, -1.0)], ("date", "side"))
    assert trades["date"].tolist() == [days[1]]
    assert trades["date"].dtype == "M8[ns]"
    assert trade_table([]).shape == (0, len(TRADE_COLUMNS))


@pytest.mark.parametrize(
    "date", [pd.Timestamp("2020-01-02", tz="Asia/Tokyo"), "2020-01-02T00:00+09:00"]
)
def test_ledger_refuses_dates_with_a_time_zone(date):
    # in UTC this is 2020-01-01 15:00: a silent shift would move the day
    ledger = Ledger(1_000.0)
    with pytest.raises(InputError) as err:
        ledger.buy(date, "A", 1.0, 10.0)
    assert err.value.field == "date"
    assert not ledger.lots().shape[0]


def test_closing_settles_the_years_without_sales_too():
    # a 9,000 loss in 2025 deducts 3,000 a year: in 2025, 2026 (no sale) and 2027
    ledger = Ledger(20_000.0)
    lot = ledger.buy(d("2025-01-02"), "A", 100, 100.0)
    ledger.sell(d("2025-02-03"), lot.lot_id, 100, 10.0)
    ledger.buy(d("2025-03-03"), "B", 10, 100.0)  # cash 10,000
    assert ledger.settle_year(2025) == pytest.approx(-SHORT * 3_000)
    prices = pd.Series({"B": 100.0})
    value, carry = kept_after_tax(ledger, d("2027-01-15"), prices)
    assert carry == pytest.approx(0.0)
    assert value == pytest.approx(10_000 + 1_000 + 3 * SHORT * 3_000)  # 14,672
    closed = sold_out(ledger, d("2027-01-15"), prices)
    assert closed.market_value(prices) == pytest.approx(value)  # B sold at cost
    assert closed.settled_through == 2027
    with pytest.raises(InputError, match="settle 2026 first"):
        ledger.copy().settle_year(2027)


def test_ledger_refused_trades_change_nothing():
    ledger = Ledger(10_000.0)
    lot = ledger.buy(d("2025-06-02"), "XYZ", 100, 10.0)
    ledger.sell(d("2025-12-20"), lot.lot_id, 100, 7.5)  # a 250 loss
    ledger.settle_year(2025)

    def state():
        trades = ledger.recent_trades(d("2026-01-05"), days=60)
        return ledger.cash, len(trades), ledger.shares(), len(ledger.lots())

    before = state()
    with pytest.raises(InputError) as err:  # it would wash the settled loss
        ledger.buy(d("2026-01-05"), "XYZ", 100, 8.0)
    assert (err.value.field, err.value.lot_id) == ("date", lot.lot_id)
    with pytest.raises(InputError):
        ledger.buy(d("2026-01-20"), "ABC", -1.0, 8.0)  # a bad quantity
    assert state() == before
    ledger.buy(d("2026-01-10"), "ABC", 1.0, 8.0)  # a refused trade kept no date
