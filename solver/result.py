"""Result types: status, solver options and the frozen result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, partial
from typing import Any

import pandas as pd

from models.errors import InputError

TRADE_COLUMNS = (
    "account_id",
    "asset",
    "side",
    "quantity",
    "lot_id",
    "price",
    "value",
    "realized_gain",
    "term",
    "est_tax",
    "est_cost",
    "reason",
    "household_id",
)
SUMMARY_FIELDS = (
    "account_id",
    "status",
    "message",
    "tracking_error_before",
    "tracking_error_after",
    "turnover",
    "est_cost",
    "est_tax",
    "realized_gain_short",
    "realized_gain_long",
    "cash_after",
    "cash_flow",
    "objective_bound",
    "objective_continuous",
    "objective_discrete",
    "solve_seconds",
    "solver",
    "as_of",
    "household_id",
)


ROUNDING_METHODS = ("auto", "greedy", "milp", "nearest", "none")
FORMULATIONS = ("auto", "cvxpy")
SIDE_SEARCHES = ("auto", "exact", "net")


class Status(StrEnum):
    """Outcome of one account, exactly the docs/DATA.md ``summary.status`` values."""

    OPTIMAL = "optimal"
    OPTIMAL_INACCURATE = "optimal_inaccurate"
    RELAXED = "relaxed"
    NO_TRADE = "no_trade"
    INFEASIBLE = "infeasible"
    INVALID_INPUT = "invalid_input"
    FAILED = "failed"


ANSWERED = frozenset(
    {Status.OPTIMAL, Status.OPTIMAL_INACCURATE, Status.RELAXED, Status.NO_TRADE}
)


@dataclass(frozen=True)
class SolveOptions:
    """How to solve.

    Parameters
    ----------
    solver : str
        First cvxpy solver to try.
    fallback : tuple of str
        Solvers tried in order when the previous one fails.
    time_limit_seconds : float or None
        Per-solve time limit passed to solvers that take one.
    rounding : str
        How the continuous answer becomes orders: ``"greedy"`` (nearest
        lot, repair, then local search on the true objective), ``"milp"``
        (mixed-integer choice between the lots bracketing each trade, HiGHS,
        then local search), ``"nearest"`` (nearest lot and repair only),
        ``"auto"`` (``milp`` up to ``milp_max_assets`` assets, else
        ``greedy``) or ``"none"`` (continuous quantities, for analysis).
    milp_max_assets : int
        Largest universe for which ``auto`` uses the mixed-integer solve
        (measured: 25 ms at 50 assets, 70-140 ms at 500, where the greedy
        search takes 4-27 ms).
    milp_time_limit_seconds : float or None
        Optional wall-clock limit of each mixed-integer solve, in seconds.
        ``None`` (default): no clock; the solve stops after a fixed number of
        branch-and-bound nodes (``solver.orders.milp.MAX_NODES``), so an account
        gets the same orders on a loaded machine as on an idle one. A clock
        makes orders depend on the machine's speed and load; when either
        limit stops the solve before it proves optimality, the result's
        ``message`` says so and the orders come from its best solution so
        far (or from the greedy search when it has none).
    formulation : str
        ``"auto"`` builds Clarabel's matrices directly when the solver is
        Clarabel and every term and constraint is one of this package's
        (measured 1.4x faster per account at 500 assets); ``"cvxpy"``
        always compiles through cvxpy.
    sides : str
        Under ``NoBuyAndSell``, how each asset's side is chosen: ``"auto"``
        (at most three solves: both sides allowed, then the better of
        every asset on its net trade's side and the same with the assets
        traded both ways held to sales), ``"net"`` (at most two: the net
        trade's side only, relax-fix-resolve; faster, never better than
        ``"auto"``) or ``"exact"`` (branch and bound over the sides: the
        proven best, or a message with the gap left after 2,000 solves).
        The summary's ``objective_bound`` is the both-sides optimum, a
        lower bound.
    buy_any : bool
        Let the program buy any asset with a price and a row in the risk
        model, not only held or targeted ones: a harvested loss can be
        replaced by a correlated substitute. Restrictions and the wash-sale
        rule apply to every asset.
    elastic : bool
        When the account is infeasible, turn the soft constraints (turnover,
        cash ceiling, groups, tracking-error cap, factor bounds, gain budget)
        into penalties and answer with status ``relaxed``; the message says
        by how much each was exceeded.
    """

    solver: str = "CLARABEL"
    fallback: tuple[str, ...] = ("SCS",)
    time_limit_seconds: float | None = None
    rounding: str = "auto"
    milp_max_assets: int = 100
    milp_time_limit_seconds: float | None = None
    formulation: str = "auto"
    elastic: bool = False
    sides: str = "auto"
    buy_any: bool = False

    def __post_init__(self) -> None:
        if self.formulation not in FORMULATIONS:
            raise InputError(
                f"must be one of {FORMULATIONS}, got {self.formulation!r}",
                field="formulation",
            )
        if self.sides not in SIDE_SEARCHES:
            raise InputError(
                f"must be one of {SIDE_SEARCHES}, got {self.sides!r}", field="sides"
            )
        if self.rounding not in ROUNDING_METHODS:
            raise InputError(
                f"must be one of {ROUNDING_METHODS}, got {self.rounding!r}",
                field="rounding",
            )
        for name in ("time_limit_seconds", "milp_time_limit_seconds"):
            limit = getattr(self, name)
            if limit is not None and not limit > 0:
                raise InputError(f"must be > 0, got {limit!r}", field=name)


def empty_trades() -> pd.DataFrame:
    """Return a trades table with the docs/DATA.md columns and no rows.

    A copy of one built once: building it costs 50 times more.
    """
    return _NO_TRADES.copy()


_NO_TRADES = pd.DataFrame({c: pd.Series(dtype=object) for c in TRADE_COLUMNS})


@dataclass(frozen=True)
class RebalanceResult:
    """The answer for one account.

    Attributes
    ----------
    account_id : str
        The account.
    status : Status
        docs/DATA.md status.
    message : str
        Human-readable detail (empty when optimal).
    trades : pd.DataFrame
        docs/DATA.md ``trades`` columns; one row per buy and per lot sold.
    summary : pd.Series
        docs/DATA.md ``summary`` fields.
    terms : pd.DataFrame
        Index term name; columns ``value`` (unweighted, in ``unit``: the
        tracking error's is the annual variance), ``unit``, ``weight``,
        ``objective`` (weight x value, fraction of V) and ``money`` (the
        same in currency), at the continuous solution.
    constraints : pd.DataFrame
        Index the user's constraint names and ``cash_non_negative``;
        columns ``slack`` (in ``unit``), ``unit`` and ``dual`` (fraction of
        V per unit of slack).
    internal_constraints : pd.DataFrame
        The program's own rows (lot quantities, asset sales, active
        weights): slack and dual.
    weights : pd.DataFrame
        Index ``asset`` and ``CASH``; columns ``current``, ``target``,
        ``continuous`` and ``after`` (weights of the returned orders), as
        fractions of V. Unsolved accounts have current and target, and
        ``after`` equal to current (no orders).
    violations : pd.DataFrame
        Constraint breaches found by verification (empty for returned
        results, except soft limits reported after rounding).
    conflicting : tuple of str
        For ``infeasible``: the named constraints that conflict.
    details : callable or None
        Builds ``terms``, ``constraints`` and ``weights`` when first read.
    """

    account_id: str
    status: Status
    message: str
    trades: pd.DataFrame
    summary: pd.Series
    violations: pd.DataFrame = field(default_factory=pd.DataFrame)
    conflicting: tuple[str, ...] = ()
    # builds (terms, constraints, weights) on first use: a batch reads none
    details: Callable[[], Details] | None = field(
        default=None, repr=False, compare=False
    )

    @cached_property
    def _details(self) -> Details:
        if self.details is None:
            return Details(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
        return self.details()

    @property
    def terms(self) -> pd.DataFrame:
        """Each objective term's value, unit, weight and share of the objective."""
        return self._details.terms

    @property
    def constraints(self) -> pd.DataFrame:
        """Slack (with its unit) and dual of each of the user's constraints."""
        return self._details.constraints

    @property
    def internal_constraints(self) -> pd.DataFrame:
        """Slack and dual of the program's own rows."""
        return self._details.internal

    @property
    def weights(self) -> pd.DataFrame:
        """Current, target, continuous and final weights by asset."""
        return self._details.weights

    def _repr_html_(self) -> str:
        """Show status, money figures and the largest trades in Jupyter."""
        from solver.display import to_html

        return to_html(self)

    def plot(self, ax: Any = None, top: int = 30) -> Any:
        """Draw current, target and after weights (needs matplotlib)."""
        from solver.display import plot_weights

        return plot_weights(self, ax=ax, top=top)

    def __getstate__(self) -> dict[str, object]:
        """Pickle the tables built, not how to build them."""
        state = {k: v for k, v in self.__dict__.items() if k != "_details"}
        d = self._details
        tables = (d.terms, d.constraints, d.weights, d.internal)
        return {**state, "details": partial(Details, *tables)}


@dataclass(frozen=True)
class Details:
    """A result's tables that only a reader needs (``RebalanceResult``)."""

    terms: pd.DataFrame
    constraints: pd.DataFrame
    weights: pd.DataFrame
    internal: pd.DataFrame = field(default_factory=pd.DataFrame)


def result_message(
    status: Status,
    violations: pd.DataFrame,
    relaxed: dict[str, float],
    fallback: str,
    rounding_note: str,
) -> str:
    """Say what the caller should know: solver, accuracy, limits, rounding.

    ``fallback`` says why the first solver gave no answer when another did;
    ``rounding_note`` says when the integer program stopped at a limit
    before proving optimality (its orders then depend on that limit).
    """
    parts = [fallback] if fallback else []
    if status is Status.OPTIMAL_INACCURATE:
        parts.append("low solver accuracy; verified")
    exceeded = list(zip(violations["constraint"], violations["amount"], strict=True))
    broken = dict(exceeded)  # what the orders break it by: rounding may add to it
    parts += [
        f"relaxed {name} by {max(amount, broken.get(name, 0.0)):.3g}"
        for name, amount in relaxed.items()
    ]
    parts += [
        f"rounding exceeds {name} by {amount:.3g}"
        for name, amount in exceeded
        if name not in relaxed
    ]
    if rounding_note:
        parts.append(rounding_note)
    return "; ".join(parts)
