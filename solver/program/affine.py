"""Affine expressions over the stacked variables, and the rows they compare into.

The matrix path hands each constraint a ``ProgramVars`` whose quantities
are :class:`Affine` (``M @ v + c``). A constraint's ``build``, written once
with indexing, ``@``, ``+``, ``-``, scalar ``*``, ``sum`` and comparisons,
then returns :class:`Rows` of Clarabel's form ``A v + s = b``, ``s`` in a
cone, instead of cvxpy constraints. Anything else (a cvxpy atom applied to
an ``Affine``) fails loudly, and the account is solved through cvxpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

KINDS = ("eq", "le", "soc")


@dataclass(frozen=True)
class Rows:
    """Rows ``A v + s = b``, ``s`` in the cone ``kind`` (``eq``, ``le``, ``soc``).

    ``eq`` is the zero cone, ``le`` the nonnegative orthant, ``soc`` the
    second-order cone.
    """

    kind: str
    A: sp.csr_array
    b: np.ndarray


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

    def __add__(self, other: Any) -> Affine:
        if isinstance(other, Affine):
            return Affine(sp.csr_array(self.M + other.M), self.c + other.c)
        return Affine(self.M, np.asarray(self.c + other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine(-self.M, -self.c)

    def __sub__(self, other: Any) -> Affine:
        return self.__add__(-other)

    def __rsub__(self, other: Any) -> Affine:
        return (-self).__add__(other)

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
        return Rows("le", gap.M, _broadcast(-gap.c, gap))

    def __ge__(self, other: Any) -> Rows:
        return (-self).__le__(-other)

    def __eq__(self, other: Any) -> Rows:  # type: ignore[override]
        gap = self - other
        return Rows("eq", gap.M, _broadcast(-gap.c, gap))


def cone(limit: float, parts: list[Affine]) -> Rows:
    """Return ``|| [parts] ||_2 <= limit`` as second-order cone rows."""
    width = parts[0].M.shape[1]
    stacked = sp.vstack([p.M for p in parts])
    A = sp.csr_array(sp.vstack([sp.csr_array((1, width)), -stacked]))
    b = np.concatenate([[limit], *(p.c for p in parts)])
    return Rows("soc", A, b)


def _broadcast(b: np.ndarray | float, e: Affine) -> np.ndarray:
    """Return ``b`` as one value per row of ``e``."""
    return np.broadcast_to(np.asarray(b, dtype=float), e.shape).copy()
