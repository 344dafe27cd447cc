"""Months: ``YYYY-MM`` is the half-open UTC interval [first day 00:00, next month's first day 00:00)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pmfin.errors import UsageError

_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")  # ASCII digits only: not "２０２５-０１"


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise ValueError(f"invalid month {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str, *, flag: str = "--month") -> Month:
        """Strictly ``YYYY-MM``; anything else is a UsageError (exit 2) naming the flag."""
        m = _MONTH_RE.match(text.strip()) if isinstance(text, str) else None
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
            raise UsageError(f"{flag} must be YYYY-MM, got {text!r}")
        year, month = int(m.group(1)), int(m.group(2))
        if not (FIRST.year, FIRST.month) <= (year, month) <= (LAST.year, LAST.month):
            # Far from any business history, and month arithmetic around it (windows, horizons of
            # up to 120 months) must stay inside the calendar.
            raise UsageError(f"{flag} must be between {FIRST} and {LAST}, got {text!r}")
        return cls(year, month)

    @classmethod
    def of(cls, instant: dt.date | dt.datetime) -> Month:
        if isinstance(instant, dt.datetime) and instant.tzinfo is not None:
            instant = instant.astimezone(dt.timezone.utc)
        return cls(instant.year, instant.month)

    @classmethod
    def current(cls) -> Month:
        return cls.of(dt.datetime.now(dt.timezone.utc))

    @classmethod
    def last_complete(cls, today: dt.date | dt.datetime | None = None) -> Month:
        """The last complete month (UTC): what every report shows by default."""
        return (cls.of(today) if today else cls.current()).prev()

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def start(self) -> dt.datetime:
        """First instant of the month (UTC), inclusive."""
        return dt.datetime(self.year, self.month, 1, tzinfo=dt.timezone.utc)

    @property
    def end(self) -> dt.datetime:
        """First instant of the next month (UTC): the exclusive end of this month."""
        return self.next().start

    def add(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def next(self) -> Month:
        return self.add(1)

    def prev(self) -> Month:
        return self.add(-1)

    def __sub__(self, other: Month) -> int:
        """Whole months from ``other`` to ``self``."""
        return (self.year * 12 + self.month) - (other.year * 12 + other.month)


FIRST = Month(1900, 1)
LAST = Month(2999, 12)


def not_after_current(month: Month, flag: str, current: Month | None = None) -> Month:
    """``month``, or a UsageError when it is after the current month: no data exists for it yet,
    and a report of it would pass today's state off as that month's."""
    current = current or Month.current()
    if month > current:
        raise UsageError(f"{flag} must not be after the current month ({current}), got '{month}'")
    return month


def report_month(text: str | None, flag: str = "--month") -> Month:
    """A report's month flag: ``YYYY-MM`` not after the current month; default the last complete month."""
    return not_after_current(Month.parse(text, flag=flag), flag) if text is not None else Month.last_complete()


def month_range(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last`` inclusive; UsageError when last < first."""
    if last < first:
        raise UsageError(f"--to ({last}) is before --from ({first})")
    return [first.add(i) for i in range(last - first + 1)]
