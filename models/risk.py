"""Risk models: a factor model ``B F B' + D`` or a full covariance.

Both reduce, on an account's universe, to a *root* ``(G, d)`` with
``Sigma = G' G + diag(d)``, so that ``a' Sigma a = ||G a||^2 + sum(d a^2)``.
The factor form keeps ``G`` at ``k x n``; the optimizer never forms a dense
``n x n`` matrix from a factor model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from models._align import align, align_rows, require_assets, require_columns
from models.errors import InputError

PSD_TOLERANCE = 1e-10  # relative to the largest eigenvalue
SYMMETRY_TOLERANCE = 1e-10  # relative to the largest absolute entry


@dataclass(frozen=True)
class RiskRoot:
    """``Sigma = G' G + diag(d)`` on one universe (numpy, aligned)."""

    G: np.ndarray  # (r, n)
    d: np.ndarray  # (n,)
    loadings: np.ndarray  # (n, k) factor exposures; (n, 0) for a covariance
    factors: tuple[str, ...]  # names of the loadings' columns

    def variance(self, active: np.ndarray) -> float:
        """Return ``a' Sigma a`` for active weights ``a``."""
        return float(np.sum((self.G @ active) ** 2) + np.sum(self.d * active**2))


class RiskModel(Protocol):
    """What the optimizer needs from a risk model."""

    @property
    def assets(self) -> pd.Index:
        """Return the assets the model covers."""
        ...

    def root(self, universe: pd.Index, *, account_id: str | None = None) -> RiskRoot:
        """Return the root of the covariance restricted to ``universe``."""
        ...


@dataclass(frozen=True)
class FactorRiskModel:
    """Factor model ``Sigma = B F B' + diag(D)``.

    Parameters
    ----------
    loadings : pd.DataFrame
        B, index ``asset``, one column per factor.
    factor_covariance : pd.DataFrame
        F, index and columns the factor names; symmetric PSD.
    specific_variance : pd.Series
        D, index ``asset``; non-negative.

    Raises
    ------
    InputError
        If F is not square, symmetric and PSD over the loadings' factors, or a
        value is not finite, or a specific variance is negative.
    """

    loadings: pd.DataFrame
    factor_covariance: pd.DataFrame
    specific_variance: pd.Series

    @property
    def assets(self) -> pd.Index:
        """Return the assets the model covers."""
        return self.loadings.index

    def __post_init__(self) -> None:
        factors = pd.Index(self.loadings.columns.astype(str), name="factor")
        loadings = _numbers(self.loadings).set_axis(factors, axis=1)
        loadings.index = loadings.index.astype(str)
        covariance = _numbers(self.factor_covariance)
        covariance.index = covariance.index.astype(str)
        covariance.columns = covariance.columns.astype(str)
        for axis in (covariance.index, covariance.columns):
            missing = factors.difference(axis)
            if len(missing):
                raise InputError(
                    f"factor {missing[0]!r} has no covariance",
                    field="factor_covariance",
                )
        covariance = covariance.loc[factors, factors].astype(float)
        _check_covariance(covariance.to_numpy(), field="factor_covariance")
        if not np.isfinite(loadings.to_numpy(dtype=float)).all():
            bad = loadings.index[
                ~np.isfinite(loadings.to_numpy(dtype=float)).all(axis=1)
            ]
            raise InputError(
                "not a finite number", asset=str(bad[0]), field="factor_loadings"
            )
        exposures = loadings.to_numpy(dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            systematic = np.einsum(
                "ij,jk,ik->i", exposures, covariance.to_numpy(), exposures
            )
        overflow = loadings.index[~np.isfinite(systematic)]
        if len(overflow):
            raise InputError(
                "variance B F B' overflows a float; loadings or factor "
                "covariance out of range",
                asset=str(overflow[0]),
                field="factor_loadings",
            )
        specific = pd.to_numeric(self.specific_variance, errors="coerce").astype(float)
        specific.index = specific.index.astype(str)
        for index, field in (
            (loadings.index, "factor_loadings"),
            (specific.index, "specific_risk"),
        ):
            duplicated = index[index.duplicated()]
            if len(duplicated):
                raise InputError(
                    "duplicate asset", asset=str(duplicated[0]), field=field
                )
        negative = specific.index[(specific < 0).to_numpy()]
        if len(negative):
            raise InputError(
                "negative variance", asset=str(negative[0]), field="specific_risk"
            )
        object.__setattr__(self, "loadings", loadings.astype(float))
        object.__setattr__(self, "factor_covariance", covariance)
        object.__setattr__(self, "specific_variance", specific)

    @classmethod
    def from_tables(
        cls,
        factor_loadings: pd.DataFrame,
        factor_covariance: pd.DataFrame,
        specific_risk: pd.DataFrame,
    ) -> FactorRiskModel:
        """Build from the docs/DATA.md tables (``asset``/``factor`` columns)."""
        require_columns(factor_loadings, ("asset",), table="factor_loadings")
        require_columns(factor_covariance, ("factor",), table="factor_covariance")
        require_columns(specific_risk, ("asset", "variance"), table="specific_risk")
        return cls(
            loadings=factor_loadings.set_index("asset"),
            factor_covariance=factor_covariance.set_index("factor"),
            specific_variance=specific_risk.set_index("asset")["variance"],
        )

    def root(self, universe: pd.Index, *, account_id: str | None = None) -> RiskRoot:
        """Return ``G = F^(1/2) B'`` and ``d = D`` on ``universe``."""
        B = align_rows(
            self.loadings, universe, field="factor_loadings", account_id=account_id
        )
        d = align(
            self.specific_variance,
            universe,
            field="specific_risk",
            account_id=account_id,
        )
        F_half = _psd_root(self.factor_covariance.to_numpy())
        return RiskRoot(
            G=F_half @ B.T, d=d, loadings=B, factors=tuple(self.loadings.columns)
        )


@dataclass(frozen=True)
class CovarianceRiskModel:
    """A full asset covariance matrix.

    Parameters
    ----------
    covariance : pd.DataFrame
        Sigma, index and columns ``asset``; symmetric PSD.

    Raises
    ------
    InputError
        If Sigma is not square, symmetric, PSD and finite.
    """

    covariance: pd.DataFrame

    @property
    def assets(self) -> pd.Index:
        """Return the assets the model covers."""
        return self.covariance.index

    def __post_init__(self) -> None:
        covariance = _numbers(self.covariance)
        covariance.index = covariance.index.astype(str)
        covariance.columns = covariance.columns.astype(str)
        if not covariance.index.equals(covariance.columns):
            if set(covariance.index) != set(covariance.columns):
                raise InputError("index and columns differ", field="covariance")
            covariance = covariance.loc[covariance.index, covariance.index]
        _check_covariance(covariance.to_numpy(), field="covariance")
        object.__setattr__(self, "covariance", covariance)

    def root(self, universe: pd.Index, *, account_id: str | None = None) -> RiskRoot:
        """Return a square root ``G`` of Sigma on ``universe`` and ``d = 0``."""
        require_assets(
            self.covariance.index, universe, field="covariance", account_id=account_id
        )
        sigma = self.covariance.loc[universe, universe].to_numpy()
        n = len(universe)
        return RiskRoot(
            G=_psd_root(sigma), d=np.zeros(n), loadings=np.zeros((n, 0)), factors=()
        )


def _numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` as floats; unreadable values become NaN (then rejected)."""
    numbers: pd.DataFrame = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    return numbers


def _check_covariance(matrix: np.ndarray, *, field: str) -> None:
    """Reject non-finite, non-square, asymmetric or indefinite matrices."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"not square: shape {matrix.shape}", field=field)
    if not np.isfinite(matrix).all():
        raise InputError("not a finite number", field=field)
    scale = max(float(np.abs(matrix).max(initial=0.0)), 1e-300)
    if np.abs(matrix - matrix.T).max(initial=0.0) > SYMMETRY_TOLERANCE * scale:
        raise InputError("not symmetric", field=field)
    eigenvalues = np.linalg.eigvalsh(matrix) if len(matrix) else np.zeros(0)
    if len(eigenvalues) and eigenvalues[0] < -PSD_TOLERANCE * max(eigenvalues[-1], 0.0):
        raise InputError(
            f"not positive semidefinite: smallest eigenvalue {eigenvalues[0]:.3g}",
            field=field,
        )


def _psd_root(matrix: np.ndarray) -> np.ndarray:
    """Return ``R`` with ``R' R = matrix`` (eigen root: works when singular)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = eigenvalues > PSD_TOLERANCE * max(float(eigenvalues.max(initial=0.0)), 0.0)
    root: np.ndarray = np.sqrt(eigenvalues[keep])[:, None] * vectors[:, keep].T
    return root
