"""Affine and quadratic expressions over the stacked variables, and their rows.

The matrix path hands each term and constraint a ``ProgramVars`` whose
quantities are :class:`Affine` (``M @ v + c``). A constraint's ``build``,
written once with indexing, ``@``, ``+``, ``-``, scalar ``*``, ``sum`` and
comparisons, then returns :class:`Rows` of Clarabel's form
``A v + s = b``, ``s`` in a cone, instead of cvxpy constraints; a term's
``expr`` returns an :class:`Affine` (linear) or a :class:`Quadratic`.
Anything else (a cvxpy atom applied to an ``Affine``) fails loudly, and the
account is solved through cvxpy.

Epigraph variables (``ProgramVars.power``) add columns while a program is
built, so expressions of different widths meet: the narrower is padded
with zero columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Rows:
    """Rows ``A v + s = b``, ``s`` in the cone ``kind``.

    ``eq`` is the zero cone, ``le`` the nonnegative orthant, ``soc`` the
    second-order cone and ``pow`` Clarabel's 3-dimensional power cone of
    exponent ``alpha`` (one per three rows).
    """

    kind: str
    A: sp.csr_array
    b: np.ndarray
    alpha: float = 0.0


def widen(M: Any, width: int) -> sp.csr_array:
    """Return ``M`` with zero columns appended up to ``width``."""
    rows: sp.csr_array = sp.csr_array(M)
    if rows.shape[1] == width:
        return rows
    return sp.csr_array((rows.data, rows.indices, rows.indptr), (rows.shape[0], width))


@dataclass(frozen=True, eq=False)
class Affine:
    """``M @ v + c``: an affine expression over the stacked variables."""

    M: sp.csr_array  # (rows, width)
    c: np.ndarray  # (rows,)
    __array_ufunc__ = None  # numpy defers ``array @ affine`` and friends to us

    @property
    def shape(self) -> tuple[int]:
        """Number of rows, as cvxpy gives an expression's shape."""
        return (int(self.M.shape[0]),)

    def __getitem__(self, rows: Any) -> Affine:
        if np.ndim(rows) == 0 and not isinstance(rows, slice):
            rows = [rows]  # one row stays a (1, width) block
        return Affine(sp.csr_array(self.M[rows]), self.c[rows])

    def __rmatmul__(self, matrix: Any) -> Affine:
        if np.ndim(matrix) == 1:  # a row vector: one row
            matrix = np.reshape(matrix, (1, -1))
        return Affine(sp.csr_array(matrix @ self.M), np.asarray(matrix @ self.c))

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Quadratic):
            return other + self
        if isinstance(other, Affine):
            width = max(self.M.shape[1], other.M.shape[1])
            M = widen(self.M, width) + widen(other.M, width)
            return Affine(sp.csr_array(M), self.c + other.c)
        return Affine(self.M, np.asarray(self.c + other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine(-self.M, -self.c)

    def __sub__(self, other: Any) -> Affine:
        result: Affine = self.__add__(-other)
        return result

    def __rsub__(self, other: Any) -> Affine:
        result: Affine = (-self).__add__(other)
        return result

    def __mul__(self, scalar: Any) -> Affine:
        if not np.isscalar(scalar):
            raise TypeError("an Affine is multiplied by scalars only; use @")
        factor = float(scalar)  # type: ignore[arg-type]
        return Affine(factor * self.M, factor * self.c)

    __rmul__ = __mul__

    def sum(self) -> Affine:
        """Return the sum of the rows, as a one-row expression."""
        row = sp.csr_array(self.M.sum(axis=0).reshape(1, -1))
        return Affine(row, np.array([self.c.sum()]))

    def __le__(self, other: Any) -> Rows:
        gap = self - other  # gap <= 0: -gap is the slack
        return Rows("le", gap.M, -gap.c)

    def __ge__(self, other: Any) -> Rows:
        return (-self).__le__(-other)

    def __eq__(self, other: Any) -> Rows:  # type: ignore[override]
        gap = self - other
        return Rows("eq", gap.M, -gap.c)


@dataclass(frozen=True, eq=False)
class Quadratic:
    """``1/2 v' P v + linear``: an objective term of the matrix path."""

    P: sp.csr_array  # (width, width)
    linear: Affine  # one row

    def __add__(self, other: Any) -> Quadratic:
        if isinstance(other, Quadratic):
            width = max(self.P.shape[0], other.P.shape[0])
            P = widen_square(self.P, width) + widen_square(other.P, width)
            return Quadratic(sp.csr_array(P), self.linear + other.linear)
        return Quadratic(self.P, self.linear + other)

    __radd__ = __add__

    def __mul__(self, scalar: Any) -> Quadratic:
        factor = float(scalar)
        return Quadratic(factor * self.P, factor * self.linear)

    __rmul__ = __mul__


def weighted_squares(e: Affine, weights: np.ndarray) -> Quadratic:
    """Return ``sum_i weights_i e_i^2`` (the constant part is dropped)."""
    W = sp.diags_array(np.broadcast_to(weights, e.shape).astype(float))
    P = sp.csr_array(2.0 * (e.M.T @ W @ e.M))
    linear = (2.0 * (W @ e.c)) @ e
    return Quadratic(P, Affine(linear.M, np.zeros(1)))


def cone(limit: float, parts: list[Affine]) -> Rows:
    """Return ``|| [parts] ||_2 <= limit`` as second-order cone rows."""
    width = max(p.M.shape[1] for p in parts)
    stacked = sp.vstack([widen(p.M, width) for p in parts])
    A = sp.csr_array(sp.vstack([sp.csr_array((1, width)), -stacked]))
    b = np.concatenate([[limit], *(p.c for p in parts)])
    return Rows("soc", A, b)


def power_cones(epigraph: Affine, e: Affine, exponent: float) -> Rows:
    """Return ``epigraph_i >= |e_i|^exponent`` as 3-dimensional power cones.

    Each ``(t_i, 1, e_i)`` lies in the cone ``t^alpha >= |e|``,
    ``alpha = 1 / exponent``.
    """
    width = max(epigraph.M.shape[1], e.M.shape[1])
    n = e.shape[0]
    blocks = [
        [
            -widen(epigraph.M[[i]], width),
            sp.csr_array((1, width)),
            -widen(e.M[[i]], width),
        ]
        for i in range(n)
    ]
    A = sp.csr_array(sp.vstack([row for block in blocks for row in block]))
    b = np.column_stack([epigraph.c, np.ones(n), e.c]).ravel()
    return Rows("pow", A, b, alpha=1.0 / exponent)


def widen_square(P: sp.csr_array, width: int) -> sp.csr_array:
    """Return ``P`` padded with zero rows and columns to ``width``."""
    entries = sp.coo_array(P)
    return sp.csr_array((entries.data, (entries.row, entries.col)), (width, width))
