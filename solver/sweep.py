"""``solver.sweep.sweep``, the path earlier code uses; see :mod:`solver.program`."""

from solver.program import SweepResult, sweep

__all__ = ["SweepResult", "sweep"]
