import pandas as pd
import pytest

import solver
import solver.api
from models import MaxTurnover, MinCash, NoBuyAndSell, Restrictions, TrackingError
from models.snapshot import build_snapshot
from models.terms import Outcome
from solver.orders.checks import verify
from solver.orders.trades import outcome_from_trades
from solver.result import SolveOptions
from tests.conftest import account, diagonal_market

PRICES = {"X": 10.0, "Y": 20.0}
MARKET = diagonal_market(PRICES, {"X": 0.04, "Y": 0.09})
TARGETS = pd.Series({"X": 0.5, "Y": 0.5})
ACCOUNT = account(
    100.0, ("X", "x1", 60, 8.0, "2020-01-02"), ("Y", "y1", 15, 25.0, "2020-01-02")
)


def _trades(*rows):
    return pd.DataFrame(rows, columns=["asset", "side", "quantity", "lot_id"])


def _violations(trades, constraints=(), rules=()):
    snapshot = build_snapshot(ACCOUNT, TARGETS, MARKET)
    return verify(snapshot, trades, list(constraints), list(rules))[1]


def test_verify_accepts_a_valid_trade_list():
    trades = _trades(("X", "sell", 10.0, "x1"), ("Y", "buy", 5.0, None))
    assert _violations(trades, [MinCash(0.0), MaxTurnover(0.2), NoBuyAndSell()]).empty


@pytest.mark.parametrize(
    ("trades", "constraints", "broken"),
    [
        (_trades(("X", "sell", 61.0, "x1")), [], "lot_quantity"),
        (_trades(("Y", "buy", 6.0, None)), [], "cash_non_negative"),
        (_trades(("Y", "buy", 4.0, None)), [MinCash(0.05)], "min_cash"),
        (_trades(("X", "sell", 30.0, "x1")), [MaxTurnover(0.1)], "max_turnover"),
        (
            _trades(("X", "sell", 1.0, "x1"), ("X", "buy", 1.0, None)),
            [NoBuyAndSell()],
            "no_buy_and_sell",
        ),
        (_trades(("X", "sell", 1.0, "zz")), [], "trades"),
        (_trades(("X", "sell", 1.0, "y1")), [], "trades"),
        (_trades(("Z", "buy", 1.0, None)), [], "trades"),
        (_trades(("Y", "buy", 1.0, None)).drop(columns="lot_id"), [], "trades"),
    ],
)
def test_verify_reports_each_broken_constraint(trades, constraints, broken):
    assert broken in set(_violations(trades, constraints)["constraint"])


def test_outcome_from_trades_adds_up_rows_by_hand():
    # V = 100 cash + 60 x 10 (X) + 15 x 20 (Y) = 1,000; rows of one lot or
    # asset add up, and the sale of Y's lot is priced at Y's price
    snapshot = build_snapshot(ACCOUNT, TARGETS, MARKET)
    trades = _trades(
        ("X", "sell", 10.0, "x1"),
        ("Y", "buy", 2.0, None),
        ("X", "sell", 5.0, "x1"),
        ("Y", "buy", 1.0, None),
        ("Y", "sell", 3.0, "y1"),
    )
    o = outcome_from_trades(snapshot, trades)
    assert snapshot.value == 1000.0
    assert list(snapshot.lot_ids) == ["x1", "y1"]
    assert o.buys.tolist() == [0.0, 0.06]
    assert o.lot_sales.tolist() == [0.15, 0.06]


def test_verify_reports_restriction_breach():
    rules = Restrictions(pd.DataFrame({"asset": ["X"], "rule": ["no_sell"]}))
    violations = _violations(_trades(("X", "sell", 1.0, "x1")), rules=[rules])
    assert list(violations["constraint"]) == ["restrictions"]


def test_rebalance_raises_instead_of_returning_a_broken_result(monkeypatch):
    def overspend(o):
        return Outcome(o.snapshot, o.buys + 0.5, o.lot_sales)

    monkeypatch.setattr(solver.api, "clean", overspend)
    with pytest.raises(solver.VerificationError) as err:
        solver.rebalance(
            ACCOUNT,
            targets=TARGETS,
            market=MARKET,
            objective=(TrackingError(1.0),),
            options=SolveOptions(rounding="none"),
        )
    assert "cash_non_negative" in set(err.value.violations["constraint"])


@pytest.mark.parametrize(
    ("trades", "broken"),
    [
        (_trades(("Y", "buy", 2.5, None)), "lot_size"),
        (_trades(("X", "sell", 7.0, "x1")), "lot_size"),
        (_trades(("X", "sell", 60.0, "x1")), None),  # closing the whole position
        (_trades(("Y", "buy", 5.0, None)), None),
    ],
)
def test_verify_checks_whole_lots(trades, broken):
    snapshot = build_snapshot(ACCOUNT, TARGETS, MARKET)
    step = pd.Series({"X": 5.0, "Y": 1.0}).to_numpy()
    violations = verify(snapshot, trades, [], [], step=step)[1]
    assert set(violations["constraint"]) == ({broken} if broken else set())


def test_verify_checks_minimum_trade_value():
    market = diagonal_market(PRICES, {"X": 0.04, "Y": 0.09})
    prices = market.prices.reset_index().assign(min_trade_value=50.0)
    market = type(market)(
        as_of=market.as_of, prices=prices, risk_model=market.risk_model
    )
    snapshot = build_snapshot(ACCOUNT, TARGETS, market)
    step = snapshot.lot_size
    small = verify(snapshot, _trades(("Y", "buy", 2.0, None)), [], [], step=step)[1]
    assert list(small["constraint"]) == ["min_trade_value"]
    large = verify(snapshot, _trades(("Y", "buy", 3.0, None)), [], [], step=step)[1]
    assert large.empty
