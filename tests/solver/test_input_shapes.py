"""The shapes a pandas user passes give the canonical answer or a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solver
from models import (
    CovarianceRiskModel,
    LinearCost,
    Market,
    MinCash,
    TrackingError,
)
from models.errors import RiskScaleWarning
from models.synthetic import synthetic_account, synthetic_market, synthetic_targets

MARKET = synthetic_market(12, n_factors=3, seed=3)
TARGETS = synthetic_targets(MARKET, seed=3, n_holdings=9)
ACCOUNT = synthetic_account(MARKET, TARGETS, account_id="SHAPES", seed=3)
OBJECTIVE = (TrackingError(100.0), LinearCost())
PRICE_TABLE = MARKET.prices.reset_index()[["asset", "price"]]


def targets_as(shape: str, order: list[int]) -> object:
    """Return the targets in one of the shapes a user might pass."""
    series = TARGETS.iloc[order]
    if shape == "series":
        return series
    if shape == "dict":
        return {str(k): float(v) for k, v in series.items()}
    if shape == "frame":
        return series.rename("weight").rename_axis("asset").reset_index()
    return series.rename("weight").to_frame()  # indexed by asset


def prices_as(shape: str) -> object:
    """Return the prices (no other columns) in one of the shapes a user might pass."""
    if shape == "table":
        return PRICE_TABLE
    if shape == "indexed":
        return PRICE_TABLE.set_index("asset")
    if shape == "series":
        return PRICE_TABLE.set_index("asset")["price"]
    return dict(zip(PRICE_TABLE["asset"], PRICE_TABLE["price"], strict=True))


def orders(targets: object, prices: object) -> pd.DataFrame:
    """Return the orders (asset, side, quantity) of the shared account."""
    market = Market(MARKET.as_of, prices, MARKET.risk_model)  # type: ignore[arg-type]
    result = solver.rebalance(
        ACCOUNT,
        targets=targets,  # type: ignore[arg-type]
        market=market,
        objective=OBJECTIVE,
        constraints=(MinCash(0.0),),
    )
    assert result.status == "optimal"
    trades = result.trades.groupby(["asset", "side"])["quantity"].sum()
    return trades.reset_index()


CANONICAL = orders(TARGETS, PRICE_TABLE)


@settings(max_examples=20, deadline=None)
@given(
    target_shape=st.sampled_from(["series", "dict", "frame", "indexed"]),
    price_shape=st.sampled_from(["table", "indexed", "series", "dict"]),
    order=st.permutations(list(range(len(TARGETS)))),
)
def test_every_shape_gives_the_canonical_orders(
    target_shape: str, price_shape: str, order: list[int]
) -> None:
    got = orders(targets_as(target_shape, order), prices_as(price_shape))
    assert len(CANONICAL)  # the account does trade
    pd.testing.assert_frame_equal(got, CANONICAL)


def test_an_empty_objective_is_an_input_error() -> None:
    with pytest.raises(solver.InputError, match="empty objective") as caught:
        solver.rebalance(ACCOUNT, targets=TARGETS, market=MARKET, objective=())
    assert caught.value.field == "objective"
    assert caught.value.account_id == "SHAPES"


def test_a_constraint_in_the_objective_is_an_input_error() -> None:
    with pytest.raises(solver.InputError, match="not an objective term"):
        solver.rebalance(
            ACCOUNT,
            targets=TARGETS,
            market=MARKET,
            objective=(TrackingError(1.0), MinCash(0.0)),  # type: ignore[arg-type]
        )


def test_a_price_history_is_refused_with_a_hint() -> None:
    history = pd.DataFrame(
        [PRICE_TABLE["price"].to_numpy()] * 3,
        index=pd.date_range("2026-01-01", periods=3),
        columns=PRICE_TABLE["asset"],
    )
    with pytest.raises(solver.InputError, match=r"iloc\[-1\]"):
        Market(MARKET.as_of, history, MARKET.risk_model)
    with pytest.raises(solver.InputError, match="indexed by dates"):
        solver.rebalance(
            ACCOUNT, targets=history.iloc[:, 0], market=MARKET, objective=OBJECTIVE
        )


def test_targets_of_another_type_name_the_type() -> None:
    with pytest.raises(solver.InputError, match="got list"):
        solver.rebalance(
            ACCOUNT,
            targets=[0.5, 0.5],  # type: ignore[arg-type]
            market=MARKET,
            objective=OBJECTIVE,
        )


def covariance_of(volatility: float) -> CovarianceRiskModel:
    """Return a diagonal model with every asset at ``volatility`` a year."""
    assets = PRICE_TABLE["asset"]
    variance = np.diag(np.full(len(assets), volatility**2))
    return CovarianceRiskModel(pd.DataFrame(variance, index=assets, columns=assets))


@pytest.mark.parametrize(
    ("volatility", "says"),
    [(60.0, "not of prices"), (0.0175, "multiply it by 252")],  # 0.0175: a day
)
def test_an_implausible_risk_scale_warns(volatility: float, says: str) -> None:
    market = Market(MARKET.as_of, PRICE_TABLE, covariance_of(volatility))
    with pytest.warns(RiskScaleWarning, match=says):
        solver.rebalance(ACCOUNT, targets=TARGETS, market=market, objective=OBJECTIVE)


def test_a_plausible_risk_scale_does_not_warn() -> None:
    market = Market(MARKET.as_of, PRICE_TABLE, covariance_of(0.25))
    # the suite turns warnings into errors: a warning here fails the test
    result = solver.rebalance(
        ACCOUNT, targets=TARGETS, market=market, objective=OBJECTIVE
    )
    assert result.status == "optimal"
