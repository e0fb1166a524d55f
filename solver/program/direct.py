"""Build the standard program's matrices and hand them straight to Clarabel.

cvxpy compiles each account's problem afresh (about 18 ms per solve at 500
assets) although every matrix of the standard terms and constraints is
already at hand in the formulation's affine maps. This path stacks them into
Clarabel's form ``min 1/2 v'Pv + q'v  s.t.  A v + s = b, s in K`` over
``v = [z; a; y; t]``: the trades, the active weights, the factor exposures
``y = G a`` and the impact epigraphs. Programs with any other term or
constraint go through cvxpy (:mod:`solver.program.formulation`), which is also the
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
from models.objective import LinearCost, MarketImpact, TaxCost, TrackingError
from models.snapshot import Snapshot
from models.terms import Constraint, Term, TradeMask
from solver.errors import NoMatrixFormError
from solver.program.affine import Affine, Rows, cone
from solver.program.formulation import (
    ACTIVE_WEIGHTS,
    ASSET_SALES,
    CASH_NON_NEGATIVE,
    LOT_QUANTITY,
    OBJECTIVE_SCALE,
    Layout,
    build_layout,
)

TERMS = (TrackingError, LinearCost, TaxCost, MarketImpact)
IMPACT_CONE = 2 / 3  # (t, 1, x) in the power cone: t^(2/3) >= |x|, t >= |x|^1.5


def supports(objective: Sequence[Term]) -> bool:
    """Return whether every term has a matrix form here.

    Constraints have one when their ``build`` works over affine maps
    (``build_matrices`` raises ``NoMatrixFormError`` when one does not).
    """
    return all(type(t) in TERMS for t in objective)


@dataclass
class _Rows:
    """Cone blocks of ``A v + s = b``, with the name each block reports under."""

    width: int
    A: list[sp.csr_array] = field(default_factory=list)
    b: list[np.ndarray] = field(default_factory=list)
    cones: list[Any] = field(default_factory=list)
    blocks: list[tuple[str, str, int, int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # reported, in order
    count: int = 0

    def add(self, name: str, kind: str, A: sp.csr_array, b: np.ndarray) -> None:
        """Add rows ``A v + s = b`` with ``s`` in cone ``kind`` (eq, le, soc)."""
        rows = A.shape[0]
        if name and name not in self.names:
            self.names.append(name)
        if not rows:
            return
        self.A.append(sp.csr_array(A))
        self.b.append(np.asarray(b, dtype=float))
        cone = {
            "eq": clarabel.ZeroConeT,
            "le": clarabel.NonnegativeConeT,
            "soc": clarabel.SecondOrderConeT,
        }[kind]
        self.cones.append(cone(rows))
        self.blocks.append((name, kind, self.count, self.count + rows))
        self.count += rows

    def le(self, name: str, e: Affine, upper: np.ndarray | float) -> None:
        """Add ``e <= upper``."""
        self.add(name, "le", e.M, upper - e.c)

    def ge(self, name: str, e: Affine, lower: np.ndarray | float) -> None:
        """Add ``e >= lower``."""
        self.add(name, "le", -e.M, e.c - lower)

    def eq(self, name: str, e: Affine, value: np.ndarray | float) -> None:
        """Add ``e == value``."""
        self.add(name, "eq", e.M, value - e.c)


@dataclass
class _Vars:
    """The account's quantities as affine expressions over ``v``.

    Satisfies ``models.terms.ProgramVars``: constraints build their rows
    over it exactly as they build cvxpy constraints over the cvxpy program.
    """

    snapshot: Snapshot
    layout: Layout
    width: int
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
    pieces: dict[str, tuple[np.ndarray, np.ndarray]]  # unweighted (diag P, q)

    def reweighted(self, weights: Mapping[str, float]) -> Matrices:
        """Return the program with new term weights: only P and q change."""
        diagonal = np.zeros(len(self.q))
        q = np.zeros(len(self.q))
        for name, (unit_diagonal, unit_q) in self.pieces.items():
            diagonal += weights[name] * unit_diagonal
            q += weights[name] * unit_q
        P = sp.diags_array(OBJECTIVE_SCALE * diagonal, format="csc")
        return replace(self, P=P, q=OBJECTIVE_SCALE * q)

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
    """Return the matrices of the program ``solver.program.formulation`` would build."""
    layout = build_layout(snapshot, mask)
    n, k = snapshot.n_assets, snapshot.risk.G.shape[0]
    impact = _impact_assets(snapshot, objective)
    nz = layout.size
    width = nz + n + k + len(impact)
    x = _variables(snapshot, layout, width, k)
    rows = _Rows(width)
    _structural_rows(x, rows)
    for constraint in constraints:
        rows.add(constraint.name, "le", sp.csr_array((0, width)), np.zeros(0))
        _constraint_rows(constraint, x, rows)
    pieces = {}
    for term in objective:
        if term.weight:
            pieces[term.name] = (np.zeros(width), np.zeros(width))
            _term(term, x, impact, *pieces[term.name], rows)
    empty = sp.csc_array((width, width))
    matrices = Matrices(
        snapshot=snapshot,
        mask=mask,
        layout=layout,
        P=empty,
        q=np.zeros(width),
        A=sp.csc_array(sp.vstack(rows.A)),
        b=np.concatenate(rows.b),
        cones=rows.cones,
        blocks=rows.blocks,
        names=rows.names,
        pieces=pieces,
    )
    return matrices.reweighted({t.name: t.weight for t in objective})


def _variables(s: Snapshot, layout: Layout, width: int, k: int) -> _Vars:
    """Place the layout's maps and the active and factor variables in ``v``."""
    nz, n = layout.size, s.n_assets

    def over_v(M: sp.csr_array | np.ndarray, c: np.ndarray) -> Affine:
        return Affine(_widen(M, width), c)

    def block(start: int, size: int) -> Affine:
        pick = sp.csr_array(
            (np.ones(size), (np.arange(size), start + np.arange(size))), (size, width)
        )
        return Affine(pick, np.zeros(size))

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
        cash=over_v(layout.cash.reshape(1, -1), np.array([layout.cash_before])),
    )


def _widen(M: sp.csr_array | np.ndarray, width: int) -> sp.csr_array:
    """Return ``M`` (columns ``z``) with zero columns up to ``width``."""
    M = sp.csr_array(M)
    return sp.csr_array((M.data, M.indices, M.indptr), (M.shape[0], width))


def _structural_rows(x: _Vars, rows: _Rows) -> None:
    """Trades >= 0, lot quantities, sales balance, active weights, factors, cash."""
    s, layout, nz = x.snapshot, x.layout, x.layout.size
    trades = Affine(sp.csr_array(sp.eye(nz, x.width)), np.zeros(nz))
    rows.ge("", trades, 0.0)
    lots = trades[np.arange(nz - len(layout.sell_lots), nz)]
    rows.le(LOT_QUANTITY, lots, s.lot_capacity[layout.sell_lots])
    balance = _widen(layout.sales_balance, x.width)
    rows.eq(ASSET_SALES, Affine(balance, np.zeros(balance.shape[0])), 0.0)
    active_rows = Affine(x.active.M - x.weights.M, -x.weights.c)
    rows.eq(ACTIVE_WEIGHTS, active_rows, -s.target)
    if x.factors.M.shape[0]:
        exposures = s.risk.G @ x.active
        rows.eq("", Affine(x.factors.M - exposures.M, -exposures.c), 0.0)
    rows.ge(CASH_NON_NEGATIVE, x.cash, 0.0)


def _constraint_rows(c: Constraint, x: _Vars, rows: _Rows) -> None:
    """Add the rows one constraint builds over the affine maps.

    Raises
    ------
    NoMatrixFormError
        The constraint's ``build`` uses something affine maps cannot carry
        (a cvxpy atom, a non-linear function).
    """
    try:
        built = c.build(x)
    except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
        raise NoMatrixFormError(
            f"constraint {c.name!r} has no matrix form ({type(exc).__name__}: {exc})"
        ) from exc
    for block in built:
        if not isinstance(block, Rows):
            raise NoMatrixFormError(
                f"constraint {c.name!r} has no matrix form "
                f"(its build gave {type(block).__name__})"
            )
        rows.add(c.name, block.kind, block.A, block.b)


def _impact_assets(s: Snapshot, objective: Sequence[Term]) -> np.ndarray:
    """Return the assets that carry a market-impact epigraph variable."""
    if not any(isinstance(t, MarketImpact) and t.weight for t in objective):
        return np.array([], dtype=int)
    return np.flatnonzero(s.impact_scale > 0)


def _term(
    term: Term,
    x: _Vars,
    impact: np.ndarray,
    diagonal: np.ndarray,
    q: np.ndarray,
    rows: _Rows,
) -> None:
    """Add one unweighted term to the quadratic diagonal, ``q`` and the cones."""
    s = x.snapshot
    match term:
        case TrackingError():
            active = x.active.M.indices
            diagonal[active] += 2 * s.risk.d
            diagonal[x.factors.M.indices] += 2.0
        case LinearCost():
            q += s.cost_rate @ x.traded.M
        case TaxCost():
            q += term.coefficients(s) @ x.lot_sales.M
        case MarketImpact():
            start = x.width - len(impact)
            q[start:] += term.coefficient * s.impact_scale[impact]
            _impact_cones(x, impact, start, rows)
        case _:
            raise TypeError(f"no matrix form for term {term.name!r}")


def _impact_cones(x: _Vars, impact: np.ndarray, start: int, rows: _Rows) -> None:
    """Add ``(t_i, 1, traded_i)`` in the 2/3 power cone for each impact asset."""
    for j, asset in enumerate(impact):
        traded = x.traded[np.array([asset])]
        epigraph = sp.csr_array(([-1.0], ([0], [start + j])), (1, x.width))
        A = sp.vstack([epigraph, sp.csr_array((1, x.width)), -traded.M])
        rows.A.append(sp.csr_array(A))
        rows.b.append(np.array([0.0, 1.0, traded.c[0]]))
        rows.cones.append(clarabel.PowerConeT(IMPACT_CONE))
        rows.blocks.append(("", "pow", rows.count, rows.count + 3))
        rows.count += 3
