"""Risk models estimated from a returns history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.errors import InputError
from models.risk import CovarianceRiskModel, FactorRiskModel


def shrunk_covariance(
    returns: pd.DataFrame,
    *,
    shrinkage: float | None = None,
    periods_per_year: int = 252,
) -> CovarianceRiskModel:
    """Estimate a covariance shrunk towards a scaled identity.

    Parameters
    ----------
    returns : pd.DataFrame
        Periodic returns, index dates, one column per asset; no missing values.
    shrinkage : float or None
        Weight on the target in [0, 1]; ``None`` uses the Ledoit-Wolf (2004)
        optimal weight.
    periods_per_year : int
        Annualisation factor applied to the estimate.

    Returns
    -------
    CovarianceRiskModel
        The annualised covariance.

    Notes
    -----
    ``Sigma = delta * mu * I + (1 - delta) * S`` with ``S`` the sample
    covariance (divisor T) and ``mu = trace(S) / n``.
    """
    X = _centred(returns)
    if shrinkage is not None and not 0 <= shrinkage <= 1:
        raise InputError(f"must be in [0, 1], got {shrinkage!r}", field="shrinkage")
    sigma = shrunk_covariance_matrix(X, shrinkage) * periods_per_year
    labels = returns.columns.astype(str)
    return CovarianceRiskModel(pd.DataFrame(sigma, index=labels, columns=labels))


def shrunk_covariance_matrix(X: np.ndarray, shrinkage: float | None) -> np.ndarray:
    """Return ``shrinkage * mu I + (1 - shrinkage) * S`` for centred returns ``X``.

    ``None`` uses the Ledoit-Wolf weight. Per period, not annualised.
    """
    T, n = X.shape
    sample = X.T @ X / T
    mu = np.trace(sample) / n
    if shrinkage is None:
        shrinkage = ledoit_wolf_shrinkage(X)
    matrix: np.ndarray = (1 - shrinkage) * sample + shrinkage * mu * np.eye(n)
    return matrix


def ledoit_wolf_shrinkage(X: np.ndarray) -> float:
    """Return the Ledoit-Wolf weight on ``mu I`` for centred returns ``X``."""
    T, n = X.shape
    sample = X.T @ X / T
    mu = np.trace(sample) / n
    delta2 = np.sum((sample - mu * np.eye(n)) ** 2) / n
    if delta2 <= 0:
        return 1.0
    # mean over t of ||x_t x_t' - S||_F^2, expanded so no n x n x T array is formed
    row_norms = np.sum(X**2, axis=1)
    beta2 = (np.sum(row_norms**2) / T - np.sum(sample**2)) / (T * n)
    return float(min(max(beta2, 0.0), delta2) / delta2)


def pca_factor_model(
    returns: pd.DataFrame, *, n_factors: int, periods_per_year: int = 252
) -> FactorRiskModel:
    """Estimate a statistical factor model from principal components.

    Parameters
    ----------
    returns : pd.DataFrame
        Periodic returns, index dates, one column per asset; no missing values.
    n_factors : int
        Number of principal components kept as factors (``pc1``...).
    periods_per_year : int
        Annualisation factor.

    Returns
    -------
    FactorRiskModel
        ``B`` the top eigenvectors, ``F`` their eigenvalues, ``D`` the
        diagonal the factors leave unexplained (never negative).
    """
    X = _centred(returns)
    T, n = X.shape
    if not 1 <= n_factors < n:
        raise InputError(
            f"must be in [1, {n - 1}], got {n_factors!r}", field="n_factors"
        )
    sample = X.T @ X / T * periods_per_year
    eigenvalues, vectors = np.linalg.eigh(sample)
    top = np.argsort(eigenvalues)[::-1][:n_factors]
    B = vectors[:, top]
    F = np.diag(np.maximum(eigenvalues[top], 0.0))
    specific = np.maximum(np.diag(sample) - np.einsum("ik,kk,ik->i", B, F, B), 0.0)
    assets = returns.columns.astype(str)
    factors = [f"pc{i + 1}" for i in range(n_factors)]
    return FactorRiskModel(
        loadings=pd.DataFrame(B, index=assets, columns=factors),
        factor_covariance=pd.DataFrame(F, index=factors, columns=factors),
        specific_variance=pd.Series(specific, index=assets),
    )


def _centred(returns: pd.DataFrame) -> np.ndarray:
    """Return demeaned returns as an array; reject gaps and short histories."""
    values = returns.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        column = returns.columns[bad.any(axis=0)][0]
        raise InputError("not a finite number", asset=str(column), field="returns")
    if values.shape[0] < 2:
        raise InputError("need at least two periods", field="returns")
    centred: np.ndarray = values - values.mean(axis=0)
    return centred
