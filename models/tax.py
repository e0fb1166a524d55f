"""Tax lot maths: holding periods, gains and the tax cost term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import cvxpy as cp
import numpy as np
import pandas as pd

from models.errors import InputError

if TYPE_CHECKING:
    from models.snapshot import Snapshot
    from models.terms import Outcome, ProgramVars


def is_long_term(acquired: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    """Return whether each lot is held more than one year on ``as_of``.

    The holding period starts the day after acquisition and includes the
    sale date, so a lot bought 2025-01-10 turns long-term on 2026-01-11.
    """
    one_year_later = acquired + pd.DateOffset(years=1)
    return np.asarray(as_of > one_year_later, dtype=bool)


def annual_tax(
    gains: tuple[float, float],
    carry: tuple[float, float],
    *,
    rates: tuple[float, float],
    deduction_limit: float,
) -> tuple[float, tuple[float, float]]:
    """Return a year's capital-gains tax and the loss carried to the next year.

    ``gains`` and ``carry`` are (short-term, long-term) net gains and
    carried losses (>= 0), ``rates`` the (short, long) rates. Each term nets
    with its carried loss; a net loss of one term offsets a net gain of the
    other. A total net loss is deducted from ordinary income at the
    short-term rate up to ``deduction_limit`` (a negative tax), short-term
    part first, and the rest carries forward by term (IRS Pub. 550).
    """
    rate_short, rate_long = rates
    short, long = gains[0] - carry[0], gains[1] - carry[1]
    if short + long >= 0:
        if short >= 0 and long >= 0:
            return rate_short * short + rate_long * long, (0.0, 0.0)
        return (rate_long if long > 0 else rate_short) * (short + long), (0.0, 0.0)
    deducted = min(deduction_limit, -(short + long))
    short_left = max(0.0, -short - max(long, 0.0))
    long_left = max(0.0, -long - max(short, 0.0))
    from_short = min(deducted, short_left)
    carried = (short_left - from_short, long_left - (deducted - from_short))
    return -rate_short * deducted, carried


def lot_tax_rates(
    long_term: np.ndarray, *, tax_rate_short: float, tax_rate_long: float
) -> np.ndarray:
    """Return the tax rate that applies to each lot's realized gain."""
    return np.where(long_term, tax_rate_long, tax_rate_short)


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

    def __post_init__(self) -> None:
        if not 0 <= self.loss_factor <= 1:
            raise InputError(
                f"must be in [0, 1], got {self.loss_factor!r}", field="loss_factor"
            )

    def coefficients(self, s: Snapshot) -> np.ndarray:
        """Return the cost per unit of V sold, one entry per lot."""
        tax = s.lot_tax_rate * s.lot_gain_fraction
        return np.where(tax < 0, self.loss_factor * tax, tax)

    def expr(self, x: ProgramVars) -> cp.Expression:
        """Return the tax cost as a linear function of lot sales."""
        return self.coefficients(x.snapshot) @ x.lot_sales

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return the tax cost of each asset's lot sales."""
        tax: np.ndarray = o.snapshot.holdings @ (
            self.coefficients(o.snapshot) * o.lot_sales
        )
        return tax

    def evaluate(self, o: Outcome) -> float:
        """Return the tax cost of an outcome."""
        return float(self.coefficients(o.snapshot) @ o.lot_sales)
