import numpy as np
import pandas as pd

from models.tax import is_long_term


def test_is_long_term_needs_more_than_one_year():
    acquired = pd.Series(pd.to_datetime(["2025-01-10", "2025-01-10", "2025-01-11"]))
    assert list(is_long_term(acquired, pd.Timestamp("2026-01-10"))) == [
        False,
        False,
        False,
    ]
    assert list(is_long_term(acquired, pd.Timestamp("2026-01-11"))) == [
        True,
        True,
        False,
    ]


def test_is_long_term_leap_day_acquisition():
    acquired = pd.Series(pd.to_datetime(["2024-02-29"]))
    assert not is_long_term(acquired, pd.Timestamp("2025-02-28"))[0]
    assert is_long_term(acquired, pd.Timestamp("2025-03-01"))[0]


def test_is_long_term_vectorised_over_many_lots():
    acquired = pd.Series(pd.date_range("2020-01-01", periods=2000, freq="D"))
    as_of = pd.Timestamp("2023-06-30")
    expected = np.array([(as_of - a).days > 365 for a in acquired])
    np.testing.assert_array_equal(is_long_term(acquired, as_of), expected)


def test_is_long_term_matches_a_year_added_to_every_date():
    """Every acquisition day of 2019-2026 on as-of days around year ends and
    February 29, against the rule written out (a year added to each date)."""
    acquired = pd.Series(pd.date_range("2019-01-01", "2026-12-31", freq="D"))
    as_of_days = [
        *pd.date_range("2023-12-25", "2024-03-05", freq="D"),
        *pd.date_range("2025-02-20", "2025-03-05", freq="D"),
        *pd.date_range("2028-02-25", "2028-03-02", freq="D"),
    ]
    for as_of in as_of_days:
        expected = np.asarray(as_of > acquired + pd.DateOffset(years=1))
        np.testing.assert_array_equal(is_long_term(acquired, as_of), expected)


def test_is_long_term_with_a_time_of_day():
    acquired = pd.Series(pd.to_datetime(["2025-01-10 15:00", "2025-01-10 00:00"]))
    on = pd.Timestamp("2026-01-10 12:00")
    np.testing.assert_array_equal(is_long_term(acquired, on), [False, True])


def test_is_long_term_outside_the_nanosecond_range():
    """Dates before 1677 (or after 2262) in their own unit: not wrapped."""
    acquired = pd.Series(np.array(["1500-01-01", "2300-01-01"], dtype="datetime64[s]"))
    as_of = pd.Timestamp(np.datetime64("2300-06-30", "s"))
    np.testing.assert_array_equal(is_long_term(acquired, as_of), [True, False])
