"""Bad input ends in a clear error or a valid result, never a traceback.

Batch level: a small valid batch, corrupted by hypothesis, either raises
``InputError`` (and writes no ``summary``/``trades``) or answers every account
once with a docs/DATA.md status. API level: the same for ``solver.rebalance``.
Numerics: one account at many scales solves to the same weights.

Run with ``pytest --hypothesis-show-statistics`` to see how many cases ran and
the share of each corruption and outcome (``event``). Regressions for the
bugs these tests found are in ``test_bad_input.py``.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import solver
from models import (
    Account,
    CovarianceRiskModel,
    InputError,
    LinearCost,
    Market,
    MinCash,
    NoBuyAndSell,
    TaxCost,
    TrackingError,
)
from solver.result import ANSWERED, RebalanceResult, SolveOptions
from tests.conftest import ATOL_WEIGHT, diagonal_market
from tests.solver.bad_accounts import AS_OF, Case, corrupted_cases
from tests.solver.bad_tables import corrupted_batches
from tests.solver.batch_contract import (
    STATUSES,
    TRADED,
    check_trades,
    outcome,
    run_batch,
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
OBJECTIVE = (TrackingError(100.0), LinearCost(), TaxCost())
CONSTRAINTS = (MinCash(0.0), NoBuyAndSell())


@settings(FUZZ, max_examples=50)
@given(case=corrupted_batches())
def test_batch_bad_input_ends_in_a_clear_error_or_a_full_answer(case):
    tables, fmt, labels = case
    for label in labels:
        event(label)
    event(outcome(run_batch(tables, fmt)))


def rebalance_case(
    case: Case, *, fractional: bool, rounding: str
) -> RebalanceResult | InputError:
    """Build the account and market from the pieces and rebalance."""
    try:
        account = Account(
            "A1", case["cash"], case["lots"], fractional_shares=fractional
        )
        market = Market(
            as_of=AS_OF,
            prices=case["prices"],
            risk_model=CovarianceRiskModel(case["covariance"]),
        )
        return solver.rebalance(
            account,
            targets=case["targets"],
            market=market,
            objective=OBJECTIVE,
            constraints=CONSTRAINTS,
            options=SolveOptions(rounding=rounding),
        )
    except InputError as err:
        return err


# corrupted numbers make absurd risk models: the scale warning is expected
@pytest.mark.filterwarnings("ignore::models.errors.RiskScaleWarning")
@settings(FUZZ, max_examples=300)
@given(case=corrupted_cases())
def test_rebalance_bad_input_ends_in_input_error_or_a_status(case):
    pieces, labels, fractional, rounding = case
    for label in labels:
        event(label)
    out = rebalance_case(pieces, fractional=fractional, rounding=rounding)
    if isinstance(out, InputError):
        event("InputError")
        assert out.field, str(out)
        assert f"field={out.field!r}" in str(out)
        return
    event(f"returned: {out.status}")
    assert str(out.status) in STATUSES
    assert out.summary["status"] == str(out.status)
    if out.status not in ANSWERED:
        assert out.message.strip()
    if str(out.status) not in TRADED:
        assert out.trades.empty
    check_trades(out.trades)
    lot_ids = set(pieces["lots"]["lot_id"].astype(str))
    assert set(out.trades["lot_id"].dropna()) <= lot_ids


# Numerics: the formulation works in fractions of the account value, so the
# same weights at any scale give the same continuous answer.
BASE_PRICES = {"W": 1.0, "X": 2.5, "Y": 7.0, "Z": 10.0}  # scaled together
VARIANCES = {"W": 0.04, "X": 0.09, "Y": 0.02, "Z": 0.06}
CURRENT = {"W": 0.35, "X": 0.10, "Y": 0.25, "Z": 0.22}  # rest is cash
BASIS_RATIO = {"W": 0.6, "X": 1.3, "Y": 1.0, "Z": 0.9}  # cost basis / price
TARGETS = pd.Series({"W": 0.25, "X": 0.25, "Y": 0.25, "Z": 0.20, "CASH": 0.05})
TOP_PRICE = 5e5 / max(BASE_PRICES.values())  # keeps every price <= $500,000


def continuous_weights(value: float, price_scale: float) -> pd.Series:
    """Solve the same account worth ``value`` with prices times ``price_scale``."""
    prices = {a: p * price_scale for a, p in BASE_PRICES.items()}
    market = diagonal_market(prices, VARIANCES, cost_bps=5.0, as_of=AS_OF)
    rows = [
        (a, f"{a}-1", CURRENT[a] * value / p, BASIS_RATIO[a] * p, "2020-01-02")
        for a, p in prices.items()
    ]
    lots = pd.DataFrame(
        rows, columns=["asset", "lot_id", "quantity", "cost_basis", "acquired"]
    )
    cash = value * (1 - sum(CURRENT.values()))
    result = solver.rebalance(
        Account("N1", cash, lots, fractional_shares=True),
        targets=TARGETS,
        market=market,
        objective=OBJECTIVE,
        constraints=CONSTRAINTS,
        options=SolveOptions(rounding="none"),
    )
    assert result.status == "optimal", result.message
    return result.weights["continuous"]


@settings(FUZZ, max_examples=40)
@given(
    value_exponent=st.floats(3, 10),  # $1,000 to $10B
    price_exponent=st.floats(-2, float(np.log10(TOP_PRICE))),  # $0.01 and up
)
def test_rebalance_continuous_weights_do_not_depend_on_scale(
    value_exponent, price_exponent
):
    reference = continuous_weights(1e6, 1.0)
    got = continuous_weights(10**value_exponent, 10**price_exponent)
    event(f"account value 1e{int(value_exponent)}")
    np.testing.assert_allclose(got, reference, atol=ATOL_WEIGHT)
