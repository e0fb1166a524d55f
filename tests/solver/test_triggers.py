"""Triggers, the drift command, and trigger-gated batches."""

import numpy as np
import pandas as pd
import pytest

import solver
from models import LinearCost, TaxCost, TrackingError
from models.errors import InputError
from solver.batch.cli import main
from solver.batch.config import RunConfig
from solver.batch.engine import rebalance_batch
from solver.result import Status
from solver.triggers import (
    AnyTrigger,
    Calendar,
    CashFlow,
    Drift,
    DriftBands,
    TrackingErrorTrigger,
    parse_trigger,
)
from tests.conftest import account, diagonal_market
from tests.solver.batch_data import write_batch

DAY = pd.Timestamp("2026-06-30")


def _drift(current, target, *, cash=0.0, target_cash=0.0, te=0.0, last=None):
    return Drift(
        account_id="A1",
        as_of=DAY,
        universe=pd.Index([f"X{i}" for i in range(len(current))]),
        current=np.asarray(current, dtype=float),
        target=np.asarray(target, dtype=float),
        cash=cash,
        target_cash=target_cash,
        tracking_error=te,
        last_rebalance=last,
    )


def test_absolute_band_fires_only_beyond_its_width():
    bands = DriftBands(absolute=0.05)
    assert not bands.check(_drift([0.54, 0.46], [0.5, 0.5])).fired
    firing = bands.check(_drift([0.56, 0.44], [0.5, 0.5]))
    assert firing.fired
    assert "X0 +6.00%" in firing.reason


def test_five_twenty_five_rule_takes_the_narrower_band():
    # targets 60% and 10%: bands min(5pp, 25% of target) = 5pp and 2.5pp
    bands = DriftBands(absolute=0.05, relative=0.25)
    np.testing.assert_allclose(bands.bands(np.array([0.6, 0.1])), [0.05, 0.025])
    assert not bands.check(_drift([0.61, 0.12, 0.27], [0.6, 0.1, 0.3])).fired
    assert bands.check(_drift([0.60, 0.13, 0.27], [0.6, 0.1, 0.3])).fired


def test_edge_weights_move_breaches_to_the_edge_and_keep_the_total():
    # X0 at 49% against 40% +- 5pp goes to 45%; the 4pp freed go to the
    # others (inside their bands) in proportion to their equal targets
    bands = DriftBands(absolute=0.05)
    d = _drift([0.49, 0.17, 0.18, 0.16], [0.4, 0.2, 0.2, 0.2])
    third = 0.04 / 3
    expected = [0.45, 0.17 + third, 0.18 + third, 0.16 + third]
    np.testing.assert_allclose(bands.edge_weights(d), expected)


def test_calendar_fires_once_per_period():
    monthly = Calendar("monthly")
    assert monthly.check(_drift([0.5], [0.5])).fired  # never rebalanced
    same_month = _drift([0.5], [0.5], last=pd.Timestamp("2026-06-02"))
    assert not monthly.check(same_month).fired
    assert Calendar("quarterly").check(same_month).fired is False
    last_quarter = _drift([0.5], [0.5], last=pd.Timestamp("2026-03-31"))
    assert Calendar("quarterly").check(last_quarter).fired
    assert not Calendar("annual").check(last_quarter).fired


def test_tracking_error_and_cash_flow_thresholds():
    assert TrackingErrorTrigger(0.01).check(_drift([0.5], [0.5], te=0.011)).fired
    assert not TrackingErrorTrigger(0.01).check(_drift([0.5], [0.5], te=0.01)).fired
    deposit = _drift([0.45], [0.5], cash=0.08, target_cash=0.02)
    assert CashFlow(0.05).check(deposit).fired
    assert not CashFlow(0.1).check(deposit).fired


def test_any_trigger_names_what_fired():
    triggers = AnyTrigger((DriftBands(0.05), TrackingErrorTrigger(0.01)))
    firing = triggers.check(_drift([0.5, 0.5], [0.5, 0.5], te=0.02))
    assert firing.fired
    assert firing.reason.startswith("tracking_error")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("drift:0.05", DriftBands(absolute=0.05)),
        ("relative-drift:0.2", DriftBands(absolute=None, relative=0.2)),
        ("tracking_error:0.01", TrackingErrorTrigger(0.01)),
        ("cash:0.02", CashFlow(0.02)),
        ("calendar:monthly", Calendar("monthly")),
    ],
)
def test_parse_trigger(text, expected):
    assert parse_trigger(text) == expected


@pytest.mark.parametrize("text", ["drift", "drift:x", "bands:0.1", "calendar:weekly"])
def test_parse_trigger_rejects_bad_text(text):
    with pytest.raises(InputError, match=r"trigger|calendar"):
        parse_trigger(text)


def test_drift_of_a_hand_computed_account():
    # X: 30 shares at 10 = 300, Y: 10 at 20 = 200, cash 500 -> V = 1000
    market = diagonal_market({"X": 10.0, "Y": 20.0}, {"X": 0.04, "Y": 0.09})
    acct = account(
        500.0, ("X", "x1", 30, 9.0, "2025-01-02"), ("Y", "y1", 10, 25.0, "2025-01-02")
    )
    targets = pd.Series({"X": 0.5, "Y": 0.5})
    result = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        trigger=TrackingErrorTrigger(0.2),
    )
    # active weights (-0.2, -0.3): TE = sqrt(0.04 * 0.2^2 + 0.09 * 0.3^2) = 9.85%
    te = np.sqrt(0.04 * 0.2**2 + 0.09 * 0.3**2)
    assert result.status is Status.NO_TRADE
    assert result.summary["tracking_error_before"] == pytest.approx(te)
    assert result.summary["tracking_error_after"] == pytest.approx(te)
    assert result.summary["turnover"] == 0.0
    assert result.trades.empty
    assert "tracking error" in result.message
    fired = solver.rebalance(
        acct,
        targets=targets,
        market=market,
        objective=(TrackingError(100.0), LinearCost(), TaxCost()),
        trigger=TrackingErrorTrigger(0.05),
    )
    assert fired.status is Status.OPTIMAL


def test_batch_with_a_trigger_solves_only_the_accounts_that_need_it(tmp_path):
    write_batch(tmp_path / "in", n_accounts=8)
    config = RunConfig(as_of="2026-11-24")
    plain = rebalance_batch(tmp_path / "in", tmp_path / "all", config=config, workers=1)
    before = plain.summary.set_index("account_id")["tracking_error_before"]
    threshold = float(before.median())
    gated = rebalance_batch(
        tmp_path / "in",
        tmp_path / "gated",
        config=RunConfig(as_of="2026-11-24", triggers=(f"tracking-error:{threshold}",)),
        workers=1,
    )
    status = gated.summary.set_index("account_id")["status"]
    assert set(status[status == "no_trade"].index) == set(
        before[before <= threshold].index
    )
    assert set(status[status == "optimal"].index) == set(
        before[before > threshold].index
    )


def test_drift_command_reports_every_account(tmp_path, capsys):
    tables = write_batch(tmp_path / "in", n_accounts=6)
    accounts = tables["accounts"].copy()
    accounts.loc[0, "model_id"] = "missing"
    accounts.to_parquet(tmp_path / "in" / "accounts.parquet", index=False)
    code = main(
        [
            "drift",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "csv",
            "--trigger",
            "drift:0.02",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "drift:0.02" in printed
    drift = pd.read_csv(tmp_path / "out" / "drift.csv")
    assert list(drift["account_id"]) == list(accounts["account_id"])
    assert drift.loc[0, "status"] == "invalid_input"
    weights = pd.read_csv(tmp_path / "out" / "drift_weights.csv")
    # weights of each account plus its cash add up to 1
    valid = drift.iloc[1:].set_index("account_id")
    invested = weights.groupby("account_id")["current"].sum()
    np.testing.assert_allclose(invested + valid["cash"], 1.0)
    largest = (
        weights.assign(size=weights["drift"].abs()).groupby("account_id")["size"].max()
    )
    np.testing.assert_allclose(valid["max_abs_drift"], largest[valid.index])
    assert (
        valid["status"] == np.where(largest[valid.index] > 0.02, "trade", "no_trade")
    ).all()


def test_drift_says_trade_for_what_the_batch_solves_whatever_the_trigger(tmp_path):
    """An account with a cash flow, and a household's accounts, are solved by
    ``batch`` even when no trigger fires; ``drift`` must say so."""
    tables = write_batch(tmp_path / "in", n_accounts=5)
    accounts = tables["accounts"]
    accounts["cash_flow"] = [np.nan, 5_000.0, np.nan, np.nan, np.nan]
    accounts["household_id"] = [None, None, "H1", "H1", None]
    accounts.loc[3, "model_id"] = accounts.loc[
        2, "model_id"
    ]  # one household, one model
    accounts.to_parquet(tmp_path / "in" / "accounts.parquet", index=False)
    never = "drift:0.99"  # no account drifts this far
    assert (
        main(
            [
                "drift",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "d"),
                "--format",
                "csv",
                "--trigger",
                never,
            ]
        )
        == 0
    )
    drift = pd.read_csv(tmp_path / "d" / "drift.csv").set_index("account_id")
    config = RunConfig(as_of="2026-11-24", max_turnover=0.1, triggers=(never,))
    batch = rebalance_batch(tmp_path / "in", tmp_path / "b", config=config, workers=1)
    solved = batch.summary.set_index("account_id")["status"] != "no_trade"
    assert not drift["fires"].any()
    assert (drift["status"] == np.where(solved[drift.index], "trade", "no_trade")).all()
    assert list(solved) == [False, True, True, True, False]
    assert "cash flow" in drift.iloc[1]["reason"]
    assert "household H1" in drift.iloc[2]["reason"]


def test_edge_weights_keep_inside_assets_inside_their_bands():
    # X0 45% -> 30% frees 15pp, X4 2% -> 10% takes 8pp: 7pp for X1-X3 by
    # their equal targets would take X1 from 29% to 31.3%, past its 30%
    # edge; it stops there and X2, X3 share the other 6pp: 15% each
    bands = DriftBands(absolute=0.10)
    d = _drift([0.45, 0.29, 0.12, 0.12, 0.02], [0.2] * 5)
    expected = [0.30, 0.30, 0.15, 0.15, 0.10]
    np.testing.assert_allclose(bands.edge_weights(d), expected)


def test_edge_weights_beyond_every_band_spread_the_rest_by_target():
    # 20% in cash: the edges (49% each) would invest 98%, but the total
    # invested stays 80%, so the 18pp too much come off both by target
    bands = DriftBands(absolute=0.01)
    d = _drift([0.45, 0.35], [0.5, 0.5], cash=0.2, target_cash=0.0)
    np.testing.assert_allclose(bands.edge_weights(d), [0.40, 0.40])


def test_edge_weights_use_the_moved_assets_bands_when_the_others_are_full():
    # X0 25% -> 35% needs 10pp, X1 50% -> 45% frees 5pp: 5pp must come off,
    # and X2, inside at its lower edge (15%), has none to give; X1 can give
    # it within its band (45% -> 40%). Spread by target over all it put X0
    # and X2 below their bands (33%, 14%).
    bands = DriftBands(absolute=0.05)
    d = _drift([0.25, 0.50, 0.15], [0.4, 0.4, 0.2], cash=0.10, target_cash=0.0)
    np.testing.assert_allclose(bands.edge_weights(d), [0.35, 0.40, 0.15])


def test_edge_weights_take_from_untargeted_assets_and_never_go_below_zero():
    # X0 88.3% under its band (93.8% +- 5pp) needs 0.56pp; X1, untargeted
    # and inside its band [0, 5%], gives them: by target it had no share
    bands = DriftBands(absolute=0.05)
    d = _drift([0.88258, 0.02327], [0.93817, 0.0], cash=0.09415, target_cash=0.06183)
    weights = bands.edge_weights(d)
    np.testing.assert_allclose(weights, [0.88817, 0.01768])
    # no room in any band: X1 may go to zero, never below
    short = _drift(
        [0.04021, 0.86316], [0.02879, 0.97121], cash=0.09663, target_cash=0.0
    )
    weights = bands.edge_weights(short)
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(), 0.90337)
