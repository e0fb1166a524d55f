"""Errors raised by the solver; all derive from ``RebalanceError``."""

from __future__ import annotations

import pandas as pd

from models.errors import RebalanceError


class InfeasibleError(RebalanceError):
    """No trade list satisfies the constraints; names the conflicting ones."""

    def __init__(self, message: str, *, conflicting: tuple[str, ...]) -> None:
        self.conflicting = conflicting
        super().__init__(message)


class SolverFailedError(RebalanceError):
    """Every solver in the fallback chain failed."""


class VerificationError(RebalanceError):
    """A result broke a hard constraint; it is never returned."""

    def __init__(self, message: str, *, violations: pd.DataFrame) -> None:
        self.violations = violations
        super().__init__(message)


class OutputInUseError(RebalanceError):
    """Another batch run holds the output directory."""


class StaleOutputError(RebalanceError):
    """The output directory holds work of a run with other inputs or settings."""


class OutputError(RebalanceError):
    """A write to the output directory failed, or a working file vanished there."""


class NoMatrixFormError(RebalanceError):
    """A term or constraint the direct matrix path cannot carry; cvxpy solves it."""
