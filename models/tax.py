"""Tax lot maths: holding periods, rates by lot, yearly tax (no objective term)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd


def is_long_term(
    acquired: pd.Series | np.ndarray, as_of: pd.Timestamp | np.datetime64
) -> np.ndarray:
    """Return whether each lot is held more than one year on ``as_of``.

    The holding period starts the day after acquisition and includes the
    sale date, so a lot bought 2025-01-10 turns long-term on 2026-01-11
    (one calendar year later, February 29 moving to February 28). Dates
    without a time of day compare with one cut-off day, found once per
    ``as_of``: a tenth of the time of adding a year to every date.
    """
    dates = np.asarray(acquired)
    if (
        dates.dtype.kind == "M"
        and isinstance(as_of, pd.Timestamp)
        and as_of.tz is None
        and as_of == as_of.normalize()
        and (dates == dates.astype("datetime64[D]")).all()  # NaT fails too
    ):
        return dates < _first_short_term_day(as_of)
    one_year_later = pd.Series(acquired) + pd.DateOffset(years=1)
    return np.asarray(one_year_later < as_of, dtype=bool)


@lru_cache(maxsize=256)
def _first_short_term_day(as_of: pd.Timestamp) -> np.datetime64:
    """Return the first acquisition day not yet long-term on ``as_of``.

    Long-term-ness falls as the acquisition day rises, so the lots acquired
    before this day are exactly the long-term ones.
    """
    day = (as_of - pd.DateOffset(years=1)).normalize() - pd.Timedelta(days=3)
    while as_of > day + pd.DateOffset(years=1):
        day += pd.Timedelta(days=1)
    first: np.datetime64 = day.to_datetime64()
    return first


def annual_tax(
    gains: tuple[float, float],
    carry: tuple[float, float],
    *,
    rates: tuple[float, float],
    deduction_limit: float,
) -> tuple[float, tuple[float, float]]:
    """Return a year's capital-gains tax and the loss carried to the next year.

    ``gains`` and ``carry`` are (short-term, long-term) net gains and
    carried losses (>= 0), ``rates`` the (short, long) rates. Each term nets
    with its carried loss; a net loss of one term offsets a net gain of the
    other. A total net loss is deducted from ordinary income at the
    short-term rate up to ``deduction_limit`` (a negative tax), short-term
    part first, and the rest carries forward by term (IRS Pub. 550).
    """
    rate_short, rate_long = rates
    short, long = gains[0] - carry[0], gains[1] - carry[1]
    if short + long >= 0:
        if short >= 0 and long >= 0:
            return rate_short * short + rate_long * long, (0.0, 0.0)
        return (rate_long if long > 0 else rate_short) * (short + long), (0.0, 0.0)
    deducted = min(deduction_limit, -(short + long))
    short_left = max(0.0, -short - max(long, 0.0))
    long_left = max(0.0, -long - max(short, 0.0))
    from_short = min(deducted, short_left)
    carried = (short_left - from_short, long_left - (deducted - from_short))
    return -rate_short * deducted, carried


def lot_tax_rates(
    long_term: np.ndarray, *, tax_rate_short: float, tax_rate_long: float
) -> np.ndarray:
    """Return the tax rate that applies to each lot's realized gain."""
    return np.where(long_term, tax_rate_long, tax_rate_short)
