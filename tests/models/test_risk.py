import numpy as np
import pandas as pd
import pytest

from models import (
    CovarianceRiskModel,
    FactorRiskModel,
    InputError,
    pca_factor_model,
    shrunk_covariance,
)
from models.risk_estimation import ledoit_wolf_shrinkage


def _factor_model(rng, n=6, k=2):
    assets = [f"S{i}" for i in range(n)]
    factors = [f"f{j}" for j in range(k)]
    A = rng.normal(size=(k, k))
    return FactorRiskModel(
        loadings=pd.DataFrame(rng.normal(size=(n, k)), index=assets, columns=factors),
        factor_covariance=pd.DataFrame(A @ A.T, index=factors, columns=factors),
        specific_variance=pd.Series(rng.uniform(0.01, 0.05, n), index=assets),
    )


def test_factor_root_reproduces_dense_covariance():
    model = _factor_model(np.random.default_rng(1))
    universe = pd.Index(["S3", "S0", "S5"])
    root = model.root(universe)
    B = model.loadings.loc[universe].to_numpy()
    F = model.factor_covariance.to_numpy()
    dense = B @ F @ B.T + np.diag(model.specific_variance.loc[universe])
    np.testing.assert_allclose(root.G.T @ root.G + np.diag(root.d), dense, atol=1e-12)


def test_covariance_root_reproduces_matrix_on_subset():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(5, 5))
    labels = list("ABCDE")
    model = CovarianceRiskModel(pd.DataFrame(A @ A.T, index=labels, columns=labels))
    root = model.root(pd.Index(["D", "B"]))
    np.testing.assert_allclose(root.G.T @ root.G, (A @ A.T)[np.ix_([3, 1], [3, 1])])


def test_covariance_rejects_asymmetric_and_indefinite():
    labels = ["A", "B"]
    with pytest.raises(InputError, match="symmetric"):
        CovarianceRiskModel(pd.DataFrame([[1.0, 0.5], [0.4, 1.0]], labels, labels))
    with pytest.raises(InputError, match="semidefinite"):
        CovarianceRiskModel(pd.DataFrame([[1.0, 2.0], [2.0, 1.0]], labels, labels))


def test_factor_model_rejects_factor_without_covariance():
    with pytest.raises(InputError) as err:
        FactorRiskModel(
            loadings=pd.DataFrame({"f1": [1.0], "f2": [0.5]}, index=["A"]),
            factor_covariance=pd.DataFrame({"f1": [0.04]}, index=["f1"]),
            specific_variance=pd.Series({"A": 0.01}),
        )
    assert err.value.field == "factor_covariance"


def test_factor_model_rejects_negative_specific_variance():
    with pytest.raises(InputError) as err:
        FactorRiskModel(
            loadings=pd.DataFrame({"f1": [1.0]}, index=["A"]),
            factor_covariance=pd.DataFrame({"f1": [0.04]}, index=["f1"]),
            specific_variance=pd.Series({"A": -0.01}),
        )
    assert (err.value.asset, err.value.field) == ("A", "specific_risk")


def test_ledoit_wolf_matches_definition_by_loops():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    X = X - X.mean(axis=0)
    T, n = X.shape
    S = X.T @ X / T
    mu = np.trace(S) / n
    delta2 = np.linalg.norm(S - mu * np.eye(n), "fro") ** 2 / n
    beta2 = sum(np.linalg.norm(np.outer(x, x) - S, "fro") ** 2 for x in X) / T**2 / n
    assert ledoit_wolf_shrinkage(X) == pytest.approx(min(beta2, delta2) / delta2)


def test_shrunk_covariance_is_psd_and_annualised():
    rng = np.random.default_rng(4)
    returns = pd.DataFrame(rng.normal(0, 0.01, (30, 8)), columns=list("ABCDEFGH"))
    model = shrunk_covariance(returns, shrinkage=0.0, periods_per_year=252)
    np.testing.assert_allclose(
        model.covariance.to_numpy(), np.cov(returns.T, bias=True) * 252, rtol=1e-10
    )
    auto = shrunk_covariance(returns)
    assert np.linalg.eigvalsh(auto.covariance.to_numpy()).min() > 0


def test_pca_factor_model_explains_low_rank_returns():
    rng = np.random.default_rng(5)
    factors = rng.normal(0, 0.02, (500, 2))
    exposures = rng.normal(size=(2, 10))
    returns = pd.DataFrame(factors @ exposures + rng.normal(0, 1e-4, (500, 10)))
    model = pca_factor_model(returns, n_factors=2, periods_per_year=1)
    root = model.root(pd.Index(model.loadings.index))
    dense = root.G.T @ root.G + np.diag(root.d)
    sample = np.cov(returns.to_numpy().T, bias=True)
    np.testing.assert_allclose(np.diag(dense), np.diag(sample), rtol=1e-9)
    assert np.abs(dense - sample).max() < 1e-7


def test_estimators_reject_missing_returns():
    returns = pd.DataFrame({"A": [0.01, np.nan, 0.0], "B": [0.0, 0.01, 0.02]})
    with pytest.raises(InputError) as err:
        shrunk_covariance(returns)
    assert (err.value.asset, err.value.field) == ("A", "returns")
