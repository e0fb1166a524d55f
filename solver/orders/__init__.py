"""From the continuous optimum to orders a broker accepts, verified."""

from solver.orders.checks import verify
from solver.orders.discrete import Rounded, discretize
from solver.orders.trades import trades_table

__all__ = ["Rounded", "discretize", "trades_table", "verify"]
