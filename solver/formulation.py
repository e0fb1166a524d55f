"""Build one account's convex program from its snapshot, terms and constraints.

The free variables are stacked in one nonnegative vector ``z = [b; s]``:
buys of the assets that may be bought and sales of the lots that may be
sold. Forbidden trades have no variable at all and forced sales
(liquidations) are constants, so restrictions, wash-sale rules and fixed
trade sides make the program smaller instead of adding rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from models.errors import InputError
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, Term, TradeMask

OBJECTIVE_SCALE = 1e4  # the objective is solved in bps of V, so gaps are meaningful
LOT_QUANTITY = "lot_quantity"
CASH_NON_NEGATIVE = "cash_non_negative"


@dataclass
class Program:
    """A built program; satisfies ``models.terms.ProgramVars``."""

    snapshot: Snapshot
    mask: TradeMask
    buy_assets: np.ndarray  # universe index of each buy variable
    sell_lots: np.ndarray  # lot index of each sale variable
    forced_sales: np.ndarray  # (n lots,) constant sales (liquidations)
    trades: cp.Variable
    weight_map: sp.csr_array
    active_offset: np.ndarray
    buys: cp.Expression
    lot_sales: cp.Expression
    sells: cp.Expression
    traded: cp.Expression
    weights: cp.Expression
    cash: cp.Expression
    terms: dict[str, cp.Expression] = field(default_factory=dict)
    constraints: dict[str, list[cp.Constraint]] = field(default_factory=dict)
    problem: cp.Problem | None = None

    def outcome(self, z: np.ndarray) -> Outcome:
        """Return the numpy outcome of a value of the stacked variables."""
        n_buy = len(self.buy_assets)
        buys = np.zeros(self.snapshot.n_assets)
        buys[self.buy_assets] = z[:n_buy]
        lot_sales = self.forced_sales.copy()
        lot_sales[self.sell_lots] += z[n_buy:]
        return Outcome(self.snapshot, buys, lot_sales)


def build_program(
    snapshot: Snapshot,
    mask: TradeMask,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
) -> Program:
    """Return the program for ``snapshot`` restricted to the trades ``mask`` allows."""
    program = _variables(snapshot, mask)
    check_unique_names([c.name for c in constraints], snapshot.account_id)
    program.constraints[LOT_QUANTITY] = [
        program.trades[len(program.buy_assets) :]
        <= snapshot.lot_capacity[program.sell_lots]
    ]
    program.constraints[CASH_NON_NEGATIVE] = [program.cash >= 0]
    for constraint in constraints:
        program.constraints[constraint.name] = constraint.build(program)
    total: cp.Expression = cp.Constant(0.0)
    for term in objective:
        program.terms[term.name] = term.expr(program)
        if term.weight:
            total = total + term.weight * program.terms[term.name]
    rows = [c for group in program.constraints.values() for c in group]
    program.problem = cp.Problem(cp.Minimize(OBJECTIVE_SCALE * total), rows)
    return program


def check_unique_names(names: Sequence[str], account_id: str) -> None:
    """Reject two constraints (or terms) with the same name."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"two constraints named {name!r}; give one another name",
                account_id=account_id,
                field="constraints",
            )
        seen.add(name)


def _variables(s: Snapshot, mask: TradeMask) -> Program:
    """Create the stacked variable and the affine maps to asset space."""
    forced = np.where(mask.must_sell, s.lot_capacity, 0.0)
    buy_assets = np.flatnonzero(mask.can_buy)
    sell_lots = np.flatnonzero(mask.can_sell & ~mask.must_sell & (s.lot_capacity > 0))
    n_buy, n = len(buy_assets), len(buy_assets) + len(sell_lots)
    z = cp.Variable(n, nonneg=True, name="trades")
    pick_buys = sp.csr_array(
        (np.ones(n_buy), (buy_assets, np.arange(n_buy))), shape=(s.n_assets, n)
    )
    pick_sales = sp.csr_array(
        (np.ones(len(sell_lots)), (sell_lots, np.arange(n_buy, n))), shape=(s.n_lots, n)
    )
    sells_map = sp.csr_array(s.holdings @ pick_sales)
    forced_sells = s.holdings @ forced
    weight_map = sp.csr_array(pick_buys - sells_map)
    traded_map = sp.csr_array(pick_buys + sells_map)
    current = s.current - forced_sells
    cash_row = -pick_buys.sum(axis=0) + sells_map.sum(axis=0) - s.cost_rate @ traded_map
    forced_cash = forced_sells.sum() - s.cost_rate @ forced_sells
    return Program(
        snapshot=s,
        mask=mask,
        buy_assets=buy_assets,
        sell_lots=sell_lots,
        forced_sales=forced,
        trades=z,
        weight_map=weight_map,
        active_offset=current - s.target,
        buys=pick_buys @ z,
        lot_sales=pick_sales @ z + forced,
        sells=sells_map @ z + forced_sells,
        traded=traded_map @ z + forced_sells,
        weights=weight_map @ z + current,
        cash=cash_row @ z + (s.cash + forced_cash),
    )
