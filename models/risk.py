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

    def volatility(self) -> np.ndarray:
        """Return each asset's volatility, ``sqrt(diag(Sigma))``."""
        vol: np.ndarray = np.sqrt((self.G**2).sum(axis=0) + self.d)
        return vol

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
    """Factor model ``Sigma = B F B' + diag(D)`` of annual returns.

    Units: annual variance of returns (a 20% volatility is 0.04); every
    tracking error is read in them. A model of daily returns must be
    multiplied by 252; one fitted on prices is meaningless (a warning says
    when the scale looks like either).

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
        """Return the assets the model covers: loadings and a specific variance."""
        finite = self.specific_variance.index[np.isfinite(self.specific_variance)]
        return self.loadings.index[self.loadings.index.isin(finite)]

    def __post_init__(self) -> None:
        factors = pd.Index(self.loadings.columns.astype(str), name="factor")
        loadings = _numbers(self.loadings).set_axis(factors, axis=1)
        loadings.index = loadings.index.astype(str)
        covariance = _numbers(self.factor_covariance)
        covariance.index = covariance.index.astype(str)
        covariance.columns = covariance.columns.astype(str)
        for axis in (factors, covariance.index, covariance.columns):
            repeated = axis[axis.duplicated()]
            if len(repeated):
                raise InputError(
                    f"factor {repeated[0]!r} appears twice",
                    field="factor_covariance",
                )
            missing = factors.difference(axis)
            if len(missing):
                raise InputError(
                    f"factor {missing[0]!r} has no covariance",
                    field="factor_covariance",
                )
        covariance = covariance.loc[factors, factors].astype(float)
        _check_covariance(covariance, field="factor_covariance", rows="factor")
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

    def to_tables(self) -> dict[str, pd.DataFrame]:
        """Return the three docs/DATA.md risk tables of this model.

        Returns
        -------
        dict of str to pd.DataFrame
            ``factor_loadings`` (``asset``, then one column per factor),
            ``factor_covariance`` (``factor``, then one column per factor)
            and ``specific_risk`` (``asset``, ``variance``), in the units of
            the model: ``FactorRiskModel.from_tables(**model.to_tables())``
            rebuilds it, and the tables can be given to a batch as they are.
        """
        return {
            "factor_loadings": _table(self.loadings, "asset"),
            "factor_covariance": _table(self.factor_covariance, "factor"),
            "specific_risk": self.specific_variance.rename("variance")
            .rename_axis("asset")
            .reset_index(),
        }

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
    """A full covariance matrix of annual asset returns (0.04 = 20% volatility).

    Parameters
    ----------
    covariance : pd.DataFrame
        Sigma, index and columns ``asset``; symmetric PSD.

    Raises
    ------
    InputError
        If Sigma is not square, symmetric, PSD and finite; the error names
        the asset of the first bad entry.
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
        for axis in (covariance.index, covariance.columns):
            duplicated = axis[axis.duplicated()]
            if len(duplicated):
                raise InputError(
                    "duplicate asset", asset=str(duplicated[0]), field="covariance"
                )
        if not covariance.index.equals(covariance.columns):
            if set(covariance.index) != set(covariance.columns):
                raise InputError("index and columns differ", field="covariance")
            covariance = covariance.loc[covariance.index, covariance.index]
        _check_covariance(covariance, field="covariance", rows="asset")
        object.__setattr__(self, "covariance", covariance)

    @classmethod
    def from_tables(cls, covariance: pd.DataFrame) -> CovarianceRiskModel:
        """Build from the docs/DATA.md ``covariance`` table.

        Parameters
        ----------
        covariance : pd.DataFrame
            Column ``asset``, then one column per asset named like it (any
            order); other columns are ignored.

        Returns
        -------
        CovarianceRiskModel
            The model over the table's rows.

        Raises
        ------
        InputError
            A missing ``asset`` column, an asset without its column, a
            duplicate asset, or an entry that is not finite, not symmetric
            or makes the matrix indefinite; the error names the asset.
        """
        require_columns(covariance, ("asset",), table="covariance")
        frame = covariance.set_index("asset")
        frame.index = frame.index.astype(str)
        frame.columns = frame.columns.astype(str)
        missing = frame.index.difference(frame.columns, sort=False)
        if len(missing):
            raise InputError(
                "no column for this asset; the table needs one column per asset",
                asset=str(missing[0]),
                field="covariance",
            )
        return cls(frame.loc[:, frame.index])  # duplicates: rejected by the class

    def to_tables(self) -> dict[str, pd.DataFrame]:
        """Return the docs/DATA.md ``covariance`` table of this model.

        Returns
        -------
        dict of str to pd.DataFrame
            ``covariance``: column ``asset``, then one column per asset;
            ``CovarianceRiskModel.from_tables(**model.to_tables())`` rebuilds
            the model.
        """
        return {"covariance": _table(self.covariance, "asset")}

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


def _table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Return ``frame`` as a docs/DATA.md table: its index as column ``key``."""
    table = frame.rename_axis(index=key, columns=None).reset_index()
    return table


def _check_covariance(matrix: pd.DataFrame, *, field: str, rows: str) -> None:
    """Reject a non-finite, asymmetric or indefinite matrix, naming a row.

    ``matrix`` has the same labels in the same order on both axes; ``rows``
    says what they are: ``"asset"`` (the error's ``asset``) or ``"factor"``
    (named in its text).
    """
    labels = [str(label) for label in matrix.index]
    values = matrix.to_numpy(dtype=float)

    def fail(problem: str, row: int) -> InputError:
        if rows == "asset":
            return InputError(problem, asset=labels[row], field=field)
        return InputError(f"{rows} {labels[row]!r}: {problem}", field=field)

    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        i, j = (int(k) for k in bad[0])
        raise fail(f"not a finite number in column {labels[j]!r}: {values[i, j]}", i)
    scale = max(float(np.abs(values).max(initial=0.0)), 1e-300)
    gap = np.abs(values - values.T)
    if gap.max(initial=0.0) > SYMMETRY_TOLERANCE * scale:
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(gap)), gap.shape))
        raise fail(
            f"not symmetric: {values[i, j]:.6g} in column {labels[j]!r}, but "
            f"{values[j, i]:.6g} in row {labels[j]!r}, column {labels[i]!r}",
            i,
        )
    negative = np.flatnonzero(np.diag(values) < 0)
    if len(negative):
        i = int(negative[0])
        raise fail(
            f"not positive semidefinite: negative variance {values[i, i]:.6g}", i
        )
    if not len(values):
        return
    eigenvalues, vectors = np.linalg.eigh(values)
    if eigenvalues[0] < -PSD_TOLERANCE * max(eigenvalues[-1], 0.0):
        i = int(np.argmax(np.abs(vectors[:, 0])))
        raise fail(
            f"not positive semidefinite: smallest eigenvalue {eigenvalues[0]:.3g}, "
            f"whose eigenvector is largest on this {rows}",
            i,
        )


def _psd_root(matrix: np.ndarray) -> np.ndarray:
    """Return ``R`` with ``R' R = matrix`` (eigen root: works when singular)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = eigenvalues > PSD_TOLERANCE * max(float(eigenvalues.max(initial=0.0)), 0.0)
    root: np.ndarray = np.sqrt(eigenvalues[keep])[:, None] * vectors[:, keep].T
    return root
