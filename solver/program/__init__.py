"""The convex program of one account: build, solve, diagnose, sweep."""

from solver.program.continuous import optimize
from solver.program.solve import Solution
from solver.program.tradeoffs import SweepResult, sweep

__all__ = ["Solution", "SweepResult", "optimize", "sweep"]
