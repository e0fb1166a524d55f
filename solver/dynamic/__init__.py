"""Rebalancing through time: a tax-lot ledger, policies and the backtest."""

from solver.dynamic.ledger import Ledger
from solver.dynamic.optimizer import OptimizerPolicy
from solver.dynamic.policies import (
    band_policy,
    calendar_policy,
    tracking_error_policy,
)
from solver.dynamic.simulation import BacktestConfig, BacktestResult, backtest, compare

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Ledger",
    "OptimizerPolicy",
    "backtest",
    "band_policy",
    "calendar_policy",
    "compare",
    "tracking_error_policy",
]
