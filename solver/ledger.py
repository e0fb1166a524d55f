"""``solver.ledger.Ledger``, the path earlier code uses; see :mod:`solver.dynamic`."""

from solver.dynamic import Ledger

__all__ = ["Ledger"]
