"""Does a risk model read as annual variance of returns? A plausibility check.

Every tracking error is read in the risk model's units, annual variance of
returns (0.04 is a 20% volatility). A model of daily returns makes them all
about 252 times smaller; one fitted on prices makes them meaningless.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from models.errors import RiskScaleWarning
from models.risk import CovarianceRiskModel, FactorRiskModel, RiskModel

MAX_PLAUSIBLE_VOLATILITY = 3.0  # 300% a year: a model fitted on prices?
MIN_PLAUSIBLE_MEDIAN_VOLATILITY = 0.03  # 3% a year: daily (a stock's ~1-2.5%)?


def scale_problem(volatility: np.ndarray, assets: pd.Index) -> str | None:
    """Say why annual volatilities ``volatility`` of ``assets`` look wrong, if so."""
    if not len(volatility):
        return None
    top = int(np.argmax(volatility))
    if volatility[top] > MAX_PLAUSIBLE_VOLATILITY:
        return (
            f"risk model gives {assets[top]!r} a volatility of "
            f"{volatility[top]:.0%} a year; the model must be the annual "
            "covariance of returns (not of prices), or every tracking error is wrong"
        )
    median = float(np.median(volatility))
    if median < MIN_PLAUSIBLE_MEDIAN_VOLATILITY:
        return (
            f"the risk model's median asset volatility is {median:.2%} a year; "
            "if it is a daily covariance, multiply it by 252 (tracking errors "
            "are annual)"
        )
    return None


def warn_if_implausible(
    volatility: np.ndarray, assets: pd.Index, account_id: str | None = None
) -> None:
    """Warn (``RiskScaleWarning``) when the volatilities look wrong."""
    problem = scale_problem(volatility, assets)
    if problem is not None:
        where = f"account {account_id!r}: " if account_id else ""
        warnings.warn(where + problem, RiskScaleWarning, stacklevel=3)


def model_volatility(model: RiskModel) -> pd.Series:
    """Return every covered asset's volatility, ``sqrt(diag(Sigma))``."""
    if isinstance(model, CovarianceRiskModel):
        variance = np.diag(model.covariance.to_numpy())
        return pd.Series(np.sqrt(variance), index=model.assets)
    if isinstance(model, FactorRiskModel):
        assets = model.assets
        b = model.loadings.loc[assets].to_numpy()
        f = model.factor_covariance.to_numpy()
        variance = np.einsum("ij,jk,ik->i", b, f, b)
        variance += model.specific_variance.loc[assets].to_numpy()
        return pd.Series(np.sqrt(variance), index=assets)
    universe = model.assets
    return pd.Series(model.root(universe).volatility(), index=universe)
