"""Error types shared by ``models`` and ``solver``."""

from __future__ import annotations


class RebalanceError(Exception):
    """Base class of every error this library raises on purpose."""


class RiskScaleWarning(UserWarning):
    """A risk model whose scale is implausible for annual variance of returns."""


class InputError(RebalanceError, ValueError):
    """Invalid user data; names where: account, asset, lot and field."""

    def __init__(
        self,
        problem: str,
        *,
        account_id: str | None = None,
        asset: str | None = None,
        lot_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.account_id = account_id
        self.asset = asset
        self.lot_id = lot_id
        self.field = field
        parts = {
            "account_id": account_id,
            "asset": asset,
            "lot_id": lot_id,
            "field": field,
        }
        where = ", ".join(f"{k}={v!r}" for k, v in parts.items() if v is not None)
        super().__init__(f"{where}: {problem}" if where else problem)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with keyword fields, so errors cross process boundaries."""
        return (_rebuild_input_error, (self.problem, self.where()))

    def where(self) -> dict[str, str | None]:
        """Return the structured location fields."""
        return {
            "account_id": self.account_id,
            "asset": self.asset,
            "lot_id": self.lot_id,
            "field": self.field,
        }


def _rebuild_input_error(problem: str, where: dict[str, str | None]) -> InputError:
    """Unpickle an ``InputError``."""
    return InputError(problem, **where)
