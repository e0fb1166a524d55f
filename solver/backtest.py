"""``solver.backtest.backtest``, the path earlier code uses; see ``solver.dynamic``."""

from solver.dynamic import BacktestConfig, BacktestResult, backtest, compare

__all__ = ["BacktestConfig", "BacktestResult", "backtest", "compare"]
