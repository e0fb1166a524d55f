"""The optimizer policy: its zero-trade test against the solver, aversion, FIFO."""

from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd
import pytest

from models import Account, Market
from models.errors import InputError
from models.history import synthetic_prices
from models.snapshot import CASH, build_snapshot
from solver.dynamic.ledger import Ledger
from solver.dynamic.optimizer import OptimizerPolicy
from solver.dynamic.policies import Day, Risk, fifo_sells
from solver.dynamic.simulation import BacktestConfig, backtest, compare

LOOKBACK = 40


def _prices(n_days=160, seed=5):
    return synthetic_prices(4, n_days, seed=seed, annual_volatility=0.3)


def _equal(prices):
    return pd.Series(1.0 / prices.shape[1], index=prices.columns)


@dataclass(frozen=True)
class Unscreened(OptimizerPolicy):
    """Always solves; records what the screen said and what the solver traded."""

    seen: list = field(default_factory=list)

    def holds(self, day):
        held = OptimizerPolicy.holds(self, day)
        self.seen.append([held, 0.0, day.value, day.ledger.cash])
        return False

    def decide(self, day):
        orders = OptimizerPolicy.decide(self, day)
        if orders is not None:
            price = dict(zip(day.assets, day.prices, strict=True))
            lots = [(day.ledger.lot(i), q) for i, q in orders.sells.items()]
            sold = sum(q * price[lot.asset] for lot, q in lots)
            self.seen[-1][1] = float(orders.buys @ day.prices) + sold
        return orders


@pytest.mark.parametrize(
    ("tax_aware", "tax_weight", "loss_factor"),
    [(False, 1.0, 1.0), (True, 1.0, 1.0), (True, 300.0, 0.0)],
)
def test_when_the_screen_holds_the_solver_does_not_trade(
    tax_aware, tax_weight, loss_factor
):
    prices = _prices()
    policy = Unscreened(
        100.0,
        tax_aware=tax_aware,
        trade_aversion=300.0,
        tax_weight=tax_weight,
        loss_factor=loss_factor,
    )
    config = BacktestConfig(risk_lookback=LOOKBACK)
    backtest(prices, _equal(prices), policy, config)
    held = [row[1:] for row in policy.seen if row[0]]
    assert len(held) > 10  # the test is not vacuous
    # at most the idle cash is spent, whose value the test bounds
    assert max((traded - cash) / value for traded, value, cash in held) < 1e-6
    assert any(not row[0] for row in policy.seen)


def test_screened_and_unscreened_backtests_agree():
    prices = _prices(n_days=120)
    config = BacktestConfig(risk_lookback=LOOKBACK)
    screened = backtest(
        prices, _equal(prices), OptimizerPolicy(100.0, trade_aversion=300.0), config
    )
    unscreened = backtest(
        prices, _equal(prices), Unscreened(100.0, trade_aversion=300.0), config
    )
    np.testing.assert_allclose(
        screened.daily["value"], unscreened.daily["value"], rtol=1e-7
    )


def test_more_trade_aversion_trades_less():
    prices = _prices()
    config = BacktestConfig(risk_lookback=LOOKBACK)
    policies = [
        OptimizerPolicy(100.0, tax_aware=False, trade_aversion=k, name=f"k={k}")
        for k in (1.0, 100.0, 1000.0)
    ]
    table = compare(prices, _equal(prices), policies, config)
    assert table["turnover_per_year"].is_monotonic_decreasing
    assert table["tracking_error"].is_monotonic_increasing


@dataclass(frozen=True)
class ThroughAccounts(OptimizerPolicy):
    """Solves from the Account and Market ``rebalance`` would check; records both."""

    seen: list = field(default_factory=list)

    def _snapshot(self, day):
        recent = day.ledger.recent_trades(day.date)
        account = Account(
            "backtest",
            day.ledger.cash,
            day.ledger.lots(),
            cash_flow=-day.ledger.tax_owed,
            recent_trades=recent if len(recent) else None,
            tax_rate_short=day.ledger.tax_rate_short,
            tax_rate_long=day.ledger.tax_rate_long,
        )
        targets = pd.Series(day.target, index=day.assets)
        targets[CASH] = 1.0 - day.target.sum()
        prices = pd.DataFrame(
            {"asset": day.assets, "price": day.prices, "cost_bps": day.cost_bps}
        )
        market = Market(as_of=day.date, prices=prices, risk_model=day.risk.model)
        checked = build_snapshot(account, targets, market)
        self.seen.append((OptimizerPolicy._snapshot(self, day), checked))
        return checked


def _assert_same(a, b):
    """Every field of two snapshots equal, exactly."""
    for name in (f.name for f in fields(a)):
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        elif isinstance(x, pd.Series):
            pd.testing.assert_series_equal(x, y, check_exact=True)
        elif isinstance(x, pd.Index):
            pd.testing.assert_index_equal(x, y, exact=True)
        elif hasattr(x, "G"):  # the risk root
            for part in ("G", "d", "loadings"):
                np.testing.assert_array_equal(getattr(x, part), getattr(y, part))
        elif hasattr(x, "toarray"):
            np.testing.assert_array_equal(x.toarray(), y.toarray())
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_the_policys_snapshot_is_the_one_rebalance_checks_from_an_account():
    prices = _prices(n_days=200, seed=3)
    target = pd.Series([0.3, 0.3, 0.35, 0.0], index=prices.columns)  # 5% cash
    config = BacktestConfig(risk_lookback=LOOKBACK)
    policy = ThroughAccounts(100.0, trade_aversion=30.0)
    checked = backtest(prices, target, policy, config)
    fast = backtest(prices, target, OptimizerPolicy(100.0, trade_aversion=30.0), config)
    assert len(policy.seen) > 20
    assert any(mine.recent_trades is not None for mine, _ in policy.seen)
    assert any(len(reference.lots) > 4 for _, reference in policy.seen)
    for mine, reference in policy.seen:
        _assert_same(mine, reference)
    np.testing.assert_array_equal(fast.daily.to_numpy(), checked.daily.to_numpy())


def _day_with_two_lots(ledger):
    """One day: asset A held as an old gain lot and a newer loss lot, target 0."""
    assets = pd.Index(["A", "B"])
    prices = np.array([100.0, 50.0])
    shares = np.array([ledger.shares()["A"], 0.0])
    value = float(shares @ prices) + ledger.cash
    return Day(
        date=pd.Timestamp("2026-06-01"),
        index=1,
        assets=assets,
        prices=prices,
        target=np.array([0.3, 0.6]),
        shares=shares,
        value=value,
        ledger=ledger,
        risk=Risk(assets, np.diag([0.04, 0.04])),
        last_rebalance=None,
        cost_bps=10.0,
    )


def test_tax_blind_optimizer_sells_first_in_first_out_and_tax_aware_by_tax():
    ledger = Ledger(20_000.0)
    ledger.buy(pd.Timestamp("2025-01-02"), "A", 60, 50.0)  # gain lot, long term
    ledger.buy(pd.Timestamp("2026-03-02"), "A", 60, 120.0)  # loss lot, short term
    day = _day_with_two_lots(ledger)  # A is 12,000 of 21,800: sell about half
    blind = OptimizerPolicy(100.0, tax_aware=False).decide(day)
    aware = OptimizerPolicy(100.0, tax_aware=True).decide(day)
    assert blind is not None
    assert aware is not None
    assert list(blind.sells) == ["A-1"]  # the oldest lot first
    assert list(aware.sells) == ["A-2"]  # the loss lot
    assert sum(blind.sells.values()) == pytest.approx(
        sum(aware.sells.values()), rel=0.2
    )


def test_a_held_asset_outside_the_days_assets_is_an_error_not_dropped():
    ledger = Ledger(20_000.0)
    ledger.buy(pd.Timestamp("2025-01-02"), "A", 60, 50.0)
    ledger.buy(pd.Timestamp("2025-01-02"), "C", 10, 50.0)  # no price on the day
    with pytest.raises(InputError) as error:
        OptimizerPolicy(100.0).decide(_day_with_two_lots(ledger))
    assert (error.value.asset, error.value.lot_id) == ("C", "C-2")


def test_fifo_sells_take_the_oldest_lots_first():
    ledger = Ledger(10_000.0)
    ledger.buy(pd.Timestamp("2024-12-02"), "A", 10, 10.0)
    ledger.buy(pd.Timestamp("2025-01-02"), "A", 10, 10.0)
    ledger.sell(pd.Timestamp("2025-03-03"), "A-2", 10, 8.0)  # a loss, held 60 days
    ledger.buy(pd.Timestamp("2025-03-10"), "A", 10, 9.0)  # A-3 replaces it: 01-09
    ledger.buy(pd.Timestamp("2025-03-10"), "A", 10, 9.0)  # A-4, held from 03-10
    assert ledger.lot("A-3").acquired == pd.Timestamp("2025-01-09")
    sells = fifo_sells(ledger, pd.Index(["A"]), np.array([15.0]))
    assert sells == {"A-1": 10.0, "A-3": 5.0}


@dataclass(frozen=True)
class Recorder:
    """Holds after the first day's purchase and keeps every day it saw."""

    days: list = field(default_factory=list)
    name: str = "recorder"

    def decide(self, day):
        self.days.append(day)


def test_risk_shrinkage_decides_as_the_plain_policy_on_the_shrunk_covariance():
    prices = _prices(n_days=220)
    recorder = Recorder()
    config = BacktestConfig(cost_bps=10.0, risk_lookback=LOOKBACK)
    backtest(prices, _equal(prices), recorder, config)
    shrunk = OptimizerPolicy(
        100.0, tax_aware=True, trade_aversion=100.0, risk_shrinkage=0.4
    )
    plain = OptimizerPolicy(100.0, tax_aware=True, trade_aversion=100.0)
    traded = differs = 0
    for day in recorder.days[::7]:
        covariance = day.risk.covariance
        mean_variance = np.diag(covariance).mean()  # the maths, written here again
        by_hand = 0.6 * covariance + 0.4 * mean_variance * np.eye(len(covariance))
        given = replace(day, risk=Risk(day.assets, by_hand))
        got, expected = shrunk.decide(day), plain.decide(given)
        assert (got is None) == (expected is None)
        unshrunk = plain.decide(day)
        differs += (got is None) != (unshrunk is None) or (
            got is not None and not np.allclose(got.buys, unshrunk.buys)
        )
        if got is not None:
            traded += 1
            np.testing.assert_allclose(got.buys, expected.buys, rtol=1e-9, atol=1e-9)
            assert got.sells.keys() == expected.sells.keys()
            np.testing.assert_allclose(
                list(got.sells.values()), list(expected.sells.values()), rtol=1e-9
            )
    assert 0 < traded < len(recorder.days[::7])  # both kinds of day are checked
    assert differs  # and the shrinkage changes decisions


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("risk_shrinkage", 1.5),
        ("risk_shrinkage", np.nan),
        ("loss_factor", -0.1),
        ("trade_aversion", -1.0),
        ("every", 0),
    ],
)
def test_a_policy_parameter_out_of_range_is_named(field_name, value):
    with pytest.raises(InputError) as err:
        OptimizerPolicy(**{field_name: value})
    assert err.value.field == field_name


def test_tax_owed_beyond_cash_is_raised_before_any_buy():
    """2025's tax on a $2,500 short-term gain, $1,020, settles with no cash:
    the policy's program must raise it (a withdrawal), so its orders are
    the ones executed; it planned buys the sales could not pay for, and
    the backtest cut them (a buy of 1,604 shares filled at 340)."""
    ledger = Ledger(5_000.0)
    ledger.buy(pd.Timestamp("2025-01-02"), "A", 100, 50.0)
    ledger.sell(pd.Timestamp("2025-06-02"), "A-1", 50, 100.0)
    ledger.buy(pd.Timestamp("2025-06-02"), "B", 100, 50.0)
    assert ledger.settle_year(2025) == pytest.approx(1_020.0)
    assert (ledger.cash, ledger.tax_owed) == (0.0, pytest.approx(1_020.0))
    assets = pd.Index(["A", "B"])
    prices = np.array([100.0, 50.0])
    shares = np.array([50.0, 100.0])
    day = Day(
        date=pd.Timestamp("2026-06-01"),
        index=1,
        assets=assets,
        prices=prices,
        target=np.array([0.2, 0.8]),
        shares=shares,
        value=float(shares @ prices) - ledger.tax_owed,
        ledger=ledger,
        risk=Risk(assets, np.diag([0.04, 0.04])),
        last_rebalance=None,
        cost_bps=10.0,
    )
    policy = OptimizerPolicy(100.0)
    assert not policy.holds(day)
    orders = policy.decide(day)
    assert orders is not None
    raised = sum(orders.sells.values()) * 100.0 * (1 - 1e-3)
    spent = float(orders.buys @ prices) * (1 + 1e-3)
    assert raised - spent >= 1_020.0 - 1e-6
