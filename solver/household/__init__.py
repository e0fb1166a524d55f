"""Households: several accounts of one family rebalanced by one program."""

from solver.household.result import HouseholdResult
from solver.household.solve import household_wash_mask, rebalance_household

__all__ = ["HouseholdResult", "household_wash_mask", "rebalance_household"]
