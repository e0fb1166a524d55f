"""The backtester against an independent simulation, and its invariants."""

import numpy as np
import pandas as pd
import pytest

from models.history import sp500_prices, synthetic_prices
from solver.dynamic import OptimizerPolicy
from solver.dynamic.policies import (
    band_policy,
    calendar_policy,
    tracking_error_policy,
)
from solver.dynamic.simulation import BacktestConfig, backtest, compare

LOOKBACK = 40
FREE = BacktestConfig(
    cost_bps=0.0, tax_rate_short=0.0, tax_rate_long=0.0, risk_lookback=LOOKBACK
)


def _prices(n_assets=5, n_days=400, seed=1):
    return synthetic_prices(n_assets, n_days, seed=seed, annual_volatility=0.3)


def _equal(prices):
    return pd.Series(1.0 / prices.shape[1], index=prices.columns)


def _simple_monthly(prices, target, initial, contribution=0.0):
    """Costless, taxless monthly rebalancing in a few lines of numpy."""
    p = prices.to_numpy()
    w = target.to_numpy()
    shares = w * initial / p[0]
    values = [initial]
    months = prices.index.month
    for t in range(1, len(p)):
        value = shares @ p[t]
        if months[t] != months[t - 1]:
            value += contribution
            shares = w * value / p[t]
        values.append(value)
    return np.array(values)


@pytest.mark.parametrize("contribution", [0.0, 5_000.0, -20_000.0])
def test_calendar_without_costs_or_tax_matches_a_simple_backtest(contribution):
    prices = _prices()
    target = _equal(prices)
    config = BacktestConfig(
        cost_bps=0.0,
        tax_rate_short=0.0,
        tax_rate_long=0.0,
        risk_lookback=LOOKBACK,
        contribution=contribution,
    )
    result = backtest(prices, target, calendar_policy("monthly"), config)
    expected = _simple_monthly(
        prices.iloc[LOOKBACK:], target, config.initial_value, contribution
    )
    np.testing.assert_allclose(result.daily["value"], expected, rtol=1e-9)
    months = prices.index[LOOKBACK:].month
    assert result.metrics["rebalances"] == int((np.diff(months) != 0).sum())


def test_cash_never_negative_and_costs_are_charged():
    prices = _prices()
    config = BacktestConfig(cost_bps=25.0, risk_lookback=LOOKBACK)
    result = backtest(prices, _equal(prices), band_policy(0.02), config)
    assert (result.daily["cash"] >= 0).all()
    traded = result.daily["traded"] * result.daily["value"].shift()
    # every dollar traded after day 0 paid 25 bp (day 0 is the initial purchase)
    day0 = result.daily["cost"].iloc[0]
    assert result.metrics["costs"] - day0 == pytest.approx(
        25e-4 * traded.iloc[1:].sum(), rel=1e-2
    )


@pytest.mark.parametrize("contribution", [-20_000.0, 5_000.0])
def test_costs_are_what_the_value_lost_to_trading(contribution):
    """Without tax, each day's value changes by the market's move on the
    shares held, the flow and minus the costs: the costs reported must be
    that gap, withdrawals' sales included."""
    prices = _prices()
    config = BacktestConfig(
        cost_bps=10.0,
        tax_rate_short=0.0,
        tax_rate_long=0.0,
        risk_lookback=LOOKBACK,
        contribution=contribution,
    )
    result = backtest(prices, _equal(prices), band_policy(0.02), config)
    daily = result.daily
    p = prices.loc[daily.index, result.weights.columns].to_numpy()
    shares = result.weights.to_numpy() * daily["value"].to_numpy()[:, None] / p
    moved = (shares[:-1] * (p[1:] - p[:-1])).sum(axis=1)
    gap = moved + daily["contribution"].iloc[1:] - daily["value"].diff().iloc[1:]
    np.testing.assert_allclose(gap, daily["cost"].iloc[1:], atol=1e-6)
    sold_for_flow = daily["contribution"] < 0
    assert (daily["traded"][sold_for_flow] > 0).all()


def test_wider_bands_trade_less_and_track_worse():
    prices = _prices(n_days=600)
    target = _equal(prices)
    config = BacktestConfig(risk_lookback=LOOKBACK)
    table = compare(
        prices,
        target,
        [band_policy(0.01), band_policy(0.03), band_policy(0.08)],
        config,
    )
    assert table["turnover_per_year"].is_monotonic_decreasing
    assert table["tracking_error"].is_monotonic_increasing


def test_band_to_edge_trades_less_than_band_to_target():
    prices = _prices(n_days=600)
    config = BacktestConfig(risk_lookback=LOOKBACK)
    table = compare(
        prices,
        _equal(prices),
        [band_policy(0.03), band_policy(0.03, to_edge=True)],
        config,
    )
    assert table["turnover_per_year"].iloc[1] < table["turnover_per_year"].iloc[0]


def test_tax_aware_optimizer_avoids_wash_sales_and_realizes_less_gain():
    prices = _prices(n_days=320, seed=4)
    target = _equal(prices)
    config = BacktestConfig(risk_lookback=LOOKBACK)
    aware = backtest(prices, target, OptimizerPolicy(every=5, name="aware"), config)
    assert aware.metrics["rebalances"] > 0
    assert aware.metrics["wash_sale_disallowed"] == 0.0
    assert (aware.daily["cash"] >= 0).all()
    blind = backtest(
        prices,
        target,
        OptimizerPolicy(tax_aware=False, every=5, name="blind"),
        config,
    )
    assert blind.metrics["wash_sale_disallowed"] > 0  # tax-blind trading washes
    assert aware.metrics["realized_gains"] < blind.metrics["realized_gains"]
    assert aware.metrics["taxes_paid"] < blind.metrics["taxes_paid"]


def test_tracking_error_policy_fires_on_its_threshold():
    prices = _prices()
    config = BacktestConfig(risk_lookback=LOOKBACK)
    loose = backtest(prices, _equal(prices), tracking_error_policy(0.5), config)
    tight = backtest(prices, _equal(prices), tracking_error_policy(0.005), config)
    assert loose.metrics["rebalances"] == 0
    assert tight.metrics["rebalances"] > 0


def test_real_sp500_history_runs_offline():
    prices = sp500_prices("2020-01-01", "2021-12-31")
    assert prices.shape[1] == 20
    assert prices.index.is_monotonic_increasing
    assert np.isfinite(prices.to_numpy()).all()
    target = _equal(prices)
    result = backtest(prices, target, calendar_policy("quarterly"), BacktestConfig())
    # the first 252 days feed the risk estimate; then one rebalance per new quarter
    quarters = prices.index[252:].to_period("Q")
    assert result.metrics["rebalances"] == (quarters[1:] != quarters[:-1]).sum() == 4
    assert result.metrics["after_tax_value"] < result.metrics["final_value"]


def _steady(n_assets=3, n_days=LOOKBACK + 300, daily=0.0004):
    """Prices that all grow by ``daily`` every day (no risk, no drift)."""
    dates = pd.bdate_range("2015-01-02", periods=n_days)
    growth = (1 + daily) ** np.arange(n_days)
    return pd.DataFrame(
        {f"S{k}": 50.0 * (k + 1) * growth for k in range(n_assets)}, index=dates
    )


def test_returns_time_and_money_weighted_equal_the_price_growth():
    # every asset grows 0.04% a day: any policy earns exactly that, before tax
    prices = _steady()
    config = BacktestConfig(
        cost_bps=0.0,
        tax_rate_short=0.0,
        tax_rate_long=0.0,
        risk_lookback=LOOKBACK,
        contribution=2_000.0,
    )
    metrics = backtest(
        prices, _equal(prices), calendar_policy("monthly"), config
    ).metrics
    expected = 1.0004**252 - 1
    assert metrics["pre_tax_return"] == pytest.approx(expected, rel=1e-9)
    assert metrics["pre_tax_irr"] == pytest.approx(expected, rel=1e-6)
    assert metrics["after_tax_irr"] == pytest.approx(expected, rel=1e-6)
    assert metrics["tax_drag"] == pytest.approx(0.0, abs=1e-12)


def test_after_tax_return_of_buy_and_hold_taxes_the_gain_at_the_end():
    # one asset, never rebalanced: the only tax is the long-term tax at the end
    prices = _steady(n_assets=1, n_days=LOOKBACK + 400)
    config = BacktestConfig(cost_bps=0.0, risk_lookback=LOOKBACK)
    target = pd.Series({"S0": 1.0})
    result = backtest(prices, target, calendar_policy("annual"), config)
    metrics = result.metrics
    years = (len(result.daily) - 1) / 252
    gain = 1e6 * (1.0004 ** (len(result.daily) - 1) - 1)
    after = (1e6 + gain * (1 - 0.238)) / 1e6  # held over a year: long term
    assert metrics["deferred_tax"] == pytest.approx(0.238 * gain, rel=1e-9)
    assert metrics["after_tax_return"] == pytest.approx(after ** (1 / years) - 1)
    assert metrics["after_tax_return_kept"] == pytest.approx(metrics["pre_tax_return"])
    assert metrics["taxes_paid"] == 0.0


def test_a_year_is_settled_once_its_wash_sale_window_has_closed():
    prices = _prices(n_days=LOOKBACK + 600, seed=3)
    config = BacktestConfig(risk_lookback=LOOKBACK)
    result = backtest(prices, _equal(prices), calendar_policy("monthly"), config)
    paid = result.daily.index[result.daily["tax"] != 0]
    assert len(paid) >= 1
    for day in paid:  # the first trading day on or after January 31
        assert (day.month, day.day) >= (1, 31)
        assert day == result.daily.index[result.daily.index >= f"{day.year}-01-31"][0]
