"""Rebalancing solver: the public API."""

from models.errors import InputError, RebalanceError
from solver.api import rebalance
from solver.errors import InfeasibleError, SolverFailedError, VerificationError
from solver.result import RebalanceResult, SolveOptions, Status

__all__ = [
    "InfeasibleError",
    "InputError",
    "RebalanceError",
    "RebalanceResult",
    "SolveOptions",
    "SolverFailedError",
    "Status",
    "VerificationError",
    "rebalance",
]
