"""Objective terms: tracking error and trading costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from models.errors import InputError
from models.snapshot import Snapshot
from models.terms import Expr, Outcome, ProgramVars


def _check_weight(weight: float, field: str) -> None:
    """Reject negative or non-finite term weights."""
    if not (np.isfinite(weight) and weight >= 0):
        raise InputError(
            f"weight must be a finite number >= 0, got {weight!r}", field=field
        )


@dataclass(frozen=True, slots=True)
class TrackingError:
    """Squared tracking error to the target weights.

    Parameters
    ----------
    weight : float
        Weight of the term (risk aversion). The term is the annual active
        variance (the risk model's units: a 2% tracking error is 0.0004)
        and the objective is in fractions of the account value V, so a
        weight of w prices a 1% annual tracking error at ``w * 1e-4`` of V:
        with w = 100, 1% of V. See docs/weights.md.

    Notes
    -----
    ``(w - w_tgt)' Sigma (w - w_tgt) = ||G a||^2 + sum_i d_i a_i^2`` with
    ``a = w - w_tgt`` the active-weight variable. The diagonal enters the QP
    matrix directly, the factor part as a ``k``-row block: no dense
    ``n x n`` matrix for a factor model.
    """

    weight: float = 1.0
    name: ClassVar[str] = "tracking_error"
    unit: ClassVar[str] = "annual variance"  # of the unweighted value

    def __post_init__(self) -> None:
        _check_weight(self.weight, self.name)

    def expr(self, x: ProgramVars) -> Expr:
        """Return ``a' Sigma a = sum_i d_i a_i^2 + ||G a||^2``."""
        risk = x.snapshot.risk
        diagonal = x.square(x.active, risk.d)
        if risk.G.shape[0] == 0:
            return diagonal
        return diagonal + x.square(x.factors, np.ones(risk.G.shape[0]))

    def evaluate(self, o: Outcome) -> float:
        """Return the squared tracking error of an outcome."""
        return o.snapshot.risk.variance(o.active)


@dataclass(frozen=True, slots=True)
class LinearCost:
    """Spread and commission: ``sum_i c_i (b_i + sells_i)``.

    Parameters
    ----------
    weight : float
        Weight of the term. The rates ``c_i`` are the ``cost_bps`` column of
        the prices table (bps of traded value); the same cost is charged to
        cash.
    """

    weight: float = 1.0
    name: ClassVar[str] = "linear_cost"
    unit: ClassVar[str] = "fraction of V"  # of the unweighted value

    def __post_init__(self) -> None:
        _check_weight(self.weight, self.name)

    def expr(self, x: ProgramVars) -> Expr:
        """Return the linear cost of the trades."""
        return x.snapshot.cost_rate @ x.traded

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return the cost of each asset's trades."""
        cost: np.ndarray = o.snapshot.cost_rate * o.traded
        return cost

    def evaluate(self, o: Outcome) -> float:
        """Return the linear cost of an outcome."""
        return o.cost


@dataclass(frozen=True, slots=True)
class TaxDrag:
    """Tax on the income of what a taxable account holds: ``sum_i drag_i w_i``.

    ``drag_i`` is the ``tax_drag`` column of the prices table (the share of
    an asset's value lost to tax on its income each year when held in a
    taxable account, e.g. a bond fund's yield times the ordinary rate); it
    is 0 in tax-advantaged accounts. In a household the term puts
    tax-inefficient assets where they are not taxed (asset location).

    Parameters
    ----------
    weight : float
        Years of drag the objective counts (the holding horizon): with 5,
        holding 10% of the value in an asset with a 1% drag costs
        0.5% of V.
    """

    weight: float = 1.0
    name: ClassVar[str] = "tax_drag"
    unit: ClassVar[str] = "fraction of V a year"  # of the unweighted value

    def __post_init__(self) -> None:
        _check_weight(self.weight, self.name)

    def expr(self, x: ProgramVars) -> Expr:
        """Return the yearly drag of the post-trade holdings."""
        return x.snapshot.tax_drag @ x.weights

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return each asset's yearly drag after the trades."""
        s = o.snapshot
        drag: np.ndarray = s.tax_drag * (s.current + o.buys - o.sells)
        return drag

    def evaluate(self, o: Outcome) -> float:
        """Return the yearly drag of an outcome."""
        return float(o.snapshot.tax_drag @ o.weights)


@dataclass(frozen=True, slots=True)
class MarketImpact:
    """Market impact growing with the 3/2 power of the traded value.

    Parameters
    ----------
    coefficient : float
        Scale of the impact model (dimensionless, about 1).
    weight : float
        Weight of the term.

    Notes
    -----
    ``coefficient * sum_i sigma_i sqrt(V / (ADV_i p_i)) t_i^(3/2)`` with
    ``t_i`` the traded fraction of V, ``sigma_i`` the daily volatility and
    ``ADV_i`` the average daily volume in shares: the cost of trading
    ``T`` dollars is ``sigma T sqrt(T / (ADV p))``. Assets without ``adv``
    or ``volatility`` in the prices table have no impact cost.
    """

    coefficient: float = 1.0
    weight: float = 1.0
    name: ClassVar[str] = "market_impact"
    unit: ClassVar[str] = "fraction of V"  # of the unweighted value

    def __post_init__(self) -> None:
        _check_weight(self.weight, self.name)
        _check_weight(self.coefficient, "market_impact.coefficient")

    def expr(self, x: ProgramVars) -> Expr:
        """Return the impact cost; zero when no asset has ADV and volatility."""
        scale = x.snapshot.impact_scale
        used = np.flatnonzero(scale > 0)
        if not len(used):
            return 0.0
        return (self.coefficient * scale[used]) @ x.power(x.traded[used], 1.5)

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return the impact cost of each asset's trades."""
        impact: np.ndarray = self.coefficient * o.snapshot.impact_scale * o.traded**1.5
        return impact

    def evaluate(self, o: Outcome) -> float:
        """Return the impact cost of an outcome."""
        return float(self.per_asset(o).sum())


@dataclass(frozen=True, slots=True)
class TaxCost:
    """Tax on realized gains of sold lots; losses count as negative cost.

    Parameters
    ----------
    loss_factor : float
        Scales the benefit of realized losses (0 ignores harvesting, 1 values
        a loss at the full rate).
    weight : float
        Weight of the term in the objective.

    Notes
    -----
    ``sum_l r_l g_l s_l`` with ``s_l`` the sold fraction of V of lot ``l``,
    ``g_l = (p - basis_l) / p`` its gain per dollar sold, ``r_l`` the short-
    or long-term rate, multiplied by ``loss_factor`` where ``g_l < 0``.
    """

    loss_factor: float = 1.0
    weight: float = 1.0
    name: ClassVar[str] = "tax_cost"
    unit: ClassVar[str] = "fraction of V"  # of the unweighted value

    def __post_init__(self) -> None:
        if not 0 <= self.loss_factor <= 1:
            raise InputError(
                f"must be in [0, 1], got {self.loss_factor!r}", field="loss_factor"
            )

    def coefficients(self, s: Snapshot) -> np.ndarray:
        """Return the cost per unit of V sold, one entry per lot."""
        return self.lot_costs(s.lot_tax_rate, s.lot_gain_fraction)

    def lot_costs(self, rate: np.ndarray, gain_fraction: np.ndarray) -> np.ndarray:
        """Return the cost per unit sold of lots with these rates and gains."""
        tax = rate * gain_fraction
        return np.where(tax < 0, self.loss_factor * tax, tax)

    def expr(self, x: ProgramVars) -> Expr:
        """Return the tax cost as a linear function of lot sales."""
        return self.coefficients(x.snapshot) @ x.lot_sales

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return the tax cost of each asset's lot sales."""
        s = o.snapshot
        tax: np.ndarray = (s.holdings @ (self.coefficients(s) * o.lot_sales).T).T
        return tax

    def evaluate(self, o: Outcome) -> float:
        """Return the tax cost of an outcome."""
        return float(self.coefficients(o.snapshot) @ o.lot_sales)
