"""Shared tolerances and small data builders (all seeded, no network)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from models import Account, CovarianceRiskModel, Market

# One visible tolerance table.
ATOL_WEIGHT = 1e-6  # continuous weights, interior-point accuracy
RTOL_OBJECTIVE = 1e-5  # two formulations of one problem
ATOL_OBJECTIVE = 1e-8  # objective in fractions of V
ATOL_VALUE = 1e-2  # currency
ATOL_SHARES = 1e-4  # continuous share quantities

AS_OF = pd.Timestamp("2026-06-30")


def diagonal_market(
    prices: dict[str, float],
    variances: dict[str, float],
    *,
    cost_bps: float = 0.0,
    as_of: pd.Timestamp = AS_OF,
) -> Market:
    """Return a market with a diagonal covariance (independent assets)."""
    assets = list(prices)
    covariance = pd.DataFrame(
        np.diag([variances[a] for a in assets]), index=assets, columns=assets
    )
    table = pd.DataFrame(
        {"asset": assets, "price": [prices[a] for a in assets], "cost_bps": cost_bps}
    )
    return Market(as_of=as_of, prices=table, risk_model=CovarianceRiskModel(covariance))


def min_trade_market() -> Market:
    """Return A at $278.69 under a $987 minimum trade, and B at $29.53."""
    return Market(
        as_of=pd.Timestamp("2026-11-24"),
        prices=pd.DataFrame(
            {
                "asset": ["A", "B"],
                "price": [278.69, 29.53],
                "min_trade_value": [987.0, 0.0],
            }
        ),
        risk_model=CovarianceRiskModel(
            pd.DataFrame(
                [[0.07, 0.024], [0.024, 0.0944]], index=["A", "B"], columns=["A", "B"]
            )
        ),
    )


def lots(*rows: tuple[str, str, float, float, str]) -> pd.DataFrame:
    """Return a lots table from (asset, lot_id, quantity, cost_basis, acquired)."""
    return pd.DataFrame(
        rows, columns=["asset", "lot_id", "quantity", "cost_basis", "acquired"]
    )


def account(
    cash: float, *rows: tuple[str, str, float, float, str], **kwargs: object
) -> Account:
    """Return an account ``A1`` with the given cash and lots."""
    return Account("A1", cash, lots(*rows), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_diagonal_market() -> Callable[..., Market]:
    return diagonal_market


def account_value(acct: Account, market: Market) -> float:
    """Return cash plus the market value of the account's lots."""
    prices = acct.lots["asset"].map(market.prices["price"]).astype(float)
    return acct.cash + float((acct.lots["quantity"] * prices).sum())
