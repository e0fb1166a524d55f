"""What terms and constraints see: the program's variables, or an outcome.

Each objective term and constraint has two faces on the same maths: an
expression over :class:`ProgramVars` (to optimise) and a numpy evaluation of
an :class:`Outcome` (to report and to verify orders independently of the
solver).

Every way of solving supplies its own ``ProgramVars``: cvxpy expressions
(the reference formulation, the integer rounding program) or the matrix
path's affine maps, which turn what a constraint returns into Clarabel's
rows. A constraint written once, with the operations below, serves all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, runtime_checkable

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from models.snapshot import Snapshot

Expr = Any
"""An affine expression of the program: a cvxpy expression, or the matrix
path's ``Affine``. Both take integer indexing, ``matrix @ e``, ``e + e``,
``e - e``, ``scalar * e``, ``e.sum()`` and the comparisons ``<=``, ``>=``,
``==`` (with numbers or arrays), which make a constraint."""

Row = Any
"""What a comparison of expressions gives: a cvxpy constraint, or a block of
the matrix path's rows."""


class ProgramVars(Protocol):
    """The decision variables of one account's program, in fractions of V.

    ``active`` is a variable equal to ``weights - target``: risk terms are
    written over it, which keeps their matrices at asset size. ``factors``
    is ``G @ active``, the factor exposures of the risk model's root.
    """

    snapshot: Snapshot
    active: Expr
    factors: Expr
    buys: Expr
    lot_sales: Expr
    sells: Expr
    traded: Expr
    weights: Expr
    cash: Expr

    def cone(self, limit: float, parts: Sequence[Expr]) -> Row:
        """Return ``|| [parts] ||_2 <= limit``, a second-order cone."""
        ...

    def square(self, e: Expr, weights: np.ndarray) -> Expr:
        """Return ``sum_i weights_i e_i^2`` (``weights >= 0``), a convex term."""
        ...

    def power(self, e: Expr, exponent: float) -> Expr:
        """Return ``|e_i|^exponent`` per row (``exponent > 1``), convex."""
        ...


class CvxpyForms:
    """The non-linear operations of :class:`ProgramVars`, in cvxpy."""

    def cone(self, limit: float, parts: Sequence[Expr]) -> Row:
        """Return ``|| [parts] ||_2 <= limit``."""
        return cp.norm(cp.hstack(list(parts)), 2) <= limit

    def square(self, e: Expr, weights: np.ndarray) -> Expr:
        """Return ``sum_i weights_i e_i^2``."""
        if np.all(weights == 1.0):
            return cp.sum_squares(e)
        return cp.quad_form(e, cp.psd_wrap(sp.diags_array(weights, format="csc")))

    def power(self, e: Expr, exponent: float) -> Expr:
        """Return ``|e_i|^exponent`` per row."""
        return cp.power(cp.abs(e), exponent)


def after_trades(s: Snapshot, buys: Expr, sells: Expr) -> tuple[Expr, Expr]:
    """Return post-trade weights and cash: the accounting identity, written once.

    ``w = w0 + b - S s`` and ``c = c0 - 1'b + 1'S s - cost_rate'(b + S s)``
    (``sells`` is ``S s``, per asset), for numpy values, cvxpy expressions
    or the matrix path's affine maps alike.
    """
    weights = s.current + buys - sells
    cash = s.cash - buys.sum() + sells.sum() - s.cost_rate @ (buys + sells)
    return weights, cash


@dataclass(frozen=True)
class Outcome:
    """A candidate trade list in fractions of V, evaluated with numpy.

    ``buys`` and ``lot_sales`` may also hold one candidate per row (rounding
    scores many at once): then only the per-asset quantities (``sells``,
    ``traded``, a ``SeparableTerm``'s ``per_asset``) are defined, and the
    account totals raise.
    """

    snapshot: Snapshot
    buys: np.ndarray  # (n assets,) or (candidates, n assets)
    lot_sales: np.ndarray  # (n lots,) or (candidates, n lots)

    @cached_property
    def sells(self) -> np.ndarray:
        """Sales per asset."""
        sells: np.ndarray = (self.snapshot.holdings @ self.lot_sales.T).T
        return sells

    @cached_property
    def traded(self) -> np.ndarray:
        """Traded value per asset (buys plus sells)."""
        traded: np.ndarray = self.buys + self.sells
        return traded

    @cached_property
    def _after(self) -> tuple[np.ndarray, float]:
        """Post-trade weights and cash, computed together."""
        if self.buys.ndim != 1:
            raise ValueError("account totals of stacked candidates are not defined")
        weights, cash = after_trades(self.snapshot, self.buys, self.sells)
        return weights, float(cash)

    @property
    def weights(self) -> np.ndarray:
        """Post-trade weights."""
        return self._after[0]

    @cached_property
    def active(self) -> np.ndarray:
        """Post-trade weights minus target weights."""
        active: np.ndarray = self.weights - self.snapshot.target
        return active

    @cached_property
    def cost(self) -> float:
        """Linear trading cost paid from cash."""
        return float(self.snapshot.cost_rate @ self.traded)

    @property
    def cash(self) -> float:
        """Post-trade cash after linear trading costs."""
        return self._after[1]

    @cached_property
    def realized_gain(self) -> np.ndarray:
        """Realized gain per lot."""
        gain: np.ndarray = self.lot_sales * self.snapshot.lot_gain_fraction
        return gain

    @property
    def turnover(self) -> float:
        """One-way turnover, without the trades a cash flow calls for.

        ``((sum buys - deposit)+ + (sum sells - withdrawal)+) / 2``: buying
        with a deposit and selling for a withdrawal are not turnover; half
        the traded value without a cash flow.
        """
        s = self.snapshot
        bought, sold = float(self.buys.sum()), float(self.sells.sum())
        return float(one_way_turnover(bought, sold, s.deposit, s.withdrawal))


def one_way_turnover(
    bought: np.ndarray | float,
    sold: np.ndarray | float,
    deposit: np.ndarray | float,
    withdrawal: np.ndarray | float,
) -> np.ndarray:
    """Return ``((bought - deposit)+ + (sold - withdrawal)+) / 2``, elementwise.

    ``bought`` and ``sold`` are total buys and sales (fractions of V); what a
    deposit pays for or a withdrawal calls for is not turnover.
    """
    excess = np.maximum(np.subtract(bought, deposit), 0.0)
    return (excess + np.maximum(np.subtract(sold, withdrawal), 0.0)) / 2


@dataclass(frozen=True)
class TradeMask:
    """Which assets may be bought and which lots may or must be sold."""

    can_buy: np.ndarray  # (n assets,) bool
    can_sell: np.ndarray  # (n lots,) bool
    must_sell: np.ndarray  # (n lots,) bool

    @classmethod
    def everything(cls, snapshot: Snapshot) -> TradeMask:
        """Return the mask that allows every trade and forces none."""
        n, m = snapshot.n_assets, snapshot.n_lots
        return cls(np.ones(n, bool), np.ones(m, bool), np.zeros(m, bool))

    def __and__(self, other: TradeMask) -> TradeMask:
        """Combine two masks: allowed by both, forced by either."""
        return TradeMask(
            self.can_buy & other.can_buy,
            self.can_sell & other.can_sell,
            self.must_sell | other.must_sell,
        )

    def violation(self, o: Outcome) -> float:
        """Return the traded value that breaks the mask (0 when respected)."""
        forced = o.snapshot.lot_capacity - o.lot_sales
        return float(
            o.buys[~self.can_buy].sum()
            + o.lot_sales[~self.can_sell].sum()
            + np.clip(forced[self.must_sell], 0.0, None).sum()
        )


@runtime_checkable
class Term(Protocol):
    """An objective term: unweighted cvxpy expression plus numpy value."""

    name: ClassVar[str]

    @property
    def weight(self) -> float:
        """Weight of the term in the objective."""
        ...

    def expr(self, x: ProgramVars) -> Expr:
        """Return the convex, unweighted term over the program's variables."""
        ...

    def evaluate(self, o: Outcome) -> float:
        """Return the unweighted term's value at an outcome."""
        ...


@runtime_checkable
class SeparableTerm(Term, Protocol):
    """A term that is a sum over assets; rounding uses per-asset values."""

    def per_asset(self, o: Outcome) -> np.ndarray:
        """Return each asset's contribution to the unweighted term.

        Row by row when ``o`` holds stacked candidates (see ``Outcome``).
        """
        ...


@runtime_checkable
class Constraint(Protocol):
    """A named constraint: cvxpy form and numpy violation."""

    name: ClassVar[str]
    is_soft: ClassVar[bool]

    def build(self, x: ProgramVars) -> list[Row]:
        """Return the constraint's rows: comparisons of the program's expressions."""
        ...

    def violation(self, o: Outcome) -> float:
        """Return by how much an outcome breaks the constraint (0 if not)."""
        ...


@runtime_checkable
class TradeRule(Protocol):
    """A named rule that allows, forbids or forces trades by asset and lot."""

    name: ClassVar[str]

    def mask(self, snapshot: Snapshot) -> TradeMask:
        """Return the trades this rule allows and forces."""
        ...
