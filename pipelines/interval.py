"""The data interval a run loads: half-open [start, end) in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty interval {self.start} .. {self.end}")

    @classmethod
    def for_day(cls, day: date) -> Interval:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return cls(start, start + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        """Every calendar day the interval touches (UTC)."""
        first = self.start.astimezone(UTC).date()
        last = (self.end.astimezone(UTC) - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"
