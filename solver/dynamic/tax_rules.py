"""The small rules of the tax-lot ledger: holding period, yearly gains, checks."""

from __future__ import annotations

import math

import pandas as pd

from models.errors import InputError

Booked = list[tuple[int, bool, float]]  # tax year, long term, allowed gain


def require(ok: bool, problem: str, **where: str | None) -> None:
    """Raise an ``InputError`` naming ``where`` unless ``ok``."""
    if not ok:
        raise InputError(problem, **where)


def is_long_term_on(acquired: pd.Timestamp, day: pd.Timestamp) -> bool:
    """Return whether shares acquired on ``acquired`` are long term on ``day``.

    As :func:`models.tax.is_long_term`: one calendar year later, February 29
    moving to February 28.
    """
    if day.year - acquired.year > 1:
        return True
    if acquired.month == 2 and acquired.day == 29:
        return bool(day > acquired.replace(year=acquired.year + 1, day=28))
    return bool(day > acquired.replace(year=acquired.year + 1))


def year_gains(booked: Booked, year: int) -> tuple[float, float]:
    """Return a year's booked (short-term, long-term) allowed gains."""
    gains = [(long, gain) for y, long, gain in booked if y == year]
    short = sum(gain for long, gain in gains if not long)
    return short, sum(gain for long, gain in gains if long)


def check_trade(quantity: float, price: float, cost: float, **where: str) -> None:
    """Raise unless quantity and price are finite and > 0, and cost >= 0."""
    for field, value in (("quantity", quantity), ("price", price)):
        if not (math.isfinite(value) and value > 0):
            problem = f"must be finite and > 0, got {value!r}"
            raise InputError(problem, **where, field=field)
    if not (math.isfinite(cost) and cost >= 0):
        problem = f"must be finite and >= 0, got {cost!r}"
        raise InputError(problem, **where, field="cost")
