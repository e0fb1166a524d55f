"""Rebalancing solver: the public API.

Four parts: :mod:`solver.program` (the convex program of one account),
:mod:`solver.orders` (orders from its answer, verified), :mod:`solver.batch`
(many accounts overnight) and :mod:`solver.dynamic` (ledger, policies,
backtest); :mod:`solver.triggers` says when an account should trade.
"""

# ruff: noqa: E402 (the check must run before ``models`` is imported)
from solver._companion import check_models_package

check_models_package()

from models.errors import InputError, RebalanceError
from solver.api import rebalance
from solver.batch import RunConfig, TablesResult, rebalance_batch, rebalance_tables
from solver.errors import InfeasibleError, SolverFailedError, VerificationError
from solver.household import HouseholdResult, rebalance_household
from solver.result import RebalanceResult, SolveOptions, Status

__all__ = [
    "HouseholdResult",
    "InfeasibleError",
    "InputError",
    "RebalanceError",
    "RebalanceResult",
    "RunConfig",
    "SolveOptions",
    "SolverFailedError",
    "Status",
    "TablesResult",
    "VerificationError",
    "rebalance",
    "rebalance_batch",
    "rebalance_household",
    "rebalance_tables",
]
