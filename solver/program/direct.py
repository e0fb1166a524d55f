"""Build the program's matrices and hand them straight to Clarabel.

cvxpy compiles each account's problem afresh (about 18 ms per solve at 500
assets). This path stacks Clarabel's form ``min 1/2 v'Pv + q'v  s.t.
A v + s = b, s in K`` over ``v = [z; a; y; t]`` (the trades, the active
weights, the factor exposures ``y = G a`` and any epigraph variables)
from the terms and constraints themselves: each is handed a
``ProgramVars`` of affine maps (:mod:`solver.program.affine`), so its
maths is the one its cvxpy form uses. A term or constraint whose maths the
maps cannot carry raises ``NoMatrixFormError``, and the account goes
through cvxpy (:mod:`solver.program.formulation`), which is also the
reference the tests hold this path to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import clarabel
import numpy as np
import scipy.sparse as sp

from models.constraints import MaxTrackingError
from models.snapshot import Snapshot
from models.terms import Constraint, Term, TradeMask
from solver.errors import NoMatrixFormError
from solver.program.affine import (
    Affine,
    AffineQuantities,
    Entries,
    Quadratic,
    Rows,
    power_cones,
    weighted_squares,
)
from solver.program.formulation import (
    ACTIVE_WEIGHTS,
    CASH_NON_NEGATIVE,
    LOT_QUANTITY,
    OBJECTIVE_SCALE,
    Layout,
    build_layout,
)

CONES = {
    "eq": clarabel.ZeroConeT,
    "le": clarabel.NonnegativeConeT,
    "soc": clarabel.SecondOrderConeT,
}
MAP_ERRORS = (TypeError, ValueError, AttributeError, NotImplementedError)


@dataclass
class _Rows:
    """Cone blocks of ``A v + s = b``, with the name each block reports under."""

    A: list[Entries] = field(default_factory=list)
    b: list[np.ndarray] = field(default_factory=list)
    cones: list[Any] = field(default_factory=list)
    blocks: list[tuple[str, str, int, int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # reported, in order
    count: int = 0

    def name(self, name: str) -> None:
        """Report ``name`` even if it adds no rows."""
        if name and name not in self.names:
            self.names.append(name)

    def add(self, name: str, rows: Rows) -> None:
        """Add a block of rows under ``name`` ("" for structural rows)."""
        self.name(name)
        size = rows.A.shape[0]
        if not size:
            return
        self.A.append(rows.A)
        self.b.append(np.asarray(rows.b, dtype=float))
        if rows.kind == "pow":
            self.cones += [clarabel.PowerConeT(rows.alpha)] * (size // 3)
        else:
            self.cones.append(CONES[rows.kind](size))
        self.blocks.append((name, rows.kind, self.count, self.count + size))
        self.count += size


@dataclass
class _Vars(AffineQuantities):
    """The account's quantities as affine expressions over ``v``.

    Satisfies ``models.terms.ProgramVars``: terms and constraints build
    over it exactly as over the cvxpy program. ``power`` adds epigraph
    columns (``width`` grows) and their cone rows (``epigraphs``).
    """

    layout: Layout
    width: int
    epigraphs: list[Rows] = field(default_factory=list)

    def square(self, e: Affine, weights: np.ndarray) -> Quadratic:
        """Return ``sum_i weights_i e_i^2``."""
        return weighted_squares(e, weights)

    def power(self, e: Affine, exponent: float) -> Affine:
        """Return new variables ``t_i >= |e_i|^exponent`` (power cones)."""
        n, start = e.shape[0], self.width
        self.width += n
        t = Affine(Entries.pick(n, start + np.arange(n), self.width), np.zeros(n))
        self.epigraphs.append(power_cones(t, e, exponent))
        return t


@dataclass
class Matrices:
    """One account's program in Clarabel's form."""

    snapshot: Snapshot
    mask: TradeMask
    layout: Layout
    P: sp.csc_array
    q: np.ndarray
    A: sp.csc_array
    b: np.ndarray
    cones: list[Any]
    blocks: list[tuple[str, str, int, int]]
    names: list[str]
    pieces: dict[str, tuple[np.ndarray | sp.csr_array, np.ndarray]]  # unweighted

    def reweighted(self, weights: Mapping[str, float]) -> Matrices:
        """Return the program with new term weights: only P and q change.

        Clarabel reads the upper triangle of ``P``.
        """
        width = len(self.q)
        diagonal, q = np.zeros(width), np.zeros(width)
        P = sp.csc_array((width, width))
        for name, (unit_P, unit_q) in self.pieces.items():
            if isinstance(unit_P, np.ndarray):  # a diagonal, kept as a vector
                diagonal += weights[name] * unit_P
            else:
                P = sp.csc_array(P + weights[name] * sp.triu(unit_P))
            q += weights[name] * unit_q
        P = (
            sp.csc_array(P + sp.diags_array(diagonal))
            if P.nnz
            else sp.diags_array(diagonal, format="csc")
        )
        return replace(self, P=OBJECTIVE_SCALE * P, q=OBJECTIVE_SCALE * q)

    def restricted(self, mask: TradeMask) -> Matrices:
        """Return the program of a narrower ``mask``, by dropping variables.

        The same program ``build_matrices`` gives for ``mask`` (the side
        solves of one account differ only in which trades are free), without
        building it again. Raises ``ValueError`` when ``mask`` allows a
        trade this program does not have or forces other sales.
        """
        layout, keep = self.layout.restricted(self.snapshot, mask)
        nz = self.layout.size
        if not nz:  # no trade variables: nothing to drop
            return replace(self, mask=mask)
        columns = np.r_[np.flatnonzero(keep), np.arange(nz, len(self.q))]
        dropped = {  # rows of the dropped variables, by block
            0: keep,  # trades >= 0 (the first block)
            self._block(LOT_QUANTITY): keep[nz - len(self.layout.sell_lots) :],
        }
        rows, blocks, cones, start = [], [], [], 0
        cone_at = 0
        for k, (name, kind, first, stop) in enumerate(self.blocks):
            count = (stop - first) // 3 if kind == "pow" else 1
            block_cones = self.cones[cone_at : cone_at + count]
            cone_at += count
            index = np.arange(first, stop)
            if k in dropped:
                index = index[dropped[k]]
                if not len(index):
                    continue
                block_cones = [CONES[kind](len(index))]
            rows.append(index)
            blocks.append((name, kind, start, start + len(index)))
            cones += block_cones
            start += len(index)
        kept_rows = np.concatenate(rows)
        P = self.P[columns][:, columns]
        return replace(
            self,
            mask=mask,
            layout=layout,
            P=sp.csc_array(P),
            q=self.q[columns],
            A=sp.csc_array(self.A[kept_rows][:, columns]),
            b=self.b[kept_rows],
            cones=cones,
            blocks=blocks,
            pieces={
                name: (
                    unit_P[columns]
                    if isinstance(unit_P, np.ndarray)
                    else sp.csr_array(unit_P[columns][:, columns]),
                    unit_q[columns],
                )
                for name, (unit_P, unit_q) in self.pieces.items()
            },
        )

    def _block(self, name: str) -> int:
        """Return the index of the block named ``name`` (-1: none)."""
        return next((k for k, b in enumerate(self.blocks) if b[0] == name), -1)

    def with_tracking_error_cap(self, limit: float) -> Matrices:
        """Return the program with a new ``max_tracking_error`` cap (one b entry)."""
        b = self.b.copy()
        for name, kind, start, _ in self.blocks:
            if name == MaxTrackingError.name and kind == "soc":
                b[start] = limit
                return replace(self, b=b)
        raise KeyError("the program has no max_tracking_error constraint")


def build_matrices(
    snapshot: Snapshot,
    mask: TradeMask,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
) -> Matrices:
    """Return the matrices of the program ``solver.program.formulation`` would build.

    Raises
    ------
    NoMatrixFormError
        A term or constraint whose maths affine maps cannot carry.
    """
    layout = build_layout(snapshot, mask)
    x = _variables(snapshot, layout)
    rows = _Rows()
    _structural_rows(x, rows)
    for constraint in constraints:
        rows.name(constraint.name)
        for block in _built(constraint.name, lambda c=constraint: c.build(x)):
            rows.add(constraint.name, block)
    units = {
        term.name: _built(term.name, lambda t=term: t.expr(x))
        for term in objective
        if term.weight
    }
    for epigraph in x.epigraphs:
        rows.add("", epigraph)
    width = x.width
    pieces = {name: _piece(unit, width) for name, unit in units.items()}
    matrices = Matrices(
        snapshot=snapshot,
        mask=mask,
        layout=layout,
        P=sp.csc_array((width, width)),
        q=np.zeros(width),
        A=Entries.stack(rows.A, width).csc(),
        b=np.concatenate(rows.b),
        cones=rows.cones,
        blocks=rows.blocks,
        names=rows.names,
        pieces=pieces,
    )
    return matrices.reweighted({t.name: t.weight for t in objective})


def _built(name: str, build: Any) -> Any:
    """Run a term's ``expr`` or a constraint's ``build`` over the affine maps.

    Raises
    ------
    NoMatrixFormError
        It failed, or gave something that is not affine maps' (a cvxpy
        expression or constraint).
    """
    try:
        built = build()
    except MAP_ERRORS as exc:
        raise NoMatrixFormError(
            f"{name!r} has no matrix form ({type(exc).__name__}: {exc})"
        ) from exc
    parts = built if isinstance(built, list) else [built]
    for part in parts:
        if not isinstance(part, Rows | Affine | Quadratic | float | int):
            raise NoMatrixFormError(
                f"{name!r} has no matrix form (it gave a {type(part).__name__})"
            )
    return built


def _piece(
    unit: Affine | Quadratic | float, width: int
) -> tuple[np.ndarray | sp.csr_array, np.ndarray]:
    """Return an unweighted term's ``(P, q)`` at the program's width.

    A diagonal ``P`` (every term of this package) stays a vector.
    """
    if isinstance(unit, Quadratic):
        if isinstance(unit.P, np.ndarray):
            diagonal = np.zeros(width)
            diagonal[: unit.width] = unit.P
            return diagonal, _row(unit.linear, width)
        return unit.matrix(width), _row(unit.linear, width)
    if isinstance(unit, Affine):
        return np.zeros(width), _row(unit, width)
    return np.zeros(width), np.zeros(width)  # a constant


def _row(e: Affine, width: int) -> np.ndarray:
    """Return a one-row expression's coefficients as a dense vector."""
    if e.shape != (1,):
        raise NoMatrixFormError(f"an objective term must be a scalar, got {e.shape}")
    return np.bincount(e.M.col, e.M.val, minlength=width).astype(float)


def _variables(s: Snapshot, layout: Layout) -> _Vars:
    """Place the layout's maps and the active and factor variables in ``v``."""
    nz, n, k = layout.size, s.n_assets, s.risk.G.shape[0]
    width = nz + n + k

    def over_v(M: Entries, c: np.ndarray) -> Affine:
        return Affine(M.widened(width), c)

    def block(start: int, size: int) -> Affine:
        return Affine(
            Entries.pick(size, start + np.arange(size), width), np.zeros(size)
        )

    return _Vars(
        snapshot=s,
        layout=layout,
        width=width,
        active=block(nz, n),
        factors=block(nz + n, k),
        buys=over_v(layout.buys, np.zeros(n)),
        lot_sales=over_v(layout.lot_sales, layout.forced_sales),
        sells=over_v(layout.sells, layout.forced_sells),
        traded=over_v(layout.traded, layout.forced_sells),
        weights=over_v(layout.weights, layout.weights_before),
        cash=over_v(Entries.of(layout.cash), np.array([layout.cash_before])),
    )


def _structural_rows(x: _Vars, rows: _Rows) -> None:
    """Trades >= 0, lot quantities, active weights, factors, cash.

    The program's own rows, written straight as matrices (no user maths).
    """
    s, layout, nz, width = x.snapshot, x.layout, x.layout.size, x.width
    rows.add(
        "",
        Rows("le", Entries.pick(nz, np.arange(nz), width).scaled(-1.0), np.zeros(nz)),
    )
    n_lots = len(layout.sell_lots)
    lots = Entries.pick(n_lots, nz - n_lots + np.arange(n_lots), width)
    rows.add(LOT_QUANTITY, Rows("le", lots, s.lot_capacity[layout.sell_lots]))
    active = x.active - x.weights  # a - (w - target) = 0
    rows.add(ACTIVE_WEIGHTS, Rows("eq", active.M, x.weights.c - s.target))
    if x.factors.shape[0]:  # y - G a = 0
        exposures = x.factors - s.risk.G @ x.active
        rows.add("", Rows("eq", exposures.M, np.zeros(x.factors.shape[0])))
    rows.add(CASH_NON_NEGATIVE, Rows("le", x.cash.M.scaled(-1.0), x.cash.c))
