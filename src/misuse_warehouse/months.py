"""Month arithmetic on integer month indices, and the one check that a month is written YYYY-MM.

The simulator works in whole reporting months, so a month is an ``int``
(``year * 12 + month - 1``): ordering, ranges and "M-11" are plain integer
arithmetic, and the string form ``YYYY-MM`` only appears at the edges.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> int:
    """``"2025-03"`` -> month index; a ValueError names anything else."""
    match = _MONTH.match(text)
    if not match:
        raise ValueError(f"not a YYYY-MM month: {text!r}")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` inclusive, oldest first (empty when `last` is earlier)."""
    return [month_text(i) for i in range(parse_month(first), parse_month(last) + 1)]


def run_months(month: str, catch_up_from: str | None = None) -> list[str]:
    """The reporting months a pipeline run lands: its own, or every month from `catch_up_from` to its own.

    A catch-up run takes a backlog in with one build: a partnership's history when it joins, or
    the months missed while the pipeline was down (decision 14 of the data dictionary).
    """
    if not catch_up_from:
        return [month]
    if parse_month(catch_up_from) > parse_month(month):
        raise ValueError(f"catch_up_from {catch_up_from} is after the run's reporting month {month}")
    return months_between(catch_up_from, month)


def month_of(day: date) -> int:
    return day.year * 12 + day.month - 1


@cache
def first_day(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@cache
def last_day(index: int) -> date:
    year, month = index // 12, index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def days_in(index: int) -> int:
    return calendar.monthrange(index // 12, index % 12 + 1)[1]


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clipped to the month's end (31 Aug + 6 -> 28/29 Feb)."""
    index = month_of(day) + months
    return date(index // 12, index % 12 + 1, min(day.day, days_in(index)))


def plus_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def age_on(dob: date, day: date) -> int:
    """Completed years of age on ``day`` (a 29 February birthday counts on 1 March)."""
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def fy_start_year(index: int) -> int:
    """UK local-government financial year (April to March) of a month: 2026-01 -> 2025."""
    return index // 12 if index % 12 >= 3 else index // 12 - 1


def fy_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def april_of(start_year: int) -> int:
    return start_year * 12 + 3


def contiguous_months(months: Sequence[str]) -> list[int]:
    """Parse and check that the requested months run without gaps, oldest first."""
    if not months:
        raise ValueError("no months requested")
    indices = [parse_month(m) for m in months]
    if indices != list(range(indices[0], indices[0] + len(indices))):
        raise ValueError(f"months must be contiguous and ascending: {list(months)}")
    return indices
