"""Records of a tax-lot ledger: an open lot, and a lot sale with its gain."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Lot:
    """One open tax lot."""

    lot_id: str  # "{asset}-{n}"
    asset: str
    quantity: float  # shares
    cost_basis: float  # per share, with buy costs and wash-sale adjustments
    acquired: pd.Timestamp  # holding-period start, earlier by wash-sale tacking

    def with_quantity(self, quantity: float) -> Lot:
        """Return the lot with ``quantity`` shares (faster than ``replace``)."""
        return Lot(self.lot_id, self.asset, quantity, self.cost_basis, self.acquired)


@dataclass(frozen=True)
class Realization:
    """One lot sale; a later buy that washes its loss replaces the record."""

    date: pd.Timestamp
    asset: str
    lot_id: str
    quantity: float  # shares sold
    proceeds: float  # sale value net of costs
    basis: float  # basis of the shares sold
    gain: float  # proceeds - basis, before any wash-sale disallowance
    long_term: bool  # held more than one year
    acquired: pd.Timestamp  # holding-period start of the shares sold
    disallowed: float = 0.0  # part of the loss disallowed by wash sales, >= 0

    def with_disallowed(self, disallowed: float) -> Realization:
        """Return the record with ``disallowed`` (faster than ``replace``)."""
        return Realization(
            self.date,
            self.asset,
            self.lot_id,
            self.quantity,
            self.proceeds,
            self.basis,
            self.gain,
            self.long_term,
            self.acquired,
            disallowed,
        )

    @property
    def allowed_gain(self) -> float:
        """Return the gain net of the wash-sale disallowance."""
        return self.gain + self.disallowed
