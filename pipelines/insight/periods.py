"""Reporting periods: day, ISO week (Monday first), calendar month, federal fiscal quarter.

A mart over a period is recomputed whole for every period that a run's days touch, so
that re-running any day leaves the same rows (see ``pipelines.insight.marts``). The
federal fiscal year starts on 1 October: FY2026 Q1 is October-December 2025.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    FISCAL_QUARTER = "fiscal_quarter"


@dataclass(frozen=True, order=True)
class PeriodBounds:
    """One period: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


def fiscal_year_quarter(day: date) -> tuple[int, int]:
    """(fiscal year, quarter 1-4) of a day; Q1 = October-December."""
    return day.year + (day.month >= 10), ((day.month - 10) % 12) // 3 + 1


def fiscal_quarter_bounds(fiscal_year: int, quarter: int) -> PeriodBounds:
    if quarter not in (1, 2, 3, 4):
        raise ValueError(f"fiscal quarter must be 1-4, not {quarter}")
    first_month = (quarter - 1) * 3 + 10  # 10, 13, 16, 19 counted from January of FY-1
    year = fiscal_year - 1 + (first_month - 1) // 12
    month = (first_month - 1) % 12 + 1
    start = date(year, month, 1)
    return PeriodBounds(start, _add_months(start, 3))


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def bounds_of(period: Period, day: date) -> PeriodBounds:
    """The period of kind ``period`` that contains ``day``."""
    if period is Period.DAY:
        return PeriodBounds(day, day + timedelta(days=1))
    if period is Period.WEEK:
        start = day - timedelta(days=day.weekday())
        return PeriodBounds(start, start + timedelta(days=7))
    if period is Period.MONTH:
        start = day.replace(day=1)
        return PeriodBounds(start, _add_months(start, 1))
    return fiscal_quarter_bounds(*fiscal_year_quarter(day))


def touched(period: Period, days: Iterable[date]) -> list[PeriodBounds]:
    """Every period of kind ``period`` containing one of ``days``, in order."""
    return sorted({bounds_of(period, d) for d in days})


def following(period: Period, bounds: PeriodBounds, count: int) -> list[PeriodBounds]:
    """The ``count`` periods after ``bounds``."""
    out, current = [], bounds
    for _ in range(count):
        current = bounds_of(period, current.end)
        out.append(current)
    return out
