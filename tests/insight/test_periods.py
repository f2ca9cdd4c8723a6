"""Reporting periods: ISO weeks start on Monday, the federal fiscal year on 1 October."""

from datetime import date

import pytest

from pipelines.insight.periods import (
    Period,
    PeriodBounds,
    bounds_of,
    fiscal_quarter_bounds,
    fiscal_year_quarter,
    following,
    touched,
)


@pytest.mark.parametrize("day, expected", [
    (date(2025, 10, 1), (2026, 1)), (date(2025, 12, 31), (2026, 1)), (date(2026, 1, 1), (2026, 2)),
    (date(2026, 3, 31), (2026, 2)), (date(2026, 4, 1), (2026, 3)), (date(2026, 9, 30), (2026, 4)),
])
def test_fiscal_year_and_quarter_of_a_day(day, expected):
    assert fiscal_year_quarter(day) == expected


def test_fiscal_quarter_bounds_cover_the_year_without_gaps():
    quarters = [fiscal_quarter_bounds(2026, q) for q in (1, 2, 3, 4)]
    assert quarters[0] == PeriodBounds(date(2025, 10, 1), date(2026, 1, 1))
    assert quarters[-1].end == date(2026, 10, 1)
    assert all(a.end == b.start for a, b in zip(quarters, quarters[1:], strict=False))
    with pytest.raises(ValueError):
        fiscal_quarter_bounds(2026, 5)


def test_weeks_start_on_monday_and_months_on_the_first():
    assert bounds_of(Period.WEEK, date(2026, 3, 8)) == PeriodBounds(date(2026, 3, 2), date(2026, 3, 9))
    assert bounds_of(Period.MONTH, date(2026, 12, 31)) == PeriodBounds(date(2026, 12, 1), date(2027, 1, 1))
    assert len(bounds_of(Period.DAY, date(2026, 3, 8)).days) == 1


def test_touched_periods_are_distinct_and_ordered_and_following_ones_continue():
    days = [date(2026, 3, 31), date(2026, 3, 30), date(2026, 4, 1)]
    assert [p.start for p in touched(Period.MONTH, days)] == [date(2026, 3, 1), date(2026, 4, 1)]
    later = following(Period.WEEK, bounds_of(Period.WEEK, date(2026, 3, 2)), 2)
    assert [p.start for p in later] == [date(2026, 3, 9), date(2026, 3, 16)]
