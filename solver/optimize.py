"""Continuous optimum of one account: trade sides, infeasibility diagnosis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.constraints import NoBuyAndSell
from models.snapshot import Snapshot
from models.terms import Constraint, Outcome, Term, TradeMask, TradeRule
from solver.errors import InfeasibleError
from solver.formulation import Program, build_program
from solver.result import SolveOptions, Status
from solver.solve import Solution, solve_program

SIDE_TOLERANCE = 1e-9  # fraction of V: smaller buys/sells are solver noise
MAX_SIDE_ROUNDS = 4


@dataclass(frozen=True)
class Optimum:
    """The continuous answer and the program it came from."""

    outcome: Outcome
    program: Program
    status: Status
    solver: str
    solves: int


def combined_mask(snapshot: Snapshot, rules: Sequence[TradeRule]) -> TradeMask:
    """Return the trades every rule allows, and the sales any rule forces."""
    mask = TradeMask.everything(snapshot)
    for rule in rules:
        mask = mask & rule.mask(snapshot)
    return mask


def optimize(
    snapshot: Snapshot,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    rules: Sequence[TradeRule],
    options: SolveOptions,
) -> Optimum:
    """Solve; if sides conflict under ``NoBuyAndSell``, fix them and re-solve.

    Each asset bought and sold at once keeps the side of its net trade; the
    program is re-solved without the other side's variables (Moehle et al.,
    "Tax-aware portfolio construction via convex optimization", 2021).

    Raises
    ------
    InfeasibleError
        With the smallest conflicting set of named constraints found by
        dropping them one at a time.
    """
    mask = combined_mask(snapshot, rules)
    one_side = any(isinstance(c, NoBuyAndSell) for c in constraints)
    for solves in range(1, MAX_SIDE_ROUNDS + 1):
        program = build_program(snapshot, mask, objective, constraints)
        solution = solve_program(program, options)
        if solution.status is Status.INFEASIBLE or solution.z is None:
            conflicting = diagnose(snapshot, objective, constraints, rules, options)
            if solves > 1:
                conflicting = (*conflicting, NoBuyAndSell.name)
            raise InfeasibleError(
                "infeasible: conflicting constraints " + ", ".join(conflicting),
                conflicting=conflicting,
            )
        outcome = program.outcome(solution.z)
        conflict = (outcome.buys > SIDE_TOLERANCE) & (outcome.sells > SIDE_TOLERANCE)
        if not (one_side and conflict.any()):
            return _optimum(outcome, program, solution, solves)
        if solves == MAX_SIDE_ROUNDS - 1:  # last round: fix every asset's side
            conflict = np.ones(snapshot.n_assets, dtype=bool)
        mask = mask & _fix_sides(snapshot, outcome, conflict)
    return _optimum(outcome, program, solution, solves)


def _optimum(
    outcome: Outcome, program: Program, solution: Solution, solves: int
) -> Optimum:
    """Bundle the answer."""
    return Optimum(outcome, program, solution.status, solution.solver, solves)


def _fix_sides(snapshot: Snapshot, o: Outcome, conflict: np.ndarray) -> TradeMask:
    """Keep buys where the net trade is a buy, sales where it is a sale.

    An asset that did not trade keeps the side towards its target.
    """
    net = o.buys - o.sells
    towards_target = snapshot.target - snapshot.current
    buy_side = conflict & np.where(net != 0, net > 0, towards_target >= 0)
    sell_side = conflict & ~buy_side
    return TradeMask(
        can_buy=~sell_side,
        can_sell=~buy_side[snapshot.lot_asset],
        must_sell=np.zeros(snapshot.n_lots, dtype=bool),
    )


def diagnose(
    snapshot: Snapshot,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    rules: Sequence[TradeRule],
    options: SolveOptions,
) -> tuple[str, ...]:
    """Return a minimal set of constraint and rule names that is infeasible.

    Deletion filter: drop each named item in turn; keep it out if the rest
    is still infeasible. What remains conflicts, and removing any one of it
    makes the program feasible.
    """
    kept_constraints = list(constraints)
    kept_rules = list(rules)
    for item in [*constraints, *rules]:
        trial_constraints = [c for c in kept_constraints if c is not item]
        trial_rules = [r for r in kept_rules if r is not item]
        mask = combined_mask(snapshot, trial_rules)
        program = build_program(snapshot, mask, objective, trial_constraints)
        if solve_program(program, options).status is Status.INFEASIBLE:
            kept_constraints, kept_rules = trial_constraints, trial_rules
    names = [c.name for c in kept_constraints] + [r.name for r in kept_rules]
    return tuple(names) or ("cash_non_negative", "lot_quantity")
