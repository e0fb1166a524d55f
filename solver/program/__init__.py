"""The convex program of one account: build, solve, diagnose, sweep."""

from solver.program.continuous import Optimum, optimize
from solver.program.tradeoffs import SweepResult, sweep

__all__ = ["Optimum", "SweepResult", "optimize", "sweep"]
