"""Affine and quadratic expressions over the stacked variables, and their rows.

The matrix path hands each term and constraint a ``ProgramVars`` whose
quantities are :class:`Affine` (``M @ v + c``). A constraint's ``build``,
written once with indexing, ``@``, ``+``, ``-``, scalar ``*``, ``sum`` and
comparisons, then returns :class:`Rows` of Clarabel's form
``A v + s = b``, ``s`` in a cone, instead of cvxpy constraints; a term's
``expr`` returns an :class:`Affine` (linear) or a :class:`Quadratic`.
Anything else (a cvxpy atom applied to an ``Affine``) fails loudly, and the
account is solved through cvxpy.

The maps are kept as lists of entries (:class:`Entries`) whose repeats add
up: a sum joins two lists, padding changes only the width, so a program is
built without a scipy matrix until its final one (each scipy matrix made
costs 10-50 us, and a program's algebra made about 70).

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

DIRECT_PRODUCT = 10**6  # products of more terms go through scipy


@dataclass(frozen=True, eq=False)
class Entries:
    """A sparse ``shape`` matrix as entries ``(row, col, val)``; repeats add up."""

    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, M: Any) -> Entries:
        """Return the entries of a scipy matrix, a dense array or ``Entries``."""
        if isinstance(M, Entries):
            return M
        if sp.issparse(M):
            coo = M.tocoo()  # type: ignore[attr-defined]
            shape = (int(coo.shape[0]), int(coo.shape[1]))
            return cls(coo.row, coo.col, np.asarray(coo.data, dtype=float), shape)
        dense = np.atleast_2d(np.asarray(M, dtype=float))
        row, col = np.nonzero(dense)
        return cls(row, col, dense[row, col], (dense.shape[0], dense.shape[1]))

    @classmethod
    def pick(cls, rows: int, columns: np.ndarray, width: int) -> Entries:
        """Return the 0/1 matrix whose row ``k`` picks column ``columns[k]``."""
        return cls(np.arange(rows), np.asarray(columns), np.ones(rows), (rows, width))

    @classmethod
    def stack(cls, blocks: Sequence[Entries], width: int) -> Entries:
        """Return the blocks one above the other, ``width`` columns wide."""
        offsets = np.cumsum([0] + [b.shape[0] for b in blocks])
        return cls(
            np.concatenate(
                [b.row + k for b, k in zip(blocks, offsets[:-1], strict=True)]
            ),
            np.concatenate([b.col for b in blocks]),
            np.concatenate([b.val for b in blocks]),
            (int(offsets[-1]), width),
        )

    def csr(self) -> sp.csr_array:
        """Return the matrix, repeats added."""
        return sp.csr_array((self.val, (self.row, self.col)), shape=self.shape)

    def csc(self) -> sp.csc_array:
        """Return the matrix in compressed columns, repeats added."""
        return sp.csc_array((self.val, (self.row, self.col)), shape=self.shape)

    def toarray(self) -> np.ndarray:
        """Return the matrix as a dense array."""
        dense = np.zeros(self.shape)
        np.add.at(dense, (self.row, self.col), self.val)
        return dense

    def widened(self, width: int) -> Entries:
        """Return the matrix with zero columns appended up to ``width``."""
        if width == self.shape[1]:
            return self
        if width < self.shape[1]:
            raise ValueError(f"cannot narrow {self.shape[1]} columns to {width}")
        return Entries(self.row, self.col, self.val, (self.shape[0], width))

    def scaled(self, factor: float | np.ndarray) -> Entries:
        """Return the matrix times a scalar, or each row times ``factor[row]``."""
        by = factor if np.ndim(factor) == 0 else np.asarray(factor)[self.row]
        return Entries(self.row, self.col, by * self.val, self.shape)

    def plus(self, other: Entries) -> Entries:
        """Return the sum of two matrices of as many rows (the wider's width)."""
        if self.shape[0] != other.shape[0]:
            raise ValueError(f"adding {self.shape[0]} rows to {other.shape[0]}")
        width = max(self.shape[1], other.shape[1])
        return Entries(
            np.concatenate([self.row, other.row]),
            np.concatenate([self.col, other.col]),
            np.concatenate([self.val, other.val]),
            (self.shape[0], width),
        )

    def left_product(self, matrix: Any) -> Entries:
        """Return ``matrix @ self`` for a dense or scipy ``matrix``.

        A small dense matrix (factor loadings, a row of rates) multiplies the
        entries directly; a sparse or large one goes through scipy.
        """
        width = self.shape[1]
        if sp.issparse(matrix) or np.shape(matrix)[0] * len(self.val) > DIRECT_PRODUCT:
            return Entries.of(matrix @ self.csr()).widened(width)
        if np.shape(matrix)[1] != self.shape[0]:
            raise ValueError(f"{np.shape(matrix)} @ {self.shape}")
        parts = np.asarray(matrix, dtype=float)[:, self.row] * self.val
        row, k = np.nonzero(parts)
        return Entries(row, self.col[k], parts[row, k], (len(parts), width))

    def take(self, rows: np.ndarray) -> Entries:
        """Return the rows ``rows`` (integer positions, in that order)."""
        where = np.full(self.shape[0], -1)
        where[rows] = np.arange(len(rows))
        if not np.array_equal(where[rows], np.arange(len(rows))):  # a row twice
            return Entries.of(self.csr()[rows]).widened(self.shape[1])
        new = where[self.row]
        kept = new >= 0
        shape = (len(rows), self.shape[1])
        return Entries(new[kept], self.col[kept], self.val[kept], shape)


@dataclass(frozen=True)
class Rows:
    """Rows ``A v + s = b``, ``s`` in the cone ``kind``.

    ``eq`` is the zero cone, ``le`` the nonnegative orthant, ``soc`` the
    second-order cone and ``pow`` Clarabel's 3-dimensional power cone of
    exponent ``alpha`` (one per three rows).
    """

    kind: str
    A: Entries
    b: np.ndarray
    alpha: float = 0.0


@dataclass(frozen=True, eq=False)
class Affine:
    """``M @ v + c``: an affine expression over the stacked variables."""

    M: Entries  # (rows, width)
    c: np.ndarray  # (rows,)
    __array_ufunc__ = None  # numpy defers ``array @ affine`` and friends to us

    @property
    def shape(self) -> tuple[int]:
        """Number of rows, as cvxpy gives an expression's shape."""
        return (int(self.M.shape[0]),)

    def __getitem__(self, rows: Any) -> Affine:
        if np.ndim(rows) == 0 and not isinstance(rows, slice):
            rows = [rows]  # one row stays a (1, width) block
        picked = np.arange(self.M.shape[0])[rows]
        return Affine(self.M.take(picked), self.c[picked])

    def __rmatmul__(self, matrix: Any) -> Affine:
        if np.ndim(matrix) == 1:  # a row vector: one row
            matrix = np.reshape(matrix, (1, -1))
        return Affine(self.M.left_product(matrix), np.asarray(matrix @ self.c))

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Quadratic):
            return other + self
        if isinstance(other, Affine):
            return Affine(self.M.plus(other.M), self.c + other.c)
        return Affine(self.M, np.asarray(self.c + other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine(self.M.scaled(-1.0), -self.c)

    def __sub__(self, other: Any) -> Affine:
        if isinstance(other, Affine):
            return Affine(self.M.plus(other.M.scaled(-1.0)), self.c - other.c)
        return Affine(self.M, np.asarray(self.c - other, dtype=float))

    def __rsub__(self, other: Any) -> Affine:
        result: Affine = (-self).__add__(other)
        return result

    def __mul__(self, scalar: Any) -> Affine:
        if not np.isscalar(scalar):
            raise TypeError("an Affine is multiplied by scalars only; use @")
        factor = float(scalar)  # type: ignore[arg-type]
        return Affine(self.M.scaled(factor), factor * self.c)

    __rmul__ = __mul__

    def sum(self) -> Affine:
        """Return the sum of the rows, as a one-row expression."""
        M = self.M
        row = Entries(np.zeros_like(M.row), M.col, M.val, (1, M.shape[1]))
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
    rows = e.shape[0]
    one_each = len(M.row) == rows and len(np.unique(M.row)) == rows
    P: np.ndarray | sp.csr_array
    if one_each and len(np.unique(M.col)) == rows:
        P = np.zeros(width)
        P[M.col] = 2.0 * w[M.row] * M.val**2
    else:
        csr = M.csr()
        P = sp.csr_array(2.0 * (csr.T @ sp.diags_array(w) @ csr))
    slope = (2.0 * w * e.c)[M.row] * M.val  # the linear part, entry by entry
    linear = Entries(np.zeros_like(M.row), M.col, slope, (1, width))
    return Quadratic(P, Affine(linear, np.zeros(1)))


def cone(limit: float, parts: list[Affine]) -> Rows:
    """Return ``|| [parts] ||_2 <= limit`` as second-order cone rows."""
    width = max(p.M.shape[1] for p in parts)
    first = Entries(np.zeros(0, int), np.zeros(0, int), np.zeros(0), (1, width))
    A = Entries.stack([first, *(p.M.scaled(-1.0) for p in parts)], width)
    b = np.concatenate([[limit], *(p.c for p in parts)])
    return Rows("soc", A, b)


def power_cones(epigraph: Affine, e: Affine, exponent: float) -> Rows:
    """Return ``epigraph_i >= |e_i|^exponent`` as 3-dimensional power cones.

    Each ``(t_i, 1, e_i)`` lies in the cone ``t^alpha >= |e|``,
    ``alpha = 1 / exponent``: rows ``3i``, ``3i + 1`` and ``3i + 2``.
    """
    width = max(epigraph.M.shape[1], e.M.shape[1])
    n = e.shape[0]
    t, x = epigraph.M, e.M
    A = Entries(
        np.concatenate([3 * t.row, 3 * x.row + 2]),
        np.concatenate([t.col, x.col]),
        -np.concatenate([t.val, x.val]),
        (3 * n, width),
    )
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
