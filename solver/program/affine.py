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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.snapshot import Snapshot


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
    if isinstance(M, sp.csr_array) and M.shape[1] == width:
        return M
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
        return Affine(_csr(self.M[rows]), self.c[rows])

    def __rmatmul__(self, matrix: Any) -> Affine:
        if np.ndim(matrix) == 1:  # a row vector: one row
            matrix = np.reshape(matrix, (1, -1))
        return Affine(_csr(matrix @ self.M), np.asarray(matrix @ self.c))

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Quadratic):
            return other + self
        if isinstance(other, Affine):
            width = max(self.M.shape[1], other.M.shape[1])
            M = widen(self.M, width) + widen(other.M, width)
            return Affine(_csr(M), self.c + other.c)
        return Affine(self.M, np.asarray(self.c + other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine(-self.M, -self.c)

    def __sub__(self, other: Any) -> Affine:
        if isinstance(other, Affine):
            width = max(self.M.shape[1], other.M.shape[1])
            M = widen(self.M, width) - widen(other.M, width)
            return Affine(_csr(M), self.c - other.c)
        return Affine(self.M, np.asarray(self.c - other, dtype=float))

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
    """``1/2 v' P v + linear``: an objective term of the matrix path.

    ``P`` is a vector when diagonal (the usual case: squares of single
    variables), a sparse matrix otherwise.
    """

    P: np.ndarray | sp.csr_array  # (width,) diagonal, or (width, width)
    linear: Affine  # one row

    @property
    def width(self) -> int:
        """Number of variables ``P`` spans."""
        return int(self.P.shape[0])

    def matrix(self, width: int) -> sp.csr_array:
        """Return ``P`` as a sparse ``width x width`` matrix."""
        if isinstance(self.P, np.ndarray):
            diagonal = np.zeros(width)
            diagonal[: len(self.P)] = self.P
            return sp.csr_array(sp.diags_array(diagonal))
        return widen_square(self.P, width)

    def __add__(self, other: Any) -> Quadratic:
        if not isinstance(other, Quadratic):
            return Quadratic(self.P, self.linear + other)
        width = max(self.width, other.width)
        linear = self.linear + other.linear
        if isinstance(self.P, np.ndarray) and isinstance(other.P, np.ndarray):
            diagonal = np.zeros(width)
            diagonal[: self.width] += self.P
            diagonal[: other.width] += other.P
            return Quadratic(diagonal, linear)
        return Quadratic(sp.csr_array(self.matrix(width) + other.matrix(width)), linear)

    __radd__ = __add__

    def __mul__(self, scalar: Any) -> Quadratic:
        factor = float(scalar)
        return Quadratic(factor * self.P, factor * self.linear)

    __rmul__ = __mul__


def weighted_squares(e: Affine, weights: np.ndarray) -> Quadratic:
    """Return ``sum_i weights_i e_i^2`` (the constant part is dropped).

    When each row of ``e`` is one variable times a coefficient (the active
    weights, the factor exposures), ``P`` is diagonal, kept as a vector.
    """
    w = np.broadcast_to(np.asarray(weights, dtype=float), e.shape)
    M, width = e.M, e.M.shape[1]
    one_each = M.nnz == M.shape[0] and bool(np.all(np.diff(M.indptr) == 1))
    P: np.ndarray | sp.csr_array
    if one_each and len(np.unique(M.indices)) == M.nnz:
        P = np.zeros(width)
        P[M.indices] = 2.0 * w * M.data**2
    else:
        P = sp.csr_array(2.0 * (M.T @ sp.diags_array(w) @ M))
    linear = np.zeros((1, width))
    if np.any(e.c):
        linear = (2.0 * w * e.c)[None, :] @ M
    return Quadratic(P, Affine(sp.csr_array(linear), np.zeros(1)))


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


@dataclass
class AffineQuantities:
    """An account's quantities as affine maps: the fields of ``ProgramVars``.

    The matrix path and the integer program of rounding each add the
    operations that are not affine (``square``, ``power``) their own way.
    """

    snapshot: Snapshot
    active: Affine
    factors: Affine
    buys: Affine
    lot_sales: Affine
    sells: Affine
    traded: Affine
    weights: Affine
    cash: Affine

    def cone(self, limit: float, parts: Sequence[Affine]) -> Rows:
        """Return ``|| [parts] ||_2 <= limit``."""
        return cone(limit, list(parts))


def widen_square(P: sp.csr_array, width: int) -> sp.csr_array:
    """Return ``P`` padded with zero rows and columns to ``width``."""
    entries = sp.coo_array(P)
    return sp.csr_array((entries.data, (entries.row, entries.col)), (width, width))


def _csr(M: Any) -> sp.csr_array:
    """Return ``M`` as a CSR array, without a copy when it is one."""
    return M if isinstance(M, sp.csr_array) else sp.csr_array(M)
