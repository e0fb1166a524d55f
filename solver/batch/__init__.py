"""Many accounts overnight: tables in, orders out, crash-safe and resumable."""

from solver.batch.config import RunConfig
from solver.batch.drift import DriftReport, drift_report
from solver.batch.engine import BatchReport, ExitCode, rebalance_batch
from solver.batch.frames import TablesResult, rebalance_tables

__all__ = [
    "BatchReport",
    "DriftReport",
    "ExitCode",
    "RunConfig",
    "TablesResult",
    "drift_report",
    "rebalance_batch",
    "rebalance_tables",
]
