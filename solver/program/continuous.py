"""Continuous optimum of one account: trade sides, infeasibility diagnosis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from models.constraints import NoBuyAndSell
from models.errors import InputError
from models.snapshot import Snapshot
from models.terms import Constraint, Term, TradeMask, TradeRule
from solver.errors import InfeasibleError, NoMatrixFormError, SolverFailedError
from solver.program.direct import Matrices, build_matrices
from solver.program.formulation import build_program, check_unique_names
from solver.program.report import objective_value
from solver.program.sides import one_side_each
from solver.program.solve import Solution, solve_matrices, solve_program
from solver.result import SolveOptions, Status


def combined_mask(snapshot: Snapshot, rules: Sequence[TradeRule]) -> TradeMask:
    """Return the trades every rule allows, and the sales any rule forces."""
    mask = TradeMask.everything(snapshot)
    for rule in rules:
        mask = mask & rule.mask(snapshot)
    return mask


def rules_mask(snapshot: Snapshot, rules: Sequence[TradeRule]) -> TradeMask:
    """Return the rules' combined mask; raise if a lot must be sold and may not be.

    Raises
    ------
    InfeasibleError
        Naming the rules that force the first such lot's sale and those
        that forbid it (e.g. ``liquidate`` and ``wash_sale``).
    """
    mask = combined_mask(snapshot, rules)
    clash = mask.must_sell & ~mask.can_sell
    if not clash.any():
        return mask
    lot = int(np.argmax(clash))
    masks = [(rule.name, rule.mask(snapshot)) for rule in rules]
    forcing = [name for name, m in masks if m.must_sell[lot]]
    blocking = [name for name, m in masks if not m.can_sell[lot]]
    names = tuple(dict.fromkeys([*forcing, *blocking]))
    asset = snapshot.universe[snapshot.lot_asset[lot]]
    raise InfeasibleError(
        f"infeasible: conflicting constraints {', '.join(names)}: lot "
        f"{snapshot.lot_ids[lot]!r} of {asset} must be sold ({', '.join(forcing)}) "
        f"and may not be ({', '.join(blocking)})",
        conflicting=names,
    )


def optimize(
    snapshot: Snapshot,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    rules: Sequence[TradeRule],
    options: SolveOptions,
) -> Solution:
    """Solve; if sides conflict under ``NoBuyAndSell``, fix them and re-solve.

    After the first solve, every asset keeps one side: that of its net trade,
    or for an asset that did not trade, the side it leans to (``fix_sides``). The
    program is re-solved once without the other side's variables (the
    relax-fix-resolve heuristic of Moehle et al., "Tax-aware portfolio
    construction via convex optimization", 2021). Fixing only the
    conflicting assets was measured to move the harvesting to other assets
    and take up to four solves, for no better objective.

    Raises
    ------
    InfeasibleError
        With the smallest conflicting set of named constraints found by
        dropping them one at a time.
    """
    mask = rules_mask(snapshot, rules)
    program = _direct_program(snapshot, mask, objective, constraints, options)
    optimum = solve_once(
        snapshot, mask, objective, constraints, options, matrices=program
    )
    elastic = (
        optimum is None and options.elastic and any(c.is_soft for c in constraints)
    )
    if elastic:
        optimum = solve_once(
            snapshot, mask, objective, constraints, options, elastic=True
        )
    if optimum is None:
        conflicting = diagnose(snapshot, objective, constraints, rules, options)
        raise InfeasibleError(
            "infeasible: conflicting constraints " + ", ".join(conflicting),
            conflicting=conflicting,
        )
    answer = one_side_each(
        snapshot,
        constraints,
        optimum,
        lambda m: solve_once(
            snapshot,
            m,
            objective,
            constraints,
            options,
            elastic=elastic,
            matrices=None if elastic or program is None else program.restricted(m),
        ),
        lambda o: objective_value(objective, o),
        options.sides,
    )
    if answer is None:
        raise InfeasibleError(
            "infeasible once each asset is held to one side (buy or sell)",
            conflicting=(NoBuyAndSell.name,),
        )
    return answer


def solve_once(
    snapshot: Snapshot,
    mask: TradeMask,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    options: SolveOptions,
    *,
    elastic: bool = False,
    matrices: Matrices | None = None,
) -> Solution | None:
    """Solve once, by the direct Clarabel path when it applies; ``None`` if infeasible.

    ``matrices`` are the program's, already built (a sweep re-weights them).
    When Clarabel gives no usable answer, the cvxpy path runs the fallback
    solvers. The elastic program (soft limits as penalties, status
    ``relaxed``) always goes through cvxpy: it runs only for accounts found
    infeasible.

    Raises
    ------
    SolverFailedError
        When no solver gave an answer.
    """
    failures: tuple[str, ...] = ()
    if matrices is None and not elastic and _direct(options):
        try:
            matrices = build_matrices(snapshot, mask, objective, constraints)
        except NoMatrixFormError as exc:  # cvxpy compiles what the maps cannot
            failures = (f"{exc}; solved through cvxpy",)
    if matrices is not None:
        direct = solve_matrices(matrices, options)
        if direct.status is Status.INFEASIBLE:
            return None
        if direct.status is not Status.FAILED:
            return direct
        if not options.fallback:
            raise SolverFailedError(
                f"account_id={snapshot.account_id!r}: {direct.note}"
            )
        failures = (f"{direct.note} (direct path)",)
        first, *rest = options.fallback
        options = replace(options, solver=first, fallback=tuple(rest))
    program = build_program(snapshot, mask, objective, constraints, elastic=elastic)
    solution = solve_program(program, options, failed_before=failures)
    if solution.status is Status.INFEASIBLE:
        return None
    return replace(solution, status=Status.RELAXED) if elastic else solution


def _direct_program(
    snapshot: Snapshot,
    mask: TradeMask,
    objective: Sequence[Term],
    constraints: Sequence[Constraint],
    options: SolveOptions,
) -> Matrices | None:
    """Return the program's matrices when the direct path applies, else None.

    Built once per account: the side solves drop variables from it
    (``Matrices.restricted``). None also when a term or constraint has no
    matrix form; ``solve_once`` then says so and goes through cvxpy.
    """
    if not _direct(options):
        return None
    try:
        return build_matrices(snapshot, mask, objective, constraints)
    except NoMatrixFormError:
        return None


def _direct(options: SolveOptions) -> bool:
    """Return whether to build the matrices directly instead of through cvxpy."""
    return options.formulation == "auto" and options.solver == "CLARABEL"


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
        if solve_once(snapshot, mask, objective, trial_constraints, options) is None:
            kept_constraints, kept_rules = trial_constraints, trial_rules
    names = [c.name for c in kept_constraints] + [r.name for r in kept_rules]
    return tuple(names) or ("cash_non_negative", "lot_quantity")


def check_objective(terms: Sequence[Term], account_id: str) -> tuple[Term, ...]:
    """Return the objective's terms; reject an empty objective or a non-term.

    With no term every feasible trade list is optimal and the solver would
    return an arbitrary one.
    """
    terms = tuple(terms)
    if not terms:
        raise InputError(
            "empty objective: give at least one term, e.g. TrackingError(100.0)",
            account_id=account_id,
            field="objective",
        )
    for term in terms:
        if not isinstance(term, Term):
            raise InputError(
                f"not an objective term: {term!r}",
                account_id=account_id,
                field="objective",
            )
    check_unique_names([t.name for t in terms], account_id, field="objective")
    return terms


def split_constraints(
    items: Sequence[Constraint | TradeRule], account_id: str
) -> tuple[list[Constraint], list[TradeRule]]:
    """Separate constraints from trade rules; reject anything else."""
    plain: list[Constraint] = []
    rules: list[TradeRule] = []
    for item in items:
        if isinstance(item, TradeRule):
            rules.append(item)
        elif isinstance(item, Constraint):
            plain.append(item)
        else:
            raise InputError(
                f"not a constraint or trade rule: {item!r}",
                account_id=account_id,
                field="constraints",
            )
    check_unique_names([i.name for i in items], account_id)
    return plain, rules
