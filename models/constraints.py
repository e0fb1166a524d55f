"""Constraints: each a small named object with a program and a numpy face.

``violation`` returns a non-negative number in the constraint's own units
(fractions of V, or tracking-error units); 0 means satisfied. Soft
constraints are limits that rounding to whole shares may make slightly
worse; hard ones must hold on every order list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models._align import align
from models.errors import InputError
from models.snapshot import Snapshot
from models.terms import Outcome, ProgramVars, Row


def _fraction(value: float, field: str, *, upper: float = 1.0) -> None:
    """Reject a limit outside ``[0, upper]``."""
    if not (np.isfinite(value) and 0 <= value <= upper):
        raise InputError(f"must be in [0, {upper:g}], got {value!r}", field=field)


@dataclass(frozen=True, slots=True)
class LongOnly:
    """No short positions: post-trade weights ``w >= 0``."""

    name: ClassVar[str] = "long_only"
    unit: ClassVar[str] = "weight"  # of the slack
    is_soft: ClassVar[bool] = False

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``w >= 0``."""
        return [x.weights >= 0]

    def violation(self, o: Outcome) -> float:
        """Return the most negative weight, as a positive number."""
        return float(max(0.0, -o.weights.min(initial=0.0)))


@dataclass(frozen=True, slots=True)
class AssetBounds:
    """Per-asset weight bounds, absolute or relative to the target.

    Parameters
    ----------
    lower, upper : float
        Bounds on every asset's post-trade weight; with
        ``relative_to_target`` they bound ``w - w_tgt`` instead.
    relative_to_target : bool
        Whether the bounds are offsets from the target weight.
    per_asset : pd.DataFrame or None
        Overrides, index ``asset``, columns ``lower`` and ``upper`` (same
        meaning); assets of the account that are not listed use the scalars.
    """

    lower: float = 0.0
    upper: float = 1.0
    relative_to_target: bool = False
    per_asset: pd.DataFrame | None = None
    name: ClassVar[str] = "asset_bounds"
    unit: ClassVar[str] = "weight"  # of the slack
    is_soft: ClassVar[bool] = False

    def bounds(self, s: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return absolute lower and upper weight bounds on the universe."""
        lower = np.full(s.n_assets, self.lower)
        upper = np.full(s.n_assets, self.upper)
        if self.per_asset is not None:
            table = self.per_asset[self.per_asset.index.isin(s.universe)]
            for column, out in (("lower", lower), ("upper", upper)):
                values = align(
                    table[column],
                    s.universe,
                    field=f"asset_bounds.{column}",
                    account_id=s.account_id,
                    default=np.nan,
                )
                out[:] = np.where(np.isnan(values), out, values)
        if self.relative_to_target:
            return s.target + lower, s.target + upper
        return lower, upper

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``lower <= w <= upper``."""
        lower, upper = self.bounds(x.snapshot)
        out = []
        if np.isfinite(upper).any():
            keep = np.flatnonzero(np.isfinite(upper))
            out.append(x.weights[keep] <= upper[keep])
        if (lower > 0).any():  # w >= 0 holds anyway: sales never exceed lots
            keep = np.flatnonzero(lower > 0)
            out.append(x.weights[keep] >= lower[keep])
        return out

    def violation(self, o: Outcome) -> float:
        """Return the largest breach of a bound."""
        lower, upper = self.bounds(o.snapshot)
        breach = np.maximum(lower - o.weights, o.weights - upper)
        return float(max(0.0, breach.max(initial=0.0)))


@dataclass(frozen=True, slots=True)
class GroupBounds:
    """Bounds on the total weight of groups of assets (e.g. sectors).

    Parameters
    ----------
    lower, upper : pd.Series
        Index group name; missing groups are unbounded on that side.
    groups : pd.Series or None
        Group of each asset (index ``asset``); ``None`` uses the ``sector``
        column of the prices table.
    relative_to_target : bool
        Whether the bounds are offsets from the group's target weight.
    name : str
        Name used in reports (change it to use two group constraints).
    """

    lower: pd.Series
    upper: pd.Series
    groups: pd.Series | None = None
    relative_to_target: bool = False
    name: str = "group_bounds"
    unit: ClassVar[str] = "weight"  # of the slack
    is_soft: ClassVar[bool] = True

    def membership(self, s: Snapshot) -> tuple[pd.Index, np.ndarray]:
        """Return group names and the (groups x assets) 0/1 matrix."""
        groups = s.sector if self.groups is None else self.groups.astype(str)
        of_asset = groups.reindex(s.universe)
        names = pd.Index(
            sorted(set(self.lower.index) | set(self.upper.index)), dtype=str
        )
        matrix = (of_asset.to_numpy()[None, :] == names.to_numpy()[:, None]).astype(
            float
        )
        return names, matrix

    def bounds(self, s: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the membership matrix and absolute group bounds."""
        names, matrix = self.membership(s)
        lower = self.lower.reindex(names).fillna(-np.inf).to_numpy(dtype=float)
        upper = self.upper.reindex(names).fillna(np.inf).to_numpy(dtype=float)
        if self.relative_to_target:
            base = matrix @ s.target
            return matrix, base + lower, base + upper
        return matrix, lower, upper

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``lower <= G w <= upper`` for the bounded sides."""
        matrix, lower, upper = self.bounds(x.snapshot)
        exposure = matrix @ x.weights
        out = []
        if np.isfinite(upper).any():
            keep = np.flatnonzero(np.isfinite(upper))
            out.append(exposure[keep] <= upper[keep])
        if np.isfinite(lower).any():
            keep = np.flatnonzero(np.isfinite(lower))
            out.append(exposure[keep] >= lower[keep])
        return out

    def violation(self, o: Outcome) -> float:
        """Return the largest breach of a group bound."""
        matrix, lower, upper = self.bounds(o.snapshot)
        exposure = matrix @ o.weights
        breach = np.maximum(lower - exposure, exposure - upper)
        return float(max(0.0, breach.max(initial=0.0)))


@dataclass(frozen=True, slots=True)
class MinCash:
    """Post-trade cash at least ``fraction`` of V (after trading costs)."""

    fraction: float
    name: ClassVar[str] = "min_cash"
    unit: ClassVar[str] = "fraction of V"  # of the slack
    is_soft: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _fraction(self.fraction, self.name)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``cash >= fraction``."""
        return [x.cash >= self.fraction]

    def violation(self, o: Outcome) -> float:
        """Return the cash shortfall."""
        return max(0.0, self.fraction - o.cash)


@dataclass(frozen=True, slots=True)
class MaxCash:
    """Post-trade cash at most ``fraction`` of V."""

    fraction: float
    name: ClassVar[str] = "max_cash"
    unit: ClassVar[str] = "fraction of V"  # of the slack
    is_soft: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _fraction(self.fraction, self.name)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``cash <= fraction``."""
        return [x.cash <= self.fraction]

    def violation(self, o: Outcome) -> float:
        """Return the cash excess."""
        return max(0.0, o.cash - self.fraction)


@dataclass(frozen=True, slots=True)
class MaxTurnover:
    """Cap one-way turnover ``(sum buys + sum sells) / 2``, a fraction of V.

    Buying with a deposit and selling for a withdrawal (``Account.cash_flow``)
    do not count (``Outcome.turnover``).
    """

    limit: float
    name: ClassVar[str] = "max_turnover"
    unit: ClassVar[str] = "fraction of V, bought plus sold"  # of the slack
    is_soft: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _fraction(self.limit, self.name)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``(B - deposit)+ + (S - withdrawal)+ <= 2 limit`` as linear rows.

        ``B`` and ``S`` are the sums bought and sold; ``a+ + b+ <= c`` is
        ``a + b <= c``, ``a <= c`` and ``b <= c`` (``c >= 0``). Without a
        cash flow the first row implies the others and is the only one.
        """
        s = x.snapshot
        rows = [x.traded.sum() <= 2 * self.limit + s.deposit + s.withdrawal]
        if s.deposit or s.withdrawal:
            rows += [
                x.buys.sum() <= 2 * self.limit + s.deposit,
                x.sells.sum() <= 2 * self.limit + s.withdrawal,
            ]
        return rows

    def violation(self, o: Outcome) -> float:
        """Return the turnover above the cap."""
        return max(0.0, o.turnover - self.limit)


@dataclass(frozen=True, slots=True)
class MaxTrackingError:
    """Cap the ex-ante tracking error ``sqrt(a' Sigma a)`` (a second-order cone)."""

    limit: float
    name: ClassVar[str] = "max_tracking_error"
    unit: ClassVar[str] = "annual volatility"  # of the slack
    is_soft: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _fraction(self.limit, self.name, upper=np.inf)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``||(G a, sqrt(d) a)||_2 <= limit``."""
        risk = x.snapshot.risk
        parts = [sp.diags_array(np.sqrt(risk.d)) @ x.active]
        if risk.G.shape[0]:
            parts.insert(0, x.factors)
        return [x.cone(self.limit, parts)]

    def violation(self, o: Outcome) -> float:
        """Return the tracking error above the cap."""
        return max(0.0, float(np.sqrt(o.snapshot.risk.variance(o.active))) - self.limit)


@dataclass(frozen=True, slots=True)
class FactorBounds:
    """Bound active factor exposures ``|B' (w - w_tgt)|_f <= limit_f``.

    Parameters
    ----------
    limits : pd.Series
        Index factor name (columns of the factor loadings); unlisted factors
        are unbounded. Requires a factor risk model.
    """

    limits: pd.Series
    name: ClassVar[str] = "factor_bounds"
    unit: ClassVar[str] = "factor exposure"  # of the slack
    is_soft: ClassVar[bool] = True

    def exposures(self, s: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Return the loadings of the bounded factors and their limits."""
        factors = pd.Index(s.risk.factors)
        unknown = self.limits.index.difference(factors)
        if len(unknown):
            raise InputError(
                f"factor {unknown[0]!r} is not in the risk model",
                account_id=s.account_id,
                field="factor_bounds",
            )
        columns = factors.get_indexer(self.limits.index)
        return s.risk.loadings[:, columns], self.limits.to_numpy(dtype=float)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``-limit <= B' a <= limit``."""
        B, limit = self.exposures(x.snapshot)
        exposure = B.T @ x.active
        return [exposure <= limit, exposure >= -limit]

    def violation(self, o: Outcome) -> float:
        """Return the largest exposure beyond its limit."""
        B, limit = self.exposures(o.snapshot)
        return float(max(0.0, (np.abs(B.T @ o.active) - limit).max(initial=0.0)))


@dataclass(frozen=True, slots=True)
class GainBudget:
    """Net realized gains (gains minus losses) at most ``limit`` in currency.

    Only sales that realise tax count: none in a tax-advantaged account
    (``Snapshot.lot_taxed_gain``).
    """

    limit: float
    name: ClassVar[str] = "gain_budget"
    unit: ClassVar[str] = "fraction of V"  # of the slack
    is_soft: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.limit):
            raise InputError(f"must be finite, got {self.limit!r}", field=self.name)

    def build(self, x: ProgramVars) -> list[Row]:
        """Return ``g' s <= limit / V``."""
        s = x.snapshot
        return [s.lot_taxed_gain @ x.lot_sales <= self.limit / s.value]

    def violation(self, o: Outcome) -> float:
        """Return the net gain above the budget, as a fraction of V."""
        s = o.snapshot
        taxed = float(o.lot_sales @ s.lot_taxed_gain)
        return max(0.0, taxed - self.limit / s.value)


@dataclass(frozen=True, slots=True)
class NoBuyAndSell:
    """Never buy and sell one asset in the same rebalance.

    Not convex: the solver solves without it, fixes each conflicting
    asset's side by its net trade, and re-solves (Moehle et al. 2021).
    """

    name: ClassVar[str] = "no_buy_and_sell"
    unit: ClassVar[str] = ""  # of the slack
    is_soft: ClassVar[bool] = False

    def build(self, x: ProgramVars) -> list[Row]:
        """Return nothing: the side is fixed by dropping variables."""
        return []

    def violation(self, o: Outcome) -> float:
        """Return the value both bought and sold, summed over assets."""
        return float(np.minimum(o.buys, o.sells).sum())
