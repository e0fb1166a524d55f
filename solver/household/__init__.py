"""Households: several accounts of one family rebalanced by one program."""

from solver.household.result import HouseholdResult
from solver.household.solve import rebalance_household

__all__ = ["HouseholdResult", "rebalance_household"]
